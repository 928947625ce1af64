"""What localization and segmentation layouts return, and the one check of their segments.

THUMOS14's per-class lists, ActivityNet-style JSON and the MS-TCN folders all
annotate untrimmed videos with time segments (segmentation also labels every
frame). Each loader reads its files into the same `UntrimmedDataset`, and
every segment passes `check_segments`, so a bad annotation is treated the
same whichever layout it came from: dropped or clipped, one line in
`problems`, one warning with the count -- never an exception, because the
published files do contain a few (THUMOS14 and ActivityNet both have
segments that end past the video). A malformed *file* is different: nothing
sensible can be read from it, so it is a one-line ValueError (`malformed`)
naming the file, the line and the fix.

A record's annotation holds:
  'segments'      float32 [N, 2], seconds, t0 < t1
  'labels'        int32 [N], indices into `class_names`
  'duration'      seconds, or None when the layout does not say
  'fps'           frames per second, or None when the layout does not say
  'frame_labels'  int32 [T], segmentation layouts only
  'ambiguous'     float32 [M, 2], THUMOS14 only (segments not to be scored)
A video without segments stays in its split: it is background only.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
from typing import Any, Sequence

import numpy as np

from vidjax.data.layouts.common import _Listing
from vidjax.data.records import Record

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class UntrimmedDataset:
  """The videos found, their class names, what is absent and what was repaired.

  `missing` lists the videos whose file is absent (only when a video or
  feature folder is given; those videos are left out of `records`).
  `problems` has one line per dropped or clipped annotation. `background`
  holds the indices of the classes that mean "no action" (segmentation
  layouts name one; localization layouts leave it empty).
  """
  records: list[Record]
  class_names: list[str]
  missing: list[str]
  problems: list[str]
  background: tuple[int, ...] = ()

  def __len__(self) -> int:
    return len(self.records)

  def summary(self) -> str:
    """One line: videos, classes, segments, missing videos and annotation problems."""
    notes = [r.annotation for r in self.records]
    empty = sum(len(a['segments']) == 0 for a in notes)
    line = (f'{len(self.records)} videos ({empty} without segments), '
            f'{len(self.class_names)} classes, '
            f'{sum(len(a["segments"]) for a in notes)} segments')
    if any('ambiguous' in a for a in notes):
      line += f', {sum(len(a.get("ambiguous", ())) for a in notes)} ambiguous'
    if self.missing:
      listed = len(self.records) + len(self.missing)
      line += (f', {len(self.missing)} of {listed} listed missing '
               f'({100 * len(self.missing) / listed:.1f}%), e.g. {self.missing[0]}')
    if self.problems:
      line += (f', {len(self.problems)} annotation problems, '
               f'e.g. {self.problems[0]}')
    return line


def video_folder(root: str, video_dir: str | None) -> str | None:
  """`root/video_dir`, or `root/videos` when it exists, or None (annotations without videos)."""
  if video_dir is not None:
    return os.path.join(root, video_dir)
  videos = os.path.join(root, 'videos')
  return videos if os.path.isdir(videos) else None


def malformed(path: str, line: int | None, what: str, fix: str) -> ValueError:
  """A file that cannot be read as its layout: one line naming file, line and fix."""
  where = f'{path}, line {line}' if line is not None else path
  return ValueError(f'{where}: {what}; {fix}')


def is_number(value: Any) -> bool:
  """A JSON number (bool is an int in Python, but not a time)."""
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_duration(video_id: str, duration: float | None,
                   problems: list[str]) -> float | None:
  """A usable duration in seconds, or None; an impossible one is a problem line."""
  if duration is None:
    return None
  duration = float(duration)
  if not math.isfinite(duration) or duration <= 0:
    problems.append(f'{video_id}: duration {duration} is not positive; '
                    f'treated as unknown')
    return None
  return duration


def check_segments(video_id: str, segments: Sequence[Sequence[float]],
                   labels: Sequence[str | int] | None,
                   class_names: Sequence[str], duration: float | None,
                   problems: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
  """Every layout's segments -> (float32 [N, 2], int32 [N]); what is wrong goes to `problems`.

  `labels` are class names or indices into `class_names`, or None for
  unlabelled segments (THUMOS14's ambiguous ones; None is returned then).
  Dropped: an unknown label, end <= start (or a time that is not finite), a
  start at or after the known duration, an end at or before 0. Clipped: a
  negative start to 0, an end past the known duration to it.
  """
  lookup = {name: i for i, name in enumerate(class_names)}
  kind = 'segment' if labels is not None else 'ambiguous segment'
  kept, kept_labels = [], []
  for i, (t0, t1) in enumerate(segments):
    t0, t1 = float(t0), float(t1)
    what = f'{video_id}: {kind} [{t0}, {t1}]'
    if labels is not None:
      label = labels[i]
      if isinstance(label, str):
        index = lookup.get(label, -1)
      else:
        index = int(label) if 0 <= int(label) < len(class_names) else -1
      if index < 0:
        problems.append(f'{what} has label {label!r}, not in the class list; dropped')
        continue
    if not (math.isfinite(t0) and math.isfinite(t1)):
      problems.append(f'{what} is not a finite time; dropped')
      continue
    if t1 <= t0:
      problems.append(f'{what} ends before it starts; dropped')
      continue
    if duration is not None and t0 >= duration:
      problems.append(f'{what} starts at or after the video ends ({duration} s); dropped')
      continue
    if t1 <= 0:
      problems.append(f'{what} ends before the video starts; dropped')
      continue
    if t0 < 0:
      problems.append(f'{what} starts before 0; clipped to 0')
      t0 = 0.0
    if duration is not None and t1 > duration:
      problems.append(f'{what} ends after the video ({duration} s); clipped to it')
      t1 = duration
    kept.append((t0, t1))
    if labels is not None:
      kept_labels.append(index)
  boxes = np.asarray(kept, np.float32).reshape(-1, 2)
  if labels is None:
    return boxes, None
  return boxes, np.asarray(kept_labels, np.int32)


def gather(videos: Sequence[tuple[str, Sequence[str] | None, dict]],
           class_names: list[str], problems: list[str], *, source: str,
           background: tuple[int, ...] = ()) -> UntrimmedDataset:
  """(video_id, candidate files or None, annotation) -> the dataset.

  With candidates, the first that exists is the record's path; none existing
  puts the first, the layout's canonical path, in `missing`. None means no
  video folder was given: the path is ''. Problems are logged once, counted.
  """
  listing = _Listing()
  records, missing = [], []
  for video_id, candidates, annotation in videos:
    if candidates is None:
      records.append(Record('', annotation, video_id))
      continue
    found = next((p for p in candidates if listing.exists(p)), None)
    if found is None:
      missing.append(candidates[0])
    else:
      records.append(Record(found, annotation, video_id))
  if problems:
    log.warning('%s: %d annotation problems (segments dropped or clipped), e.g. %s',
                source, len(problems), problems[0])
  return UntrimmedDataset(records, class_names, missing, problems, background)
