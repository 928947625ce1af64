"""What a dataset hands the pipeline: a video and whatever its task annotates.

A `Record` is a path plus the task's own fields -- {'label': 3} for a
classification set, {'segments': [[t0, t1, label], ...]} for temporal
localization, {'frame_labels': [...]} for segmentation, {'boxes': ...} with
track ids for detection, {} for frame prediction. Two keys are the pipeline's
own: {'frames': (start, stop)} confines a record's training clips to that
span of a long video (an action instance cut from an untrimmed video), and
{'frame_files': [...]} (detection layouts) says the frames are those images,
in order, not a video file at `path`. The pipeline never reads
the annotation: it hands it, with what it knows about the sampled clip
(`ClipInfo`), to the task's targets function, which returns fixed-shape
arrays (`pad_rows` pads variable-length ones, with a mask), so every batch
has static shapes and the step never recompiles.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Protocol

import numpy as np


@dataclasses.dataclass(frozen=True)
class Record:
  """One example of a split.

  `path` is the video file; `index` is the row of an array-backed split
  (Moving MNIST's sequences, `source` of `registry.Split`), -1 for a file.
  `video_id` is unique within its dataset (the file stem for most layouts).
  """
  path: str
  annotation: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  video_id: str = ''
  index: int = -1


@dataclasses.dataclass(frozen=True)
class ClipInfo:
  """What the pipeline knows of one sampled clip, for the targets function.

  `frame_indices` [T] are the decoded frames' positions in the video (of
  `num_video_frames`); `flipped` says whether the clip was mirrored, so a
  task can mirror what has a side (move_left -> move_right, a box's x).
  """
  frame_indices: np.ndarray
  num_video_frames: int
  flipped: bool = False


class Targets(Protocol):
  """A task's annotation -> a clip's targets; picklable (it runs in decode workers)."""

  def __call__(self, annotation: Mapping[str, Any], clip: ClipInfo) -> dict[str, np.ndarray]:
    """Fixed-shape arrays for one clip: the same keys, shapes and dtypes for every record."""

  def padding(self) -> dict[str, np.ndarray]:
    """The targets of a padding row (evaluation batches are filled up with them)."""


@dataclasses.dataclass(frozen=True)
class NoTargets:
  """A task that learns from the frames alone (frame prediction, denoising)."""

  def __call__(self, annotation, clip: ClipInfo) -> dict[str, np.ndarray]:
    del annotation, clip
    return {}

  def padding(self) -> dict[str, np.ndarray]:
    return {}


def pad_rows(rows, max_rows: int, width: int, dtype=np.float32, fill=0) -> tuple[np.ndarray, np.ndarray]:
  """Variable-length rows [N, width] -> (padded [max_rows, width], mask [max_rows] bool).

  Rows beyond `max_rows` are an error, not silently dropped: the config's
  maximum must hold the dataset's longest annotation.
  """
  rows = np.asarray(rows, dtype).reshape(-1, width)
  if len(rows) > max_rows:
    raise ValueError(f'{len(rows)} annotated rows exceed the maximum of {max_rows}; raise it')
  padded = np.full((max_rows, width), fill, dtype)
  padded[:len(rows)] = rows
  mask = np.zeros((max_rows,), np.bool_)
  mask[:len(rows)] = True
  return padded, mask
