"""The grain pipeline: records -> decoded, sampled, augmented clips -> batches.

Order of stages, and why:
- shuffle and repeat over the record list, seeded, so every epoch has a new
  order and the stream depends only on the seed;
- decode, sample and augment in worker processes (`mp_prefetch`). Each
  element's randomness derives from (seed, element index), never from which
  worker decoded it; one generator per clip, so a crop, flip or colour change
  is the same in every frame;
- replace failed videos (counted) and batch, then mix (mixup / cutmix), in
  the main process (`TrainIterator`). Batching after the multiprocessing
  stage makes the batches independent of the worker count; mixing draws from
  (seed, batch number). The iterator's state is (stream position, batches
  made), so a resumed run's batches are the uninterrupted run's, byte for
  byte, even with another number of workers.
- with several processes, each reads only its rows of every global batch
  of that one stream (`_ProcessRows`), so 2 processes train on exactly the
  batches 1 process would (mixing aside: it pairs rows within a process).
Frames stay uint8 on the host; normalisation happens on device.

Evaluation emits one row per view (`views_per_video`: clips x crops), all
with the video's `index`, so the caller can average the softmax per video.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Iterator, Sequence

import grain
import numpy as np

from vidjax.data import datasets, decode, sampling, transforms
from vidjax.errors import UserError

log = logging.getLogger(__name__)

_SAMPLINGS = ('dense', 'segments')
_SHORT_VIDEOS = ('loop', 'pad')
_TRAIN_CROPS = ('none', 'random_resized', 'center')
_EVAL_CROPS = ('none', 'center', 'three')
_MIX_STREAM = 0x6d6978  # Keeps the mixing generators apart from others of the same seed.
_RETRY_STREAM = 0x726574  # Seeds the streams that replace videos failing to decode.
_MAX_RETRIES = 100  # Replacements tried for one row before giving up.


class DataError(UserError):
  """Too much of a dataset failed to decode; the message is one line."""


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


# ------------------------------------------------------------------ sampling

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


def _train_indices(spec: ClipSpec, rng: np.random.Generator, num_frames: int) -> np.ndarray:
  """Frame indices [T] of one training clip."""
  if spec.sampling == 'segments':
    return sampling.segment_indices(num_frames, spec.num_frames, rng=rng)
  return sampling.dense_indices(num_frames, spec.num_frames, spec.frame_stride, rng=rng,
                                short=spec.short_videos)


def _eval_indices(spec: ClipSpec, num_clips: int, num_frames: int) -> np.ndarray:
  """Frame indices [K, T] of the K evaluation clips, evenly spread."""
  if spec.sampling == 'segments':
    return _segment_views(num_frames, spec.num_frames, num_clips)
  return sampling.multiview_indices(num_frames, spec.num_frames, spec.frame_stride, num_clips,
                                    short=spec.short_videos)


# ---------------------------------------------------------------- reading

def _read(spec: ClipSpec, path: str, sample, short_side: int, crop: str) -> np.ndarray:
  """Decodes the sampled frames at the size the crop mode wants."""
  if crop == 'none':
    size = dict(height=spec.height, width=spec.width)
  else:
    size = dict(short_side=short_side or None)
  frames, _ = decode.read_clip(path, sample, num_threads=spec.decode_threads,
                               timeout_s=spec.timeout_s or None, **size)
  return frames


def _at_least(clip: np.ndarray, height: int, width: int) -> np.ndarray:
  """Scales a clip up (short side, aspect kept) when a crop would not fit."""
  _, h, w, _ = clip.shape
  if h >= height and w >= width:
    return clip
  scale = max(height / h, width / w)
  return transforms.resize(clip, max(height, round(h * scale)), max(width, round(w * scale)))


@dataclasses.dataclass(frozen=True)
class TrainClip:
  """A grain random map: record -> one augmented training clip.

  Returns {'video' [T, H, W, 3] uint8, 'label'}, or {'error', 'path'} for a
  video that cannot be read, so the main process can count it.
  """
  spec: ClipSpec
  flip_map: tuple[tuple[int, int], ...] = ()

  def __call__(self, item, rng: np.random.Generator) -> dict:
    _, (path, label) = item
    spec = self.spec
    # The sampler runs in the decode's thread, which a timeout abandons: it
    # gets a generator of its own, so a late call cannot disturb `rng`.
    sample_rng = np.random.default_rng(int(rng.integers(1 << 63)))
    try:
      clip = _read(spec, path, lambda n: _train_indices(spec, sample_rng, n),
                   spec.train_short_side, spec.train_crop)  # [T, h, w, 3]
    except decode.DecodeError as e:
      return {'error': e.reason, 'path': path}
    if spec.train_crop == 'random_resized':
      clip = transforms.random_resized_crop(clip, rng, (spec.height, spec.width),
                                            spec.crop_scale, spec.crop_ratio)
    elif spec.train_crop == 'center':
      clip = transforms.center_crop(_at_least(clip, spec.height, spec.width),
                                    (spec.height, spec.width))
    if spec.flip:
      clip, label = transforms.random_horizontal_flip(clip, label, rng,
                                                      label_map=dict(self.flip_map))
    if any(spec.color_jitter):
      brightness, contrast, saturation = spec.color_jitter
      clip = transforms.color_jitter(clip, rng, brightness=brightness, contrast=contrast,
                                     saturation=saturation)
    return {'video': np.ascontiguousarray(clip), 'label': np.int32(label)}


@dataclasses.dataclass(frozen=True)
class EvalViews:
  """A grain map: record -> its evaluation views, the same on every run.

  Returns {'video' [V, T, H, W, 3] uint8, 'label', 'index'} with V =
  clips x crops (clip-major: the 3 crops of clip 0, then of clip 1, ...), or
  {'error', 'path'}.
  """
  spec: ClipSpec

  def __call__(self, item) -> dict:
    index, (path, label) = item
    spec = self.spec
    try:
      clips = _read(spec, path, lambda n: _eval_indices(spec, spec.eval_num_clips, n),
                    spec.eval_short_side, spec.eval_crop)  # [K, T, h, w, 3]
    except decode.DecodeError as e:
      return {'error': e.reason, 'path': path}
    if spec.eval_crop == 'center':
      clips = np.stack([transforms.center_crop(_at_least(c, spec.height, spec.width),
                                               (spec.height, spec.width)) for c in clips])
    elif spec.eval_crop == 'three':
      clips = np.concatenate([transforms.spatial_crops(_at_least(c, spec.height, spec.width),
                                                       spec.height, 3) for c in clips])
    return {'video': np.ascontiguousarray(clips), 'label': np.int32(label),
            'index': np.int32(index)}


# ---------------------------------------------------------------- batches

@dataclasses.dataclass(frozen=True)
class MixBatch:
  """Mixup or cutmix of a batch, adding 'target'.

  Runs after batching in the main process; batch number `step` seeds it, and
  the iterator's state counts batches, so resuming replays the same mixes.
  Mixed videos are rounded back to uint8 (as timm's fast collate does).
  Targets are not smoothed: the train step smooths them like one-hot labels.
  """
  seed: int
  num_classes: int
  mixup_alpha: float
  cutmix_alpha: float
  cutmix_prob: float

  def __call__(self, step: int, batch: dict) -> dict:
    rng = np.random.default_rng([self.seed, _MIX_STREAM, step])
    targets = transforms.one_hot_smoothed(batch['label'], self.num_classes)  # [B, K]
    use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or
                                            rng.random() < self.cutmix_prob)
    if use_cutmix:
      video, targets = transforms.cutmix(batch['video'], targets, rng, self.cutmix_alpha)
    else:
      mixed, targets = transforms.mixup(batch['video'], targets, rng, self.mixup_alpha)
      video = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return {**batch, 'video': video, 'target': targets.astype(np.float32)}


class FailureCounter:
  """Counts videos that failed to decode; stops the run past a fraction.

  `epoch_size`, when set (train_dataset sets it), makes it log a summary
  every that many videos read: at the end of each epoch of a fresh run.
  """

  def __init__(self, split: str, max_fraction: float, min_seen: int = 20):
    self.split = split
    self.max_fraction = max_fraction
    self.min_seen = min_seen
    self.seen = 0
    self.epoch_size = 0
    self.failed: dict[str, str] = {}

  def keep(self, element: dict) -> bool:
    """A grain filter: False for a failed video, which is logged and counted."""
    self.seen += 1
    ok = 'error' not in element
    if not ok:
      if element['path'] not in self.failed:
        log.warning('skipping unreadable video %s: %s', element['path'], element['error'])
      self.failed[element['path']] = element['error']
    if self.seen >= self.min_seen:
      self.check()
    if self.epoch_size and self.seen % self.epoch_size == 0:
      log.info('%s (epoch %d)', self.summary(), self.seen // self.epoch_size)
    return ok

  def check(self) -> None:
    fraction = len(self.failed) / max(self.seen, 1)
    if fraction > self.max_fraction:
      worst = ', '.join(f'{p} ({r})' for p, r in list(self.failed.items())[:3])
      raise DataError(f'{len(self.failed)} of {self.seen} {self.split} videos failed to decode '
                      f'({fraction:.0%} > data.max_failed_fraction={self.max_fraction}); '
                      f'first: {worst}')

  def summary(self) -> str:
    return f'{self.split}: {len(self.failed)} unreadable video(s) skipped of {self.seen} read'


def _workers(num_workers: int) -> int:
  if num_workers >= 0:
    return num_workers
  cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
  return max(0, (cores or 1) - 1)


def _decoded(ds: grain.MapDataset, data) -> grain.IterDataset:
  """Reads `ds` with `data.read_threads` threads in each of the worker processes.

  A worker with one read thread reads in its own thread instead: a separate
  thread would only add a hand-off per clip (about 10% of a 112x112 clip's
  decode). With no workers, reading stays in a thread, off the training loop.
  """
  workers = _workers(data.num_workers)
  threads = 0 if workers and data.read_threads == 1 else data.read_threads
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=threads, prefetch_buffer_size=8))
  if workers:
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers,
                                                     per_worker_buffer_size=4))
  return it


def _stack(elements: Sequence[dict]) -> dict:
  return {k: np.stack([e[k] for e in elements]) for k in ('video', 'label')}


def _stream_seed(seed: int, attempt: int) -> int:
  """Seed of the clip stream `attempt` (0: the stream itself, 1...: replacements)."""
  if attempt == 0:
    return seed
  return int(np.random.SeedSequence([seed, _RETRY_STREAM, attempt]).generate_state(1)[0])


def global_row(start: int, local: int, batch_size: int, process_index: int,
               process_count: int) -> int:
  """Position in the global stream of this process's `local`-th row from `start`.

  Global batch b holds stream positions [start + b * B, start + (b + 1) * B);
  process p of P owns the rows [p * B / P, (p + 1) * B / P) of each.
  """
  rows = batch_size // process_count
  batch, row = divmod(local, rows)
  return start + batch * batch_size + process_index * rows + row


class _ProcessRows(grain.MapDataset):
  """This process's rows of an endless clip stream, from position `start`.

  Element j is `clips[global_row(start, j, ...)]`: the decoding workers
  read only this process's rows, and every clip's randomness stays keyed
  by its global position, so the rows are the ones one process would read.
  """

  def __init__(self, clips: grain.MapDataset, start: int, batch_size: int, process_index: int,
               process_count: int):
    super().__init__(clips)
    self._where = (start, batch_size, process_index, process_count)

  def __len__(self) -> int:
    return len(self._parent)

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    return self._parent[global_row(self._where[0], index, *self._where[1:])]

  def __str__(self) -> str:
    return f'_ProcessRows(start, batch, process, count={self._where})'


class TrainBatches(grain.IterDataset):
  """The training stream: decoded clips, failures replaced, batched, mixed.

  One global stream of clips, seeded, is cut into batches of `batch_size`;
  this process emits its `batch_size / process_count` rows of each. A clip
  that fails to decode is counted and replaced, in its row, by the clip at
  the same position of a replacement stream (another shuffle, its own
  seed): which clip fills a row depends on the row alone, never on what
  other processes read, so the global batches are the same on 1 process or
  on many.

  Its iterator's state, saved in checkpoints, is two numbers, the same in
  every process: the stream position where the next global batch starts,
  and how many batches were made. Restoring restarts the decoding from that
  position. The state of grain's own multiprocessing iterator would also
  hold one entry per worker, so a checkpoint could not be resumed with
  another worker count (another machine, with the default of cores - 1);
  this one can, and with another number of processes too.
  """

  def __init__(self, records: Sequence[tuple[str, int]], clip_fn: 'TrainClip', seed: int, data,
               batch_size: int, failures: FailureCounter, mix: MixBatch | None,
               process_index: int = 0, process_count: int = 1):
    super().__init__()
    if not 0 <= process_index < process_count:
      raise ValueError(f'process_index {process_index} is not in [0, {process_count})')
    if batch_size % process_count:
      raise UserError(f'batch size {batch_size} is not divisible by the {process_count} '
                      f'processes; use a multiple of {process_count}')
    self.records = list(enumerate(records))
    self.clip_fn = clip_fn
    self.seed = seed
    self.data = data
    self.batch_size = batch_size  # Global: rows of all processes together.
    self.rows = batch_size // process_count  # This process's.
    self.process_index = process_index
    self.process_count = process_count
    self.failures = failures
    self.mix = mix
    self._streams: dict[int, grain.MapDataset] = {}

  def clips(self, attempt: int = 0) -> grain.MapDataset:
    """The endless clip stream (attempt 0) or replacement stream `attempt`.

    Shuffled and repeated over the records, each epoch in a new order;
    position i's clip is decoded with randomness from (its seed, i).
    Returns {'video', 'label'} or {'error', 'path'}.
    """
    if attempt not in self._streams:
      seed = _stream_seed(self.seed, attempt)
      stream = grain.MapDataset.source(self.records).shuffle(seed=seed).repeat(None)
      self._streams[attempt] = stream.random_map(self.clip_fn, seed=seed)
    return self._streams[attempt]

  def process_rows(self, start: int) -> grain.MapDataset:
    """This process's rows of the clip stream, from stream position `start`."""
    return _ProcessRows(self.clips(), start, self.batch_size, self.process_index,
                        self.process_count)

  def replacement(self, position: int) -> dict:
    """A readable clip for the row at stream `position`, whose clip failed.

    Decoded here, in the main process: failures are rare (past
    data.max_failed_fraction the `FailureCounter` stops the run).
    """
    for attempt in range(1, _MAX_RETRIES + 1):
      element = self.clips(attempt)[position]
      if self.failures.keep(element):
        return element
    raise DataError(f'{_MAX_RETRIES} videos in a row failed to decode for one batch row; '
                    f'{self.failures.summary()}')

  def __iter__(self) -> 'TrainIterator':
    return TrainIterator(self)


class TrainIterator(grain.DatasetIterator):
  """Batches of a `TrainBatches`; see there for its state."""

  def __init__(self, stream: TrainBatches):
    super().__init__()
    self._stream = stream
    self._position = 0  # Stream position where the next global batch starts.
    self._batches = 0
    self._decoded = None  # The decoding iterator of this process's rows, from `_position` on.

  def _source(self):
    if self._decoded is None:
      self._decoded = iter(_decoded(self._stream.process_rows(self._position), self._stream.data))
    return self._decoded

  def __next__(self) -> dict:
    stream = self._stream
    first = self._position + stream.process_index * stream.rows
    rows = []
    for row in range(stream.rows):
      element = next(self._source())
      if not stream.failures.keep(element):
        element = stream.replacement(first + row)
      rows.append(element)
    batch = _stack(rows)  # 'video' [B / P, T, H, W, 3] uint8, 'label' [B / P] int32
    if stream.mix is not None:
      batch = stream.mix(self._batches, batch)
    self._position += stream.batch_size
    self._batches += 1
    return batch

  def get_state(self) -> dict:
    # 'clips_read': the name of the stream position since checkpoints first held it.
    return {'clips_read': self._position, 'batches': self._batches}

  def set_state(self, state) -> None:
    if isinstance(state, (bytes, str)):
      state = json.loads(state)
    if set(state) != {'clips_read', 'batches'}:
      raise ValueError(f'not a vidjax training stream position: {sorted(state)}')
    self._close_source()
    self._position, self._batches = int(state['clips_read']), int(state['batches'])

  def start_prefetch(self) -> None:
    self._source()

  def _close_source(self) -> None:
    if self._decoded is not None:
      close = getattr(self._decoded, 'close', None)
      if close is not None:
        close()
      self._decoded = None

  def close(self) -> None:
    self._close_source()
    super().close()


def train_dataset(records: Sequence[tuple[str, int]], data, *, batch_size: int,
                  seed: int, failures: FailureCounter,
                  class_names: Sequence[str] | None = None,
                  process_index: int = 0, process_count: int = 1) -> grain.IterDataset:
  """An endless, shuffled stream of this process's rows of the global batches.

  `records` are all the split's records and `batch_size` the global batch,
  the same in every process; process `process_index` of `process_count`
  gets rows [p * B / P, (p + 1) * B / P) of each global batch, so the
  global batches do not depend on the number of processes (with mixup or
  cutmix, a clip's partner is drawn from its own process's rows, as timm
  does under data parallelism).

  Batches: 'video' uint8 [B / P, T, H, W, 3], 'label' int32 [B / P], and
  with mixup or cutmix 'target' float32 [B / P, K]. `class_names` gives K
  and the flip label map; it is needed when either is in use. Its
  iterator's state goes into every checkpoint, so a resumed run reads
  exactly the batches the uninterrupted run would have read, whatever the
  number of workers or processes.
  """
  spec = ClipSpec.from_config(data)
  mixing = data.mixup_alpha > 0 or data.cutmix_alpha > 0
  if class_names is None and (mixing or (spec.flip and data.flip_label_map)):
    raise ValueError('train_dataset needs class_names for mixup, cutmix or the flip label map')
  flip_map = ()
  if spec.flip and data.flip_label_map:
    flip_map = tuple(sorted(datasets.flip_label_map(class_names).items()))
  # An epoch summary from process 0 (about its share of an epoch); the other
  # processes report failures only as they happen.
  failures.epoch_size = max(1, len(records) // process_count) if process_index == 0 else 0
  mix = None
  if mixing:
    mix = MixBatch(seed, len(class_names), data.mixup_alpha, data.cutmix_alpha, data.cutmix_prob)
  return TrainBatches(records, TrainClip(spec, flip_map), seed, data, batch_size, failures, mix,
                      process_index, process_count)


def eval_batches(records: Sequence[tuple[str, int]], data, *, batch_size: int,
                 num_batches: int, failures: FailureCounter) -> Iterator[dict]:
  """Every view of every record once, in fixed-size batches with a `mask`.

  Rows: 'video' uint8 [B, T, H, W, 3], 'label', 'index' (the record's
  position in `records`, shared by its `views_per_video` rows; -1 for
  padding) and 'mask'. Exactly `num_batches` batches come out (padding rows
  have mask 0), so all processes run the same number of steps and shapes
  never change; it must be at least ceil(len(records) * views / batch_size).
  """
  spec = ClipSpec.from_config(data)
  needed = -(-len(records) * spec.views // batch_size)
  if needed > num_batches:
    raise ValueError(f'{len(records)} videos x {spec.views} views need {needed} batches of '
                     f'{batch_size}, not {num_batches}; see pipeline.views_per_video')
  shape = (batch_size, spec.num_frames, spec.height, spec.width, 3)

  def new_batch() -> dict:
    return {'video': np.zeros(shape, np.uint8), 'label': np.zeros((batch_size,), np.int32),
            'index': np.full((batch_size,), -1, np.int32),
            'mask': np.zeros((batch_size,), np.bool_)}

  ds = grain.MapDataset.source(list(enumerate(records))).map(EvalViews(spec))
  it = iter(_decoded(ds, data).filter(failures.keep))
  produced, row, batch = 0, 0, new_batch()
  try:
    for element in it:
      for view in element['video']:  # [T, H, W, 3]
        batch['video'][row] = view
        batch['label'][row], batch['index'][row], batch['mask'][row] = (
            element['label'], element['index'], True)
        row += 1
        if row == batch_size:
          yield batch
          produced, row, batch = produced + 1, 0, new_batch()
  finally:
    close = getattr(it, 'close', None)
    if close is not None:
      close()
  if row:
    yield batch
    produced += 1
  empty = new_batch()
  for _ in range(num_batches - produced):
    yield empty


def shard_for_process(records: Sequence, process_index: int, process_count: int) -> list:
  """Evaluation's share of the records for this process: record i goes to process i mod P.

  Every record lands in exactly one process; its global index is
  process_index + process_count * (its index here).
  """
  return list(records[process_index::process_count])


def read_clip_for_prediction(path: str, data) -> np.ndarray:
  """The centre view of the eval protocol for one file, for `--mode predict`.

  Returns uint8 [T, H, W, 3]: the centred clip, centre crop.
  """
  spec = dataclasses.replace(ClipSpec.from_config(data), eval_num_clips=1)
  element = EvalViews(spec)((0, (path, 0)))
  if 'error' in element:
    raise decode.DecodeError(path, element['error'])
  return element['video'][len(element['video']) // 2]
