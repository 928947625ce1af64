"""Checkpoints: model and optimizer state, the data iterator, and what the run was.

One orbax step directory holds three items:
- `state`: the train state (step, params, optimizer), restored directly into
  its sharded layout;
- `data`: the grain iterator's position, so a resumed run reads exactly the
  batches it would have read; written by every process (as grain does) and
  read back by any number of processes (`DataPositionHandler`);
- `meta`: the model config and class names, so a workdir holding another
  model's checkpoint is refused with a message naming the difference.

orbax never falls back from a broken newest step by itself; `restore_latest`
walks back to the newest step that restores, naming each one it skips and
moving it to `workdir/checkpoints_broken/` (kept for inspection, and out of
the way of the step that will be saved again under its number).
"""
from __future__ import annotations

import dataclasses
import errno
import json
import logging
import pathlib
import shutil
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from vidjax.errors import UserError

log = logging.getLogger(__name__)


class CheckpointError(UserError):
  """A checkpoint problem the user must act on; the message is one line."""


def _one_line(error: Exception) -> str:
  text = str(error).strip().splitlines()
  return f'{type(error).__name__}: {text[0][:160]}' if text else type(error).__name__


def _is_disk_full(error: Exception) -> bool:
  # tensorstore reports ENOSPC inside a ValueError's text, Python as an OSError.
  text = str(error)
  return ((isinstance(error, OSError) and error.errno == errno.ENOSPC)
          or 'No space left on device' in text or "os_error_code='28'" in text)


class DataPosition:
  """A data iterator's state taken at one moment, savable by grain's handler.

  The loop prefetches the next batch while a step runs, so at save time the
  live iterator is one batch ahead of the state; saving this snapshot,
  taken right after the step, keeps resume exact.
  """

  def __init__(self, iterator):
    self.state = iterator.get_state()

  def get_state(self) -> bytes:  # grain's handler wants bytes from non-grain iterators.
    return json.dumps(self.state, indent=1).encode()


class DataPositionHandler(grain.checkpoint.CheckpointHandler):
  """grain's iterator handler, also restoring into another number of processes.

  Each process writes `process_<i>-of-<n>.json`, as grain's handler does.
  The training stream's position is global, the same in every process
  (`pipeline.TrainBatches`), so where this process's own file is missing,
  because another number of processes wrote the checkpoint (a TPU slice of
  another size, another node count), process 0's file is read instead.
  """

  def restore(self, directory, item=None, args=None):
    item = item or args.item
    own = directory / f'process_{jax.process_index()}-of-{jax.process_count()}.json'
    if own.exists():
      return super().restore(directory, item=item, args=args)
    saved = sorted(directory.glob('process_0-of-*.json'))
    if not saved:
      raise ValueError(f'no data iterator position in {directory}')
    item.set_state(json.loads(saved[0].read_text()))
    item.start_prefetch()
    return item


@ocp.args.register_with_handler(DataPositionHandler, for_save=True)
@dataclasses.dataclass
class DataSave(ocp.args.CheckpointArgs):
  item: Any


@ocp.args.register_with_handler(DataPositionHandler, for_restore=True)
@dataclasses.dataclass
class DataRestore(ocp.args.CheckpointArgs):
  item: Any


