"""Pre-extracted snippet features as the localization and segmentation releases ship them.

Snippet i of a video covers frames [i * stride, i * stride + window): I3D
features of ActionFormer's THUMOS14 use window 16, stride 4 at ~30 fps; the
MS-TCN folders one snippet per frame. The releases disagree on the layout
-- ActionFormer stores [T, C], MS-TCN [C, T] -- and a short video can have
fewer snippets than feature channels, so the layout is never guessed from
the shape alone.
"""
from __future__ import annotations

import os
import zipfile

import numpy as np

_FIX = 'pass layout="TC" or "CT", or feature_dim (e.g. 2048 for two-stream I3D)'


def _load(path: str) -> np.ndarray:
  if not os.path.exists(path):
    raise ValueError(f'feature file not found: {path}')
  with open(path, 'rb') as f:
    magic = f.read(6)
  if magic != b'\x93NUMPY' and not magic.startswith(b'PK'):
    raise ValueError(f'{path}: not a .npy or .npz file (no header); re-extract or re-download it')
  try:
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
      return loaded
    with loaded:
      names = loaded.files
      if len(names) == 1:
        return loaded[names[0]]
  except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
    reason = ' '.join(str(e).split())
    raise ValueError(f'{path}: not a readable .npy/.npz (truncated or corrupt: {reason}); '
                     f're-extract or re-download it') from None
  raise ValueError(f'{path}: holds arrays {names}, expected one; save a single [T, C] array')


def read_features(path: str, *, layout: str = 'auto',
                  feature_dim: int | None = None) -> np.ndarray:
  """A <vid>.npy (or a .npz of one array) of snippet features -> float32 [T, C].

  `layout` is 'TC', 'CT' or 'auto'. 'auto' finds the axis whose length is
  `feature_dim`, and needs it: with I3D's 2048 channels, a [2048, 1500] array
  is MS-TCN's [C, T] while a [1500, 2048] one is ActionFormer's [T, C], and a
  video of 3000 snippets could be stored either way -- the larger axis is not
  always time. An array whose two axes both equal `feature_dim` is ambiguous
  too. Each of these is a one-line ValueError that names the file.
  """
  if layout not in ('TC', 'CT', 'auto'):
    raise ValueError(f"feature layout must be 'TC', 'CT' or 'auto', got {layout!r}")
  features = _load(path)
  if features.ndim != 2:
    raise ValueError(f'{path}: features of shape {features.shape}, expected 2 axes '
                     f'([T, C] or [C, T])')
  if layout == 'auto':
    if feature_dim is None:
      raise ValueError(f'{path}: cannot tell [T, C] from [C, T] in shape '
                       f'{features.shape} without feature_dim; {_FIX}')
    rows, cols = features.shape
    if (rows == feature_dim) == (cols == feature_dim):
      what = 'both axes' if rows == feature_dim else 'no axis'
      raise ValueError(f'{path}: {what} of shape {features.shape} has feature_dim '
                       f'{feature_dim}; {_FIX}')
    layout = 'TC' if cols == feature_dim else 'CT'
  if layout == 'CT':
    features = features.T
  if feature_dim is not None and features.shape[1] != feature_dim:
    raise ValueError(f'{path}: {features.shape[1]} channels in layout {layout}, '
                     f'expected feature_dim {feature_dim}; check the layout')
  return np.ascontiguousarray(features, np.float32)


def _check(stride: float, window: float, fps: float) -> None:
  if not (stride > 0 and window > 0 and fps > 0):
    raise ValueError(f'snippet stride, window and fps must be positive, got '
                     f'{stride}, {window}, {fps}')


def snippet_times(num_snippets: int, *, stride: float, window: float,
                  fps: float) -> np.ndarray:
  """The centre of each snippet in seconds, float64 [T]: (i * stride + window / 2) / fps."""
  _check(stride, window, fps)
  return (np.arange(num_snippets, dtype=np.float64) * stride + 0.5 * window) / fps


def seconds_to_snippets(t, *, stride: float, window: float, fps: float) -> np.ndarray:
  """Seconds -> fractional snippet index, the inverse of `snippet_times`.

  ActionFormer's convention, t * fps / stride - 0.5 * window / stride: a
  time before the first snippet's centre is a small negative index.
  """
  _check(stride, window, fps)
  return np.asarray(t, np.float64) * fps / stride - 0.5 * window / stride
