"""Record -> decoded, sampled, augmented clip with the task's targets (grain maps).

These run in the decode worker processes. Each training clip's randomness
comes from the generator grain derives from (seed, position), one generator
per clip, so a crop, flip or colour change is the same in every frame and
never depends on which worker decoded it. A video that cannot be read
becomes {'error', 'path'}, which the main process counts and replaces.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vidjax.data import decode, decode_images, decode_pyav, transforms
from vidjax.data.clip_spec import ClipSpec, eval_indices, train_indices
from vidjax.data.decode_checks import check_indices
from vidjax.data.frame_cache import FrameCache
from vidjax.data.records import ClipInfo, NoTargets, Record, Targets


def _frame_bytes(path: str, size: dict) -> int:
  """Bytes of one decoded frame at `size` (height and width, or a short side, or native)."""
  if size.get('height'):
    height, width = size['height'], size['width']
  else:
    height, width = decode_pyav.native_size(path)
    if size.get('short_side'):
      height, width = decode.short_side_size(height, width, size['short_side'])
  return height * width * 3


def _read(spec: ClipSpec, record: Record, sample, short_side: int, crop: str,
          cache: FrameCache | None = None) -> tuple[np.ndarray, np.ndarray, int]:
  """(frames at the size the crop mode wants, their indices, the video's frame count).

  A record whose annotation lists 'frame_files' (detection layouts: a folder
  of frames, or one image) is read from those images, any other from its video
  file, or from `cache` (frame_cache.py), which it fills with whole videos.
  """
  if crop == 'none':
    size = dict(height=spec.height, width=spec.width)
  else:
    size = dict(short_side=short_side or None)
  files = record.annotation.get('frame_files')
  key = (record.path, size.get('height'), size.get('width'), size.get('short_side'))

  def from_whole(frames):  # [N, H, W, 3], all of a video -> the sampled frames
    indices = np.asarray(sample(len(frames)), dtype=np.int64)
    check_indices(record.path, indices.reshape(-1), len(frames))
    return frames[indices], indices, len(frames)

  whole = cache.get(key) if files is None and cache is not None else None
  if whole is not None:
    return from_whole(whole)
  seen = {}

  def counted(num_frames: int):
    seen['num_frames'] = num_frames
    if (files is None and cache is not None
        and cache.wants(key, num_frames * _frame_bytes(record.path, size))):
      seen['whole'] = True
      return np.arange(num_frames)
    return sample(num_frames)

  read = decode.read_clip if files is None else decode_images.read_clip
  try:
    frames, indices = read(record.path if files is None else files, counted,
                           num_threads=spec.decode_threads, timeout_s=spec.timeout_s or None,
                           **size)
  except decode.DecodeError:
    if not seen.get('whole'):
      raise
    cache.unreadable(key)  # Damage past the sampled frames, maybe: read just those.
    return _read(spec, record, sample, short_side, crop, cache)
  if seen.get('whole'):
    cache.put(key, frames)
    return from_whole(frames)
  return frames, indices, seen['num_frames']


def _at_least(clip: np.ndarray, height: int, width: int) -> np.ndarray:
  """Scales a clip up (short side, aspect kept) when a crop would not fit."""
  _, h, w, _ = clip.shape
  if h >= height and w >= width:
    return clip
  scale = max(height / h, width / w)
  return transforms.resize(clip, max(height, round(h * scale)), max(width, round(w * scale)))


@dataclasses.dataclass(frozen=True)
class TrainClip:
  """A grain random map: (position, record) -> one augmented training clip.

  Returns {'video' [T, H, W, 3] uint8, **targets}, or {'error', 'path'}.
  """
  spec: ClipSpec
  targets: Targets = NoTargets()
  cache: FrameCache | None = None  # Whole decoded videos, this worker's (frame_cache.py).

  def __call__(self, item: tuple[int, Record], rng: np.random.Generator) -> dict:
    _, record = item
    spec = self.spec
    # The sampler runs in the decode's thread, which a timeout abandons: it
    # gets a generator of its own, so a late call cannot disturb `rng`.
    sample_rng = np.random.default_rng(int(rng.integers(1 << 63)))
    start, stop = record.annotation.get('frames', (0, None))  # A span of a long video.

    def sample(num_frames: int) -> np.ndarray:
      end = num_frames if stop is None else min(stop, num_frames)
      return start + train_indices(spec, sample_rng, max(end - start, 1))
    try:
      clip, indices, num_video_frames = _read(
          spec, record, sample, spec.train_short_side, spec.train_crop, self.cache)  # [T, h, w, 3]
    except decode.DecodeError as e:
      return {'error': e.reason, 'path': record.path}
    if spec.train_crop == 'random_resized':
      clip = transforms.random_resized_crop(clip, rng, (spec.height, spec.width),
                                            spec.crop_scale, spec.crop_ratio)
    elif spec.train_crop == 'random':  # At the decoded scale: what a denoiser needs.
      clip = _at_least(clip, spec.height, spec.width)
      top = int(rng.integers(clip.shape[1] - spec.height + 1))
      left = int(rng.integers(clip.shape[2] - spec.width + 1))
      clip = transforms.crop(clip, top, left, spec.height, spec.width)
    elif spec.train_crop == 'center':
      clip = transforms.center_crop(_at_least(clip, spec.height, spec.width),
                                    (spec.height, spec.width))
    flipped = bool(spec.flip and rng.random() < 0.5)
    if flipped:
      clip = transforms.horizontal_flip(clip)
    if any(spec.color_jitter):
      brightness, contrast, saturation = spec.color_jitter
      clip = transforms.color_jitter(clip, rng, brightness=brightness, contrast=contrast,
                                     saturation=saturation)
    info = ClipInfo(indices, num_video_frames, flipped)
    return {'video': np.ascontiguousarray(clip), **self.targets(record.annotation, info)}


@dataclasses.dataclass(frozen=True)
class EvalViews:
  """A grain map: (index, record) -> its evaluation views, the same on every run.

  Returns {'video' [V, T, H, W, 3] uint8, 'index', **targets [V, ...]} with
  V = clips x crops (clip-major: the 3 crops of clip 0, then of clip 1, ...),
  or {'error', 'path'}.
  """
  spec: ClipSpec
  targets: Targets = NoTargets()

  def __call__(self, item: tuple[int, Record]) -> dict:
    index, record = item
    spec = self.spec
    try:
      clips, indices, num_video_frames = _read(
          spec, record, lambda n: eval_indices(spec, spec.eval_num_clips, n),
          spec.eval_short_side, spec.eval_crop)  # [K, T, h, w, 3], indices [K, T]
    except decode.DecodeError as e:
      return {'error': e.reason, 'path': record.path}
    crops = 1
    if spec.eval_crop == 'center':
      clips = np.stack([transforms.center_crop(_at_least(c, spec.height, spec.width),
                                               (spec.height, spec.width)) for c in clips])
    elif spec.eval_crop == 'three':
      crops = 3
      clips = np.concatenate([transforms.spatial_crops(_at_least(c, spec.height, spec.width),
                                                       spec.height, 3) for c in clips])
    per_clip = [self.targets(record.annotation, ClipInfo(clip_indices, num_video_frames))
                for clip_indices in indices]
    targets = {k: np.repeat(np.stack([t[k] for t in per_clip]), crops, axis=0)
               for k in self.targets.padding()}
    return {'video': np.ascontiguousarray(clips), 'index': np.int32(index), **targets}


@dataclasses.dataclass(frozen=True)
class SourceClip:
  """A grain random map for array-backed splits: (position, record) -> {'video'}.

  `source[record.index]` is a whole uint8 sequence [T, H, W, C] (Moving
  MNIST renders it on the fly); nothing is sampled or augmented.
  """
  source: Any

  def __call__(self, item: tuple[int, Record], rng: np.random.Generator) -> dict:
    del rng
    return {'video': np.asarray(self.source[item[1].index])}


def read_clip_for_prediction(path: str, data) -> np.ndarray:
  """The centre view of the eval protocol for one file, for `--mode predict`.

  Returns uint8 [T, H, W, 3]: the centred clip, centre crop.
  """
  spec = dataclasses.replace(ClipSpec.from_config(data), eval_num_clips=1)
  element = EvalViews(spec)((0, Record(path)))
  if 'error' in element:
    raise decode.DecodeError(path, element['error'])
  return element['video'][len(element['video']) // 2]
