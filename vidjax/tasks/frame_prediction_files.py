"""Frame prediction's files: sequences read for `--mode predict`, predictions written.

A sequence is a `.npy` (ours, or the public Moving MNIST layout) or any
video; predictions are an mp4 of the predicted frames and a PNG strip.
"""
from __future__ import annotations

import pathlib

import numpy as np

from vidjax.tasks import frame_prediction_report as figures
from vidjax.tasks.predict_failures import Unreadable, load_npy

FRAME_SIZE = 64  # Moving MNIST's frames are 64x64x1, as in the public file.


def read_observed(path: str, num_observed: int) -> tuple[np.ndarray, np.ndarray | None]:
  """(observed uint8 [T_in, 64, 64, 1], ground-truth future or None) from a file.

  `.npy`: [T, 64, 64] (or [T, 64, 64, 1]), the first T_in frames observed and
  the rest, if any, the truth; or the public layout [T, N, 64, 64], of which
  sequence 0. uint8, or floats in [0, 1]. Anything else is read as a video
  (an mp4 of T_in frames or more); colour is averaged to grey and frames
  are scaled to 64x64. Raises Unreadable (a UserError) saying why a file is not.
  """
  p = pathlib.Path(path)
  if not p.is_file():
    raise Unreadable(path, 'does not exist')
  if p.suffix == '.npy':
    frames = load_npy(p)
    if frames.ndim == 4 and frames.shape[-1] != 1:  # Public layout [T, N, H, W].
      frames = frames[:, 0]
    if frames.ndim == 4:
      frames = frames[..., 0]
    if frames.ndim != 3 or frames.shape[1:] != (FRAME_SIZE, FRAME_SIZE):
      raise Unreadable(path, f'has shape {list(np.shape(frames))}; expected [T, 64, 64] or the '
                       'public layout [T, N, 64, 64]')
    if frames.dtype != np.uint8:
      if frames.size and (frames.min() < 0 or frames.max() > 1):
        raise Unreadable(path, f'has {frames.dtype} frames; they must be in [0, 1]')
      frames = np.rint(frames * 255).astype(np.uint8)
  else:
    from vidjax.data import decode, transforms
    try:
      rgb = decode.read_frames(str(p))  # [T, H, W, 3]
    except decode.DecodeError as e:
      raise Unreadable(path, f'cannot be decoded: {e.reason}') from None
    if rgb.shape[1:3] != (FRAME_SIZE, FRAME_SIZE):
      rgb = transforms.resize(rgb, FRAME_SIZE, FRAME_SIZE)
    frames = np.rint(rgb.astype(np.float32).mean(axis=-1)).astype(np.uint8)
  if len(frames) < num_observed:
    raise Unreadable(path, f'has {len(frames)} frames; the model observes {num_observed}')
  frames = frames[..., None]  # [T, 64, 64, 1]
  future = frames[num_observed:] if len(frames) > num_observed else None
  return frames[:num_observed], future


def write_prediction(out_dir: pathlib.Path, path: str, observed: np.ndarray, probs: np.ndarray,
                     truth: np.ndarray | None, title: str) -> dict[str, pathlib.Path]:
  """Writes `out_dir/<name>_predicted.{mp4,png}` and prints where they are.

  `probs` float [T_out, 64, 64, 1] in [0, 1]; `truth` [1, T_out, ...] or None.
  """
  from vidjax.data.synthetic_actions import write_mp4
  frames = np.clip(np.rint(probs * 255.0), 0, 255).astype(np.uint8)  # [T_out, 64, 64, 1]
  stem = pathlib.Path(path).stem
  files = {'mp4': out_dir / f'{stem}_predicted.mp4', 'png': out_dir / f'{stem}_predicted.png'}
  write_mp4(files['mp4'], np.repeat(frames, 3, axis=-1))
  figures.plot_strip(observed[None], probs[None], files['png'], truth=truth, labels=[stem],
                     title=title)
  print(path)
  print(f"  {len(frames)} predicted frames: {files['mp4']}")
  print(f"  strip (input, {'truth, ' if truth is not None else ''}predicted): {files['png']}")
  return files
