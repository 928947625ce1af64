"""How a video becomes model input: `config.data` checked once, and which frames a clip takes.

Training samples one clip per video at random (dense strided runs, or TSN
segments); evaluation takes `eval_num_clips` evenly spread clips times the
spatial crops of `eval_crop`, the same on every run.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from vidjax.data import sampling
from vidjax.errors import UserError

_SAMPLINGS = ('dense', 'segments')
_SHORT_VIDEOS = ('loop', 'pad')
_TRAIN_CROPS = ('none', 'random_resized', 'random', 'center')
_EVAL_CROPS = ('none', 'center', 'three')


def _one_of(key: str, value: str, allowed: Sequence[str]) -> str:
  if value not in allowed:
    raise UserError(f"data.{key} is '{value}'; use one of {', '.join(allowed)}")
  return value


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """How a video becomes model input: `config.data`, checked, picklable.

  A crop of 'none' scales whole frames to height x width while decoding (the
  aspect ratio is not kept); the other crops decode with the short side at
  `*_short_side` (0: native size) and cut height x width out of that.
  """
  num_frames: int  # T: frames per clip, or segments with sampling 'segments'.
  frame_stride: int
  height: int
  width: int
  sampling: str = 'dense'
  short_videos: str = 'loop'
  decode_threads: int = 1
  timeout_s: float = 0.0
  train_crop: str = 'none'
  train_short_side: int = 0
  crop_scale: tuple[float, float] = (0.08, 1.0)
  crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
  flip: bool = False
  color_jitter: tuple[float, float, float] = (0.0, 0.0, 0.0)
  eval_num_clips: int = 1
  eval_crop: str = 'none'
  eval_short_side: int = 0

  @classmethod
  def from_config(cls, data) -> 'ClipSpec':
    spec = cls(
        num_frames=data.num_frames, frame_stride=data.frame_stride, height=data.height,
        width=data.width, sampling=_one_of('sampling', data.sampling, _SAMPLINGS),
        short_videos=_one_of('short_videos', data.short_videos, _SHORT_VIDEOS),
        decode_threads=data.decode_threads, timeout_s=float(data.decode_timeout_s),
        train_crop=_one_of('train_crop', data.train_crop, _TRAIN_CROPS),
        train_short_side=data.train_short_side, crop_scale=tuple(data.crop_scale),
        crop_ratio=tuple(data.crop_ratio), flip=data.flip,
        color_jitter=tuple(data.color_jitter), eval_num_clips=data.eval_num_clips,
        eval_crop=_one_of('eval_crop', data.eval_crop, _EVAL_CROPS),
        eval_short_side=data.eval_short_side)
    if spec.eval_crop == 'three' and spec.height != spec.width:
      raise UserError(f"data.eval_crop 'three' cuts square crops; data.height ({spec.height}) "
                      f"and data.width ({spec.width}) differ")
    if spec.eval_num_clips < 1:
      raise UserError(f'data.eval_num_clips must be >= 1, got {spec.eval_num_clips}')
    if len(spec.color_jitter) != 3:
      raise UserError(f'data.color_jitter needs 3 values (brightness, contrast, saturation), '
                      f'got {spec.color_jitter}')
    return spec

  @property
  def views(self) -> int:
    return self.eval_num_clips * (3 if self.eval_crop == 'three' else 1)


def views_per_video(data) -> int:
  """Rows `eval_batches` emits per video: temporal clips x spatial crops."""
  return ClipSpec.from_config(data).views


def _segment_views(num_frames: int, num_segments: int, num_views: int) -> np.ndarray:
  """TSN test frames for `num_views` views: int64 [V, S].

  View v takes frame floor((k + (v + 0.5) / V) * L) of segment k (length
  L = num_frames / S): one view is `sampling.segment_indices` without rng,
  the segment centres; more views spread evenly within each segment.
  """
  length = num_frames / num_segments
  offsets = (np.arange(num_views)[:, None] + 0.5) / num_views  # [V, 1]
  positions = np.floor((np.arange(num_segments)[None, :] + offsets) * length)
  return np.minimum(positions.astype(np.int64), num_frames - 1)


def train_indices(spec: ClipSpec, rng: np.random.Generator, num_frames: int) -> np.ndarray:
  """Frame indices [T] of one training clip."""
  if spec.sampling == 'segments':
    return sampling.segment_indices(num_frames, spec.num_frames, rng=rng)
  return sampling.dense_indices(num_frames, spec.num_frames, spec.frame_stride, rng=rng,
                                short=spec.short_videos)


def eval_indices(spec: ClipSpec, num_clips: int, num_frames: int) -> np.ndarray:
  """Frame indices [K, T] of the K evaluation clips, evenly spread."""
  if spec.sampling == 'segments':
    return _segment_views(num_frames, spec.num_frames, num_clips)
  return sampling.multiview_indices(num_frames, spec.num_frames, spec.frame_stride, num_clips,
                                    short=spec.short_videos)
