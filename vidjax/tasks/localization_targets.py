"""Untrimmed-video annotations -> the detector's training targets, on the host.

Times: a snippet feature i covers frames [i * stride, i * stride + window)
and stands for the time of its centre, (i * stride + window / 2) / fps
seconds (ActionFormer's convention, so published I3D features line up with
their annotations). Segments are converted once to snippet units.

Label assignment (ActionFormer's, anchor-free): a pyramid point is a
positive for a ground-truth segment when it lies inside the segment's
centre region (`radius` strides of its level around the centre, clipped to
the segment) and the segment's larger distance from the point falls in the
level's regression range; a point claimed by several segments takes the
shortest. Its targets are the class (one-hot over the sigmoid scores) and
the distances to start and end in the level's stride.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from vidjax.data.layouts import snippet_features
from vidjax.data.records import Record
from vidjax.models.temporal_detector import point_positions


@dataclasses.dataclass(frozen=True)
class SnippetGrid:
  """Where snippet features sit in time: `stride` and `window` in frames, `fps`."""
  stride: float
  window: float
  fps: float

  def to_snippets(self, seconds):
    return np.asarray(seconds, np.float64) * self.fps / self.stride - 0.5 * self.window / self.stride

  def to_seconds(self, snippets):
    return (np.asarray(snippets, np.float64) * self.stride + 0.5 * self.window) / self.fps


def assign_points(segments, labels, *, num_steps: int, levels: int, num_classes: int,
                  regression_ranges: Sequence[Sequence[float]], radius: float):
  """segments [N, 2] in snippets, labels [N] -> (class targets [P, K] float32,
  offset targets [P, 2] float32 in each point's stride, positive [P] bool)."""
  position, stride = point_positions(num_steps, levels)  # [P]
  level = np.log2(stride).astype(int)
  ranges = np.asarray(regression_ranges, np.float64)[level]  # [P, 2]
  num_points = len(position)
  class_targets = np.zeros((num_points, num_classes), np.float32)
  offsets = np.zeros((num_points, 2), np.float32)
  segments = np.asarray(segments, np.float64).reshape(-1, 2)
  if len(segments) == 0:
    return class_targets, offsets, np.zeros((num_points,), bool)
  start, end = segments[None, :, 0], segments[None, :, 1]  # [1, N]
  p, s = position[:, None], stride[:, None]  # [P, 1]
  left, right = p - start, end - p  # [P, N]
  centre = (start + end) / 2
  inner_start = np.maximum(centre - radius * s, start)
  inner_end = np.minimum(centre + radius * s, end)
  inside = np.minimum(p - inner_start, inner_end - p) > 0
  reach = np.maximum(left, right)
  in_range = (reach >= ranges[:, :1]) & (reach <= ranges[:, 1:])
  length = np.where(inside & in_range, end - start, np.inf)  # [P, N]
  best = np.argmin(length, axis=1)  # [P]
  positive = np.isfinite(length[np.arange(num_points), best])
  chosen = np.asarray(labels, np.int64)[best]
  class_targets[positive, chosen[positive]] = 1.0
  pick = lambda a: a[np.arange(num_points), best]
  offsets[positive, 0] = (pick(left) / stride)[positive]
  offsets[positive, 1] = (pick(right) / stride)[positive]
  return class_targets, offsets, positive


def snippet_labels(segments, labels, num_steps: int) -> np.ndarray:
  """int32 [num_steps]: 0 for background, class + 1 where a snippet's centre is in a segment.

  Where segments overlap, the shorter one wins (it is the one that would be lost otherwise).
  """
  out = np.zeros((num_steps,), np.int32)
  steps = np.arange(num_steps)
  segments = np.asarray(segments, np.float64).reshape(-1, 2)
  order = np.argsort(-(segments[:, 1] - segments[:, 0]), kind='stable')  # Longest first.
  for i in order:
    inside = (steps >= segments[i, 0]) & (steps < segments[i, 1])
    out[inside] = int(labels[i]) + 1
  return out


def crop_segments(segments, labels, start: float, length: float, min_kept: float = 0.5):
  """The segments seen by a window [start, start + length), clipped, in window units.

  A segment keeps its place when at least `min_kept` of it lies inside;
  less than that and it is dropped (a sliver of an action teaches nothing).
  """
  segments = np.asarray(segments, np.float64).reshape(-1, 2)
  clipped = np.clip(segments, start, start + length)
  kept = (clipped[:, 1] - clipped[:, 0]) >= min_kept * (segments[:, 1] - segments[:, 0])
  kept &= clipped[:, 1] > clipped[:, 0]
  return clipped[kept] - start, np.asarray(labels)[kept]


@dataclasses.dataclass(frozen=True)
class AssignmentSpec:
  """What `assign_points` needs besides the segments: the model's pyramid and ranges."""
  num_steps: int  # Training window, in snippets.
  levels: int
  num_classes: int
  regression_ranges: tuple[tuple[float, float], ...]
  radius: float

  def targets(self, segments, labels) -> dict[str, np.ndarray]:
    class_targets, offsets, positive = assign_points(
        segments, labels, num_steps=self.num_steps, levels=self.levels,
        num_classes=self.num_classes, regression_ranges=self.regression_ranges,
        radius=self.radius)
    return {'class_targets': class_targets, 'offset_targets': offsets, 'positive': positive,
            'segment_labels': snippet_labels(segments, labels, self.num_steps)}


@dataclasses.dataclass(frozen=True)
class FeatureWindow:
  """A grain random map: (position, record) -> one training window of a video's features.

  `record.path` is the video's snippet features; its annotation holds
  'segments' [N, 2] in snippets and 'labels' [N]. A video longer than the
  window is cropped at random, preferring crops that keep an action (up to
  `tries` draws); a shorter one is padded and masked.
  """
  spec: AssignmentSpec
  feature_layout: str = 'auto'
  feature_dim: int | None = None
  tries: int = 10

  def __call__(self, item: tuple[int, Record], rng: np.random.Generator) -> dict:
    record = item[1]
    try:
      features = snippet_features.read_features(record.path, layout=self.feature_layout,
                                                feature_dim=self.feature_dim)
    except (OSError, ValueError) as e:
      return {'error': str(e).splitlines()[0], 'path': record.path}
    segments, labels = record.annotation['segments'], record.annotation['labels']
    length = self.spec.num_steps
    start = 0
    if len(features) > length:
      for _ in range(self.tries):
        start = int(rng.integers(0, len(features) - length + 1))
        if len(crop_segments(segments, labels, start, length)[0]) or not len(segments):
          break
    window = features[start:start + length]
    kept, kept_labels = crop_segments(segments, labels, start, length)
    padded = np.zeros((length, window.shape[1]), np.float32)
    padded[:len(window)] = window
    mask = np.zeros((length,), bool)
    mask[:len(window)] = True
    targets = self.spec.targets(kept, kept_labels)
    targets['positive'] &= point_mask(mask, self.spec.levels)
    return {'features': padded, 'mask': mask, **targets}


def point_mask(mask: np.ndarray, levels: int) -> np.ndarray:
  """[T] valid steps -> [P] valid pyramid points (a point is valid if it pools a valid step)."""
  m = np.asarray(mask, bool)
  out = [m]
  for _ in range(1, levels):
    m = m.reshape(-1, 2).any(axis=1)
    out.append(m)
  return np.concatenate(out)
