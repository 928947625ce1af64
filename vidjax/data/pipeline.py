"""The grain pipeline: records -> decoded, sampled, augmented clips -> batches.

Order of stages, and why:
- shuffle and repeat over the record list, seeded, so every epoch has a new
  order and the stream depends only on the seed;
- decode, sample and augment in worker processes (`mp_prefetch`; the maps
  are in clips.py). Each element's randomness derives from (seed, element
  index), never from which worker decoded it; the task's targets function
  turns the record's annotation into fixed-shape targets there too;
- replace failed videos (counted) and batch, then apply the task's batch
  function (mixup / cutmix), in the main process (`TrainIterator`).
  Batching after the multiprocessing stage makes the batches independent of
  the worker count; the batch function draws from (seed, batch number). The
  iterator's state is (stream position, batches made), so a resumed run's
  batches are the uninterrupted run's, byte for byte, even with another
  number of workers.
- with several processes, each reads only its rows of every global batch
  of that one stream (`_ProcessRows`), so 2 processes train on exactly the
  batches 1 process would (mixing aside: it pairs rows within a process).
Frames stay uint8 on the host; normalisation happens on device. The same
stream serves video files (`clips.TrainClip`) and array-backed splits such
as Moving MNIST (`clips.SourceClip`): only the clip function differs.

Evaluation emits one row per view (`views_per_video`: clips x crops), all
with the video's `index`, so the caller can average the softmax per video.
"""
from __future__ import annotations

import json
import os
from typing import Callable, Iterator, Sequence

import grain
import numpy as np

from vidjax.data.clip_spec import ClipSpec, views_per_video  # noqa: F401  (re-exported)
from vidjax.data.clips import EvalViews, TrainClip
from vidjax.data.failures import DataError, FailureCounter  # noqa: F401  (re-exported)
from vidjax.data.failures import as_worker_death
from vidjax.data.frame_cache import FrameCache
from vidjax.data.workers import init_decode_worker
from vidjax.data.records import Record, Targets
from vidjax.errors import UserError

_RETRY_STREAM = 0x726574  # Seeds the streams that replace videos failing to decode.
_MAX_RETRIES = 100  # Replacements tried for one row before giving up.


def _workers(num_workers: int) -> int:
  if num_workers >= 0:
    return num_workers
  cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
  return max(0, (cores or 1) - 1)


def _decoded(ds: grain.MapDataset, workers: int, read_threads: int) -> grain.IterDataset:
  """Reads `ds` with `read_threads` threads in each of `workers` processes.

  A worker with one read thread reads in its own thread instead: a separate
  thread would only add a hand-off per clip (about 10% of a 112x112 clip's
  decode). With no workers, reading stays in a thread, off the training loop.
  """
  workers = _workers(workers)
  threads = 0 if workers and read_threads == 1 else read_threads
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=threads, prefetch_buffer_size=8))
  if workers:
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers,
                                                     per_worker_buffer_size=4),
                        worker_init_fn=init_decode_worker)
  return it


def _next_decoded(iterator) -> dict:
  """The next decoded element; a dead decode worker is one line, never a long traceback."""
  try:
    return next(iterator)
  except RuntimeError as e:
    death = as_worker_death(e)
    if death is None:
      raise
    raise death from None


def _stack(elements: Sequence[dict]) -> dict:
  return {k: np.stack([e[k] for e in elements]) for k in elements[0]}


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

  def __init__(self, records: Sequence[Record], clip_fn: Callable, seed: int, *,
               batch_size: int, failures: FailureCounter,
               batch_fn: Callable[[int, dict], dict] | None = None,
               process_index: int = 0, process_count: int = 1, workers: int = 0,
               read_threads: int = 1):
    super().__init__()
    if not 0 <= process_index < process_count:
      raise ValueError(f'process_index {process_index} is not in [0, {process_count})')
    if batch_size % process_count:
      raise UserError(f'batch size {batch_size} is not divisible by the {process_count} '
                      f'processes; use a multiple of {process_count}')
    self.records = list(enumerate(records))
    self.clip_fn = clip_fn
    self.seed = seed
    self.workers, self.read_threads = workers, read_threads
    self.batch_size = batch_size  # Global: rows of all processes together.
    self.rows = batch_size // process_count  # This process's.
    self.process_index = process_index
    self.process_count = process_count
    self.failures = failures
    self.batch_fn = batch_fn
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
      stream = self._stream
      self._decoded = iter(_decoded(stream.process_rows(self._position), stream.workers,
                                    stream.read_threads))
    return self._decoded

  def __next__(self) -> dict:
    stream = self._stream
    first = self._position + stream.process_index * stream.rows
    rows = []
    for row in range(stream.rows):
      element = _next_decoded(self._source())
      if not stream.failures.keep(element):
        element = stream.replacement(first + row)
      rows.append(element)
    batch = _stack(rows)  # 'video' [B / P, T, H, W, 3] uint8, 'label' [B / P] int32
    if stream.batch_fn is not None:
      batch = stream.batch_fn(self._batches, batch)
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


