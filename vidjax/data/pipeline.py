"""The grain pipeline: records -> decoded clips -> batches, for train and eval.

Order of stages, and why:
- shuffle and repeat over the record list, seeded, so every epoch has a new
  order and the stream depends only on the seed;
- decode in worker processes (`mp_prefetch`). Each element's randomness
  derives from (seed, element index), never from which worker decoded it;
- drop and count failed videos, then batch, in the main process. Batching
  after the multiprocessing stage makes the batches independent of the
  worker count, and the iterator state (saved in checkpoints) exact.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Iterator, Sequence

import grain
import numpy as np

from vidjax.data import decode, sampling
from vidjax.errors import UserError

log = logging.getLogger(__name__)


class DataError(UserError):
  """Too much of a dataset failed to decode; the message is one line."""


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """What the model sees of a video: T frames at a stride, resized."""
  num_frames: int
  frame_stride: int
  height: int
  width: int
  decode_threads: int = 1


@dataclasses.dataclass(frozen=True)
class ReadClip:
  """Decodes one clip of a record; a random start in training, centred in eval.

  Returns {'video' [T, H, W, 3] uint8, 'label', 'index'} or, when the video
  cannot be read, {'error', 'path'} so the main process can count it.
  """
  spec: ClipSpec

  def __call__(self, item, rng: np.random.Generator | None = None) -> dict:
    index, (path, label) = item
    try:
      indices = sampling.dense_indices(decode.read_frame_count(path), self.spec.num_frames,
                                       self.spec.frame_stride, rng=rng)
      frames = decode.read_frames(path, indices,
                                  height=self.spec.height, width=self.spec.width,
                                  num_threads=self.spec.decode_threads)
    except decode.DecodeError as e:
      return {'error': e.reason, 'path': path}
    return {'video': frames, 'label': np.int32(label), 'index': np.int32(index)}


class FailureCounter:
  """Counts videos that failed to decode; stops the run past a fraction."""

  def __init__(self, split: str, max_fraction: float, min_seen: int = 20):
    self.split = split
    self.max_fraction = max_fraction
    self.min_seen = min_seen
    self.seen = 0
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
  return max(0, (os.cpu_count() or 1) - 1) if num_workers < 0 else num_workers


def _decoded(ds: grain.MapDataset, num_workers: int) -> grain.IterDataset:
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=8))
  workers = _workers(num_workers)
  if workers:
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers,
                                                     per_worker_buffer_size=4))
  return it


def _stack(elements: Sequence[dict]) -> dict:
  return {k: np.stack([e[k] for e in elements]) for k in ('video', 'label', 'index')}


def train_dataset(records: Sequence[tuple[str, int]], spec: ClipSpec, *, batch_size: int,
                  seed: int, num_workers: int, failures: FailureCounter) -> grain.IterDataset:
  """An endless, shuffled stream of batches of this process's records.

  Its iterator's state goes into every checkpoint, so a resumed run reads
  exactly the batches the uninterrupted run would have read.
  """
  ds = grain.MapDataset.source(list(enumerate(records))).shuffle(seed=seed).repeat(None)
  ds = ds.random_map(ReadClip(spec), seed=seed)
  it = _decoded(ds, num_workers).filter(failures.keep)
  return it.batch(batch_size, drop_remainder=True, batch_fn=_stack)


def eval_batches(records: Sequence[tuple[str, int]], spec: ClipSpec, *, batch_size: int,
                 num_batches: int, num_workers: int,
                 failures: FailureCounter) -> Iterator[dict]:
  """Every record once, centred clip, in fixed-size batches with a `mask`.

  Exactly `num_batches` batches come out (padding rows have mask 0), so all
  processes run the same number of steps and shapes never change.
  """
  ds = grain.MapDataset.source(list(enumerate(records))).map(ReadClip(spec))
  it = _decoded(ds, num_workers).filter(failures.keep).batch(
      batch_size, drop_remainder=False, batch_fn=_stack)
  empty = {'video': np.zeros((batch_size, spec.num_frames, spec.height, spec.width, 3), np.uint8),
           'label': np.zeros((batch_size,), np.int32), 'index': np.full((batch_size,), -1, np.int32),
           'mask': np.zeros((batch_size,), np.bool_)}
  produced = 0
  for batch in it:
    n = len(batch['label'])
    padded = {k: v.copy() for k, v in empty.items()}
    for k in ('video', 'label', 'index'):
      padded[k][:n] = batch[k]
    padded['mask'][:n] = True
    produced += 1
    yield padded
  for _ in range(num_batches - produced):
    yield empty


def shard_for_process(records: Sequence, process_index: int, process_count: int) -> list:
  """A disjoint, interleaved slice of the records for this process."""
  return list(records[process_index::process_count])


def read_clip_for_prediction(path: str, spec: ClipSpec) -> np.ndarray:
  """The centred eval clip of one file, for `--mode predict`."""
  element = ReadClip(spec)((0, (path, 0)))
  if 'error' in element:
    raise decode.DecodeError(path, element['error'])
  return element['video']