class Checkpointer:
  """An orbax CheckpointManager for `workdir/checkpoints`."""

  def __init__(self, workdir: str | pathlib.Path, *, max_to_keep: int = 3):
    self.directory = pathlib.Path(workdir).resolve() / 'checkpoints'
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             cleanup_tmp_directories=True),
        item_names=('state', 'data', 'meta'))
    self._disk_full = False

  def steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def save(self, step: int, state: Any, meta: dict, data_position: DataPosition | None = None,
           *, force: bool = False) -> None:
    items = {'state': ocp.args.StandardSave(state), 'meta': ocp.args.JsonSave(meta)}
    if data_position is not None:
      items['data'] = DataSave(data_position)
    self._writing(lambda: self.manager.save(step, args=ocp.args.Composite(**items), force=force))

  def wait(self) -> None:
    if self.manager is not None and not self._disk_full:
      self._writing(self.manager.wait_until_finished)

  def _writing(self, write) -> None:
    """Runs a (possibly asynchronous) write; a full disk becomes one line.

    The partial step is deleted to give the space back; every complete step
    is left as it was, so the run resumes once space is freed.
    """
    try:
      write()
    except Exception as e:
      if not _is_disk_full(e):
        raise
      self._disk_full = True
      for partial in self.directory.glob('*.orbax-checkpoint-tmp*'):
        shutil.rmtree(partial, ignore_errors=True)
      good = [p.name for p in self.directory.iterdir() if p.name.isdigit()]
      newest = max(map(int, good)) if good else None
      raise CheckpointError(f'disk full while writing a checkpoint to {self.directory}; '
                            f'the newest complete checkpoint (step {newest}) is intact: free space '
                            'and run the same command again') from None

  def read_meta(self, step: int) -> dict:
    return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']

  def newest_meta(self) -> dict | None:
    """The metadata of the newest step that has readable metadata."""
    for step in reversed(self.steps()):
      try:
        return self.read_meta(step)
      except Exception:  # A broken step; restore_latest will name it.
        continue
    return None

  def restore_latest(self, abstract_state: Any, data_iterator=None,
                     meta: dict | None = None) -> tuple[Any, int] | None:
    """The newest step that restores, as (state, step); None if there are none.

    `abstract_state` is a tree of jax.ShapeDtypeStruct with shardings: the
    arrays come back already placed. The data iterator, when given, is
    moved to the saved position. With `meta`, a step saved by another model
    or config is a `CheckpointError`, never mistaken for a broken step.
    """
    steps = self.steps()
    for step in reversed(steps):
      items = {'state': ocp.args.StandardRestore(abstract_state)}
      if data_iterator is not None:
        items['data'] = DataRestore(data_iterator)
      try:
        saved_meta = self.read_meta(step)
      except Exception as e:  # Missing or unreadable: the step is broken.
        self._skip_broken(step, e)
        continue
      if meta is not None:
        check_compatible(saved_meta, meta, self.directory)
      try:
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
      except Exception as e:  # A truncated or partly deleted step: try an older one.
        self._skip_broken(step, e)
        continue
      return restored['state'], step
    if steps:
      raise CheckpointError(f'none of the checkpoints {steps} in {self.directory} could be '
                            'restored; move the directory away to start from scratch')
    return None

  def _skip_broken(self, step: int, error: Exception) -> None:
    log.warning('checkpoint %s/%d cannot be restored (%s); moved to %s, trying an older step',
                self.directory, step, _one_line(error), self._broken_directory)
    self._set_aside(step)

  @property
  def _broken_directory(self) -> pathlib.Path:
    return self.directory.parent / 'checkpoints_broken'

  def _set_aside(self, step: int) -> None:
    if jax.process_index() == 0:
      self._broken_directory.mkdir(exist_ok=True)
      source = self.directory / str(step)
      target = self._broken_directory / str(step)
      suffix = 1
      while target.exists():
        target = self._broken_directory / f'{step}.{suffix}'
        suffix += 1
      source.rename(target)
    multihost_utils.sync_global_devices(f'vidjax_set_aside_{step}')
    self.manager.reload()

  def close(self) -> None:
    """Waits for pending writes; safe to call more than once."""
    if self.manager is None:
      return
    try:
      self.wait()
    finally:
      manager, self.manager = self.manager, None
      if not self._disk_full:
        manager.close()


def check_compatible(saved: dict, current: dict, directory: pathlib.Path) -> None:
  """Refuses to resume another model's checkpoint, naming what differs."""
  for key in sorted(set(saved) | set(current)):
    if saved.get(key) != current.get(key):
      raise CheckpointError(
          f'{directory} holds a checkpoint with {key}={saved.get(key)!r}, but this config has '
          f'{key}={current.get(key)!r}; use a new --workdir or the same config')
