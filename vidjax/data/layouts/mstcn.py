"""The MS-TCN / ASFormer action segmentation folders: 50Salads, GTEA, Breakfast."""
from __future__ import annotations

import collections
import os

import numpy as np

from vidjax.data.layouts.common import require
from vidjax.data.layouts.untrimmed import (UntrimmedDataset, check_segments,
                                           gather, malformed)


def _read_mapping(path: str) -> list[str]:
  """mapping.txt ("0 cut_tomato" per line) -> class names by index."""
  numbered = []
  with open(path) as f:
    for n, line in enumerate(f, 1):
      parts = line.split()
      if not parts:
        continue
      if len(parts) != 2 or not parts[0].isdigit():
        raise malformed(path, n, f'expected "index name", got {line.strip()!r}',
                        'fix or remove the line')
      numbered.append((int(parts[0]), parts[1]))
  numbered.sort()
  if [i for i, _ in numbered] != list(range(len(numbered))):
    raise malformed(path, None, f'indices {[i for i, _ in numbered]} are not 0..K-1',
                    'number the classes 0, 1, 2, ... as the frame labels are indexed')
  return [name for _, name in numbered]


def _read_bundle(path: str) -> list[str]:
  """A split bundle ("rgb-01-1.txt" per line) -> video ids."""
  with open(path) as f:
    names = [line.strip() for line in f if line.strip()]
  return [name[:-4] if name.endswith('.txt') else name for name in names]


def _read_frames(path: str) -> list[str]:
  """groundTruth/<vid>.txt -> one class name per frame."""
  with open(path) as f:
    lines = [line.strip() for line in f]
  while lines and not lines[-1]:
    lines.pop()
  if not lines:
    raise malformed(path, None, 'no frame labels', 'write one class name per frame, one per line')
  if '' in lines:
    raise malformed(path, lines.index('') + 1, 'blank line among the frame labels',
                    'write one class name per frame, one per line')
  return lines


def runs(frame_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Per-frame labels [T] -> (start frame, end frame (exclusive), label) of each run."""
  change = np.flatnonzero(np.diff(frame_labels)) + 1
  starts = np.concatenate([[0], change])
  ends = np.concatenate([change, [len(frame_labels)]])
  return starts, ends, frame_labels[starts]


def load_mstcn(root: str, split: str, *, split_index: int = 1,
               features_dir: str | None = None, fps: float = 15.0,
               background: tuple[str, ...] = ('background', 'SIL')) -> UntrimmedDataset:
  """The MS-TCN / ASFormer folder of one segmentation dataset.

  Args:
    root: holds mapping.txt ("index name" per line), groundTruth/<vid>.txt
      (one class name per frame), splits/{train,test}.split{k}.bundle (one
      "<vid>.txt" per line) and optionally features/<vid>.npy.
    split: 'train' or 'test' (there is no validation bundle).
    split_index: k of the bundles: 1-5 for 50Salads, 1-4 for GTEA and Breakfast.
    features_dir: holds <vid>.npy, I3D features stored [2048, T] (see
      snippet_features.read_features); default root/features when it exists.
      With one, a record's path is its feature file and a video without one
      is `missing`; without one, paths are ''.
    fps: the frame rate of the ground-truth frames, which the layout does not
      record: 15 for GTEA and Breakfast (one label per 15 fps frame); 30 for
      50Salads, whose MS-TCN labels and features are at 30 fps (MS-TCN reads
      every 2nd frame to train at 15 fps). Segments are in seconds with it.
    background: the class names that mean "no action" (GTEA's 'background',
      Breakfast's 'SIL'); their indices are the result's `background`.

  annotation['frame_labels'] is int32 [T]; 'segments' and 'labels' are the
  runs of one non-background label, [start / fps, end / fps] seconds, and
  'duration' is T / fps. A frame label missing from mapping.txt is a problem
  line and becomes the (first) background class; with no background class in
  the mapping it is a ValueError.
  """
  if split in ('val', 'validation'):
    raise ValueError("MS-TCN layouts have train and test bundles only "
                     f"(splits/train.split{split_index}.bundle, "
                     f"splits/test.split{split_index}.bundle); use 'test'")
  if split not in ('train', 'test'):
    raise ValueError(f"MS-TCN split must be 'train' or 'test', got {split!r}")
  if not fps > 0:
    raise ValueError(f'MS-TCN fps must be positive, got {fps!r}')
  mapping = os.path.join(root, 'mapping.txt')
  require(mapping, 'MS-TCN class mapping', mapping)
  bundle = os.path.join(root, 'splits', f'{split}.split{split_index}.bundle')
  require(bundle, 'MS-TCN split bundle', bundle)
  class_names = _read_mapping(mapping)
  lookup = {name: i for i, name in enumerate(class_names)}
  quiet = tuple(i for i, name in enumerate(class_names) if name in background)

  if features_dir is None:
    features = os.path.join(root, 'features')
    features = features if os.path.isdir(features) else None
  else:
    features = os.path.join(root, features_dir)
  problems: list[str] = []
  entries = []
  for video in _read_bundle(bundle):
    truth = os.path.join(root, 'groundTruth', f'{video}.txt')
    require(truth, f'MS-TCN ground truth of {video} (listed in {bundle})', truth)
    names = _read_frames(truth)
    unknown = collections.Counter(name for name in names if name not in lookup)
    for name, count in unknown.items():
      if not quiet:
        raise malformed(truth, names.index(name) + 1,
                        f'frame label {name!r} is not in {mapping}',
                        'add it to mapping.txt (there is no background class to relabel it to)')
      problems.append(f'{video}: {count} frames labelled {name!r}, not in mapping.txt; '
                      f'relabelled {class_names[quiet[0]]!r}')
    frame_labels = np.asarray([lookup.get(name, quiet[0] if quiet else -1) for name in names],
                              np.int32)
    starts, ends, labels = runs(frame_labels)
    action = ~np.isin(labels, quiet)
    duration = len(frame_labels) / fps
    boxes, labels = check_segments(
        video, np.stack([starts[action], ends[action]], 1) / fps, labels[action],
        class_names, duration, problems)
    annotation = {'segments': boxes, 'labels': labels, 'duration': duration,
                  'fps': float(fps), 'frame_labels': frame_labels}
    candidates = None if features is None else [os.path.join(features, f'{video}.npy')]
    entries.append((video, candidates, annotation))
  return gather(entries, class_names, problems, source=f'MS-TCN {split}{split_index}',
                background=quiet)
