"""Which frames of a video make a clip: pure functions returning frame indices.

Sampling is kept apart from decoding so that the choice of frames can be
tested by hand-computed numbers and reused with any decoder: the pipeline
asks for `read_frames(path, indices)`. Training passes an `np.random.Generator`
(from the pipeline's seeded per-record generator); evaluation passes none and
gets the same indices every time.

Conventions: a clip of `clip_length` frames taken every `stride` frames spans
`(clip_length - 1) * stride + 1` frames of the video. Videos shorter than
that either loop back to their first frame (`short='loop'`) or repeat their
last frame (`short='pad'`).
"""
from __future__ import annotations

import numpy as np

_SHORT_MODES = ('loop', 'pad')


def clip_span(clip_length: int, stride: int) -> int:
  """How many video frames a clip covers, first to last frame included."""
  return (clip_length - 1) * stride + 1


def _check(num_frames: int, clip_length: int, stride: int, short: str) -> None:
  if num_frames < 1:
    raise ValueError(f'num_frames_in_video must be >= 1, got {num_frames}')
  if clip_length < 1 or stride < 1:
    raise ValueError(f'clip_length and stride must be >= 1, got '
                     f'{clip_length} and {stride}')
  if short not in _SHORT_MODES:
    raise ValueError(f'short must be one of {_SHORT_MODES}, got {short!r}')


def _wrap(positions: np.ndarray, num_frames: int, short: str) -> np.ndarray:
  """Maps positions past the last frame back into the video."""
  if short == 'loop':
    return positions % num_frames
  return np.minimum(positions, num_frames - 1)


def dense_indices(num_frames_in_video: int, clip_length: int, stride: int, *,
                  rng: np.random.Generator | None = None,
                  start: int | None = None,
                  short: str = 'loop') -> np.ndarray:
  """One clip of `clip_length` frames, every `stride`-th frame.

  Returns int64 frame indices [clip_length].

  The first frame is `start` when given; else uniform over all starts that
  keep the clip inside the video when `rng` is given (training); else the
  centre start (evaluation), the same as `multiview_starts(..., 1)`. Frames
  past the end loop or repeat the last frame, see the module docstring.

  Example: 10 frames, clip_length 4, stride 2 spans 7 frames; starts 0..3 fit;
  the centre start is 2, giving [2, 4, 6, 8].
  """
  _check(num_frames_in_video, clip_length, stride, short)
  if rng is not None and start is not None:
    raise ValueError('give rng (random start) or start, not both')
  max_start = max(num_frames_in_video - clip_span(clip_length, stride), 0)
  if start is None:
    if rng is not None:
      start = int(rng.integers(0, max_start + 1))
    else:
      start = int(multiview_starts(num_frames_in_video, clip_length, stride,
                                   1)[0])
  elif start < 0:
    raise ValueError(f'start must be >= 0, got {start}')
  positions = start + np.arange(clip_length, dtype=np.int64) * stride
  return _wrap(positions, num_frames_in_video, short)


def segment_indices(num_frames_in_video: int, num_segments: int, *,
                    rng: np.random.Generator | None = None) -> np.ndarray:
  """TSN sampling: one frame from each of `num_segments` equal parts.

  Returns int64 frame indices [num_segments].

  Segment k covers frames [k * L, (k + 1) * L) with L = num_frames / S (not
  rounded, so segments tile the whole video). With `rng` the frame is uniform
  within its segment (training); without, it is the frame at the segment's
  centre, floor((k + 0.5) * L). Videos with fewer frames than segments repeat
  frames. Example: 100 frames, 4 segments -> [12, 37, 62, 87].
  """
  if num_frames_in_video < 1:
    raise ValueError(f'num_frames_in_video must be >= 1, got '
                     f'{num_frames_in_video}')
  if num_segments < 1:
    raise ValueError(f'num_segments must be >= 1, got {num_segments}')
  length = num_frames_in_video / num_segments
  offsets = (rng.random(num_segments) if rng is not None
             else np.full(num_segments, 0.5))
  positions = np.floor((np.arange(num_segments) + offsets) * length)
  return np.minimum(positions.astype(np.int64), num_frames_in_video - 1)


def multiview_starts(num_frames_in_video: int, clip_length: int, stride: int,
                     num_clips: int) -> np.ndarray:
  """First frames of `num_clips` clips spread evenly over a video.

  Returns int64 start indices [num_clips].

  The test protocol of MMAction2's SampleFrames (and, up to rounding,
  PySlowFast's multi-view test): the valid starts 0..max_start are cut into K
  equal parts and each clip starts at the centre of its part,
  floor((max_start + 1) / K * (k + 0.5)). Videos shorter than one clip give
  start 0 for every view. Example: 100 frames, clip spanning 16, 3 clips:
  max_start 84, parts of 85/3 -> starts [14, 42, 70].
  """
  _check(num_frames_in_video, clip_length, stride, 'loop')
  if num_clips < 1:
    raise ValueError(f'num_clips must be >= 1, got {num_clips}')
  max_start = num_frames_in_video - clip_span(clip_length, stride)
  if max_start < 0:
    return np.zeros(num_clips, np.int64)
  part = (max_start + 1) / num_clips
  return np.floor((np.arange(num_clips) + 0.5) * part).astype(np.int64)


def multiview_indices(num_frames_in_video: int, clip_length: int, stride: int,
                      num_clips: int, *, short: str = 'loop') -> np.ndarray:
  """The frames of `multiview_starts`' clips: int64 [num_clips, clip_length]."""
  starts = multiview_starts(num_frames_in_video, clip_length, stride, num_clips)
  return np.stack([dense_indices(num_frames_in_video, clip_length, stride,
                                 start=int(s), short=short) for s in starts])
