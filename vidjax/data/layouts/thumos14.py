"""THUMOS14 temporal annotations as published: one text file per class and split."""
from __future__ import annotations

import collections
import os

from vidjax.data.layouts.untrimmed import (UntrimmedDataset, check_segments,
                                           gather, malformed, video_folder)

_SPLITS = {'val': 'val', 'validation': 'val', 'test': 'test'}
# Where the official archives unpack each split's videos, below `video_dir`.
_VIDEO_FOLDERS = {'val': ('validation',), 'test': ('test', 'TH14_test_set_mp4')}


def _read_lines(path: str) -> list[tuple[int, list[str]]]:
  """(line number, whitespace-split fields) of the non-blank lines."""
  with open(path) as f:
    return [(n, parts) for n, line in enumerate(f, 1) if (parts := line.split())]


def _detection_classes(folders: list[str]) -> list[str] | None:
  """The class order of THUMOS's detclasslist.txt ("7 BaseballPitch"), if present."""
  for folder in folders:
    path = os.path.join(folder, 'detclasslist.txt')
    if os.path.exists(path):
      numbered = []
      for n, parts in _read_lines(path):
        if len(parts) != 2 or not parts[0].isdigit():
          raise malformed(path, n, f'expected "index ClassName", got {" ".join(parts)!r}',
                          'fix or remove the line')
        numbered.append((int(parts[0]), parts[1]))
      return [name for _, name in sorted(numbered)]
  return None


def _read_segments(path: str) -> dict[str, list[tuple[float, float]]]:
  """video name -> its [start, end] seconds, from lines "video_name start end"."""
  segments = collections.defaultdict(list)
  for n, parts in _read_lines(path):
    if len(parts) != 3:
      raise malformed(path, n, f'expected "video_name start end", got {len(parts)} fields',
                      'fix or remove the line')
    try:
      t0, t1 = float(parts[1]), float(parts[2])
    except ValueError:
      raise malformed(path, n, f'times {parts[1]!r} {parts[2]!r} are not numbers',
                      'write start and end in seconds') from None
    segments[parts[0]].append((t0, t1))
  return segments


def load_thumos14(root: str, split: str, *, annotation_dir: str | None = None,
                  video_dir: str | None = None,
                  class_names: list[str] | None = None) -> UntrimmedDataset:
  """THUMOS14's temporal annotations: {ClassName}_{val,test}.txt, one per class.

  Args:
    root: holds `annotation_dir` and `video_dir` (both may be absolute).
    split: 'val' (or 'validation'; the usual training set) or 'test'.
    annotation_dir: holds BaseballPitch_val.txt etc., lines
      "video_validation_0000051 72.8 76.4" (seconds, any whitespace), and
      Ambiguous_{split}.txt; default root/annotations if it exists, else root.
    video_dir: holds video_validation_0000051.mp4 etc. (also found in the
      archives' validation/, test/ or TH14_test_set_mp4/ subfolders); default
      root/videos when it exists. Without one, record paths are ''.
    class_names: the class order; default detclasslist.txt's order
      ("7 BaseballPitch" per line) when it is in the annotation folder or
      root, else the sorted class file names.

  The split is the videos named in its files: THUMOS annotates 200 of the
  1010 validation and 213 of the 1574 test videos; the rest are for
  classification. Ambiguous segments are not a class: they are kept per
  video in annotation['ambiguous'] (evaluations ignore detections there),
  and a video listed only there has no segments. Durations are None: the
  files do not carry them, so no segment is checked against the video's end.
  """
  if split not in _SPLITS:
    raise ValueError(f"THUMOS14 split must be 'val' or 'test', got {split!r}")
  tag = _SPLITS[split]
  if annotation_dir is None:
    notes = os.path.join(root, 'annotations')
    notes = notes if os.path.isdir(notes) else root
  else:
    notes = os.path.join(root, annotation_dir)
  suffix = f'_{tag}.txt'
  listed = sorted(os.listdir(notes)) if os.path.isdir(notes) else []
  ambiguous_file = f'Ambiguous{suffix}'
  per_class = {f[:-len(suffix)]: os.path.join(notes, f) for f in listed
               if f.endswith(suffix) and f != ambiguous_file}
  if not per_class:
    raise ValueError(f'THUMOS14 {tag} annotations not found: expected '
                     f'{os.path.join(notes, "<ClassName>" + suffix)} '
                     f'(e.g. BaseballPitch{suffix})')
  if class_names is None:
    class_names = _detection_classes([notes, root]) or sorted(per_class)

  segments = collections.defaultdict(list)
  labels = collections.defaultdict(list)
  for name, path in per_class.items():
    for video, found in _read_segments(path).items():
      segments[video] += found
      labels[video] += [name] * len(found)
  ambiguous_path = os.path.join(notes, ambiguous_file)
  ambiguous = _read_segments(ambiguous_path) if os.path.exists(ambiguous_path) else {}

  videos = video_folder(root, video_dir)
  problems: list[str] = []
  entries = []
  for video in sorted(set(segments) | set(ambiguous)):
    boxes, indices = check_segments(video, segments[video], labels[video],
                                    class_names, None, problems)
    unscored, _ = check_segments(video, ambiguous.get(video, ()), None,
                                 class_names, None, problems)
    annotation = {'segments': boxes, 'labels': indices, 'duration': None,
                  'fps': None, 'ambiguous': unscored}
    candidates = None
    if videos is not None:
      name = video + '.mp4'
      candidates = [os.path.join(videos, name)] + [
          os.path.join(videos, folder, name) for folder in _VIDEO_FOLDERS[tag]]
    entries.append((video, candidates, annotation))
  return gather(entries, list(class_names), problems, source=f'THUMOS14 {tag}')