def train_dataset(records: Sequence[Record], data, *, batch_size: int, seed: int,
                  failures: FailureCounter, targets: Targets,
                  batch_fn: Callable[[int, dict], dict] | None = None,
                  process_index: int = 0, process_count: int = 1) -> grain.IterDataset:
  """An endless, shuffled stream of this process's rows of the global batches of videos.

  `records` are all the split's records and `batch_size` the global batch,
  the same in every process; process `process_index` of `process_count`
  gets rows [p * B / P, (p + 1) * B / P) of each global batch, so the
  global batches do not depend on the number of processes.

  Batches: 'video' uint8 [B / P, T, H, W, 3] and the task's `targets` of
  each clip, stacked; then `batch_fn(batch_number, batch)` if given (mixup
  and cutmix pair a clip with one of its own process's rows, as timm does
  under data parallelism). Its iterator's state goes into every
  checkpoint, so a resumed run reads exactly the batches the uninterrupted
  run would have read, whatever the number of workers or processes.
  """
  spec = ClipSpec.from_config(data)
  # An epoch summary from process 0 (about its share of an epoch); the other
  # processes report failures only as they happen.
  failures.epoch_size = max(1, len(records) // process_count) if process_index == 0 else 0
  workers = _workers(data.num_workers)
  cache = (FrameCache(data.decoded_cache_mb * 2**20 // max(workers, 1))
           if data.decoded_cache_mb > 0 else None)  # The budget is shared by the workers.
  return TrainBatches(records, TrainClip(spec, targets, cache), seed, batch_size=batch_size,
                      failures=failures, batch_fn=batch_fn, process_index=process_index,
                      process_count=process_count, workers=data.num_workers,
                      read_threads=data.read_threads)


def eval_batches(records: Sequence[Record], data, *, batch_size: int, num_batches: int,
                 failures: FailureCounter, targets: Targets) -> Iterator[dict]:
  """Every view of every record once, in fixed-size batches with a `mask`.

  Rows: 'video' uint8 [B, T, H, W, 3], the task's targets of the view,
  'index' (the record's position in `records`, shared by its
  `views_per_video` rows; -1 for padding) and 'mask'. Exactly `num_batches`
  batches come out (padding rows have mask 0 and `targets.padding()`), so
  all processes run the same number of steps and shapes never change; it
  must be at least ceil(len(records) * views / batch_size).
  """
  spec = ClipSpec.from_config(data)
  needed = -(-len(records) * spec.views // batch_size)
  if needed > num_batches:
    raise ValueError(f'{len(records)} videos x {spec.views} views need {needed} batches of '
                     f'{batch_size}, not {num_batches}; see pipeline.views_per_video')
  shape = (batch_size, spec.num_frames, spec.height, spec.width, 3)
  padding = {k: np.asarray(v) for k, v in targets.padding().items()}

  def new_batch() -> dict:
    return {'video': np.zeros(shape, np.uint8),
            **{k: np.repeat(v[None], batch_size, axis=0) for k, v in padding.items()},
            'index': np.full((batch_size,), -1, np.int32),
            'mask': np.zeros((batch_size,), np.bool_)}

  ds = grain.MapDataset.source(list(enumerate(records))).map(EvalViews(spec, targets))
  it = iter(_decoded(ds, data.num_workers, data.read_threads).filter(failures.keep))
  produced, row, batch = 0, 0, new_batch()
  try:
    while True:
      try:
        element = _next_decoded(it)
      except StopIteration:
        break
      for v, view in enumerate(element['video']):  # [T, H, W, 3]
        batch['video'][row] = view
        for k in padding:
          batch[k][row] = element[k][v]
        batch['index'][row], batch['mask'][row] = element['index'], True
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
