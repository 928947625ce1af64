"""What every layout loader returns, and how it finds the files that exist.

Loaders only list files: they never open a video, so loading Kinetics' 240k
entries takes seconds. A video listed in the annotations but absent on disk
is not an error (real Kinetics copies miss 5-10% of YouTube videos): it is
left out of `records` and kept in `missing`.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence


@dataclasses.dataclass(frozen=True)
class VideoRecord:
  """One labelled video. `video_id` is unique within its dataset."""
  path: str
  label: int
  video_id: str


@dataclasses.dataclass(frozen=True)
class VideoDataset:
  """The videos found on disk, the class names, and the listed-but-absent paths.

  `class_names[record.label]` is the name of a record's class.
  """
  records: list[VideoRecord]
  class_names: list[str]
  missing: list[str]

  def __len__(self) -> int:
    return len(self.records)

  def summary(self) -> str:
    """One line: videos, classes, and how many listed videos are missing."""
    listed = len(self.records) + len(self.missing)
    line = (f'{len(self.records)} videos, {len(self.class_names)} classes')
    if self.missing:
      line += (f', {len(self.missing)} of {listed} listed missing '
               f'({100 * len(self.missing) / listed:.1f}%), '
               f'e.g. {self.missing[0]}')
    return line


class _Listing:
  """Answers "does this file exist?" by listing each directory once.

  One `listdir` per class folder instead of one `stat` per video: much faster
  on network file systems, where Kinetics usually lives.
  """

  def __init__(self):
    self._names: dict[str, set[str]] = {}

  def exists(self, path: str) -> bool:
    folder, name = os.path.split(path)
    names = self._names.get(folder)
    if names is None:
      try:
        names = set(os.listdir(folder))
      except OSError:
        names = set()
      self._names[folder] = names
    return name in names


def require(path: str, what: str, expected: str) -> None:
  """A missing annotation file: a one-line ValueError naming what to expect."""
  if not os.path.exists(path):
    raise ValueError(f'{what} not found: expected {expected}')


def collect(entries: Sequence[tuple[Sequence[str], int, str]],
            class_names: list[str]) -> VideoDataset:
  """Keeps the entries whose file exists; entries are (candidates, label, id).

  The first candidate that exists is used; a missing entry is reported under
  its first candidate, the layout's canonical path.
  """
  listing = _Listing()
  records, missing = [], []
  for paths, label, video_id in entries:
    found = next((p for p in paths if listing.exists(p)), None)
    if found is None:
      missing.append(paths[0])
    else:
      records.append(VideoRecord(found, label, video_id))
  return VideoDataset(records, class_names, missing)
