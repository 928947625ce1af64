"""Checkpoints: model and optimizer state, the data iterator, and what the run was.

One orbax step directory holds three items:
- `state`: the train state (step, params, optimizer), restored directly into
  its sharded layout;
- `data`: the grain iterator's position, so a resumed run reads exactly the
  batches it would have read; written by every process (as grain does) and
  read back by any number of processes (`DataPositionHandler`);
- `meta`: the model config and class names (and, from the training loop,
  the `optim` settings), so a workdir holding another model's checkpoint is
  refused with a message naming the difference.

orbax never falls back from a broken newest step by itself; `restore_latest`
walks back to the newest step that restores, naming each one it skips and
moving it to `workdir/checkpoints_broken/` (kept for inspection, and out of
the way of the step that will be saved again under its number).

A step that cannot be read is broken; a step that reads but holds another
tree than this config builds (another optimizer, another model) is the
user's mismatch: a one-line `CheckpointError`, and nothing is moved. The two
are told apart before restoring, by comparing the saved tree's metadata with
the abstract state. `restore_params` reads only `state.params`, so evaluate
and predict work whatever the optimizer settings.
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

from vidjax.checkpoint_meta import CheckpointError, check_compatible, log_optim_changes

log = logging.getLogger(__name__)



def _one_line(error: Exception) -> str:
  text = str(error).strip().splitlines()
  return f'{type(error).__name__}: {text[0][:160]}' if text else type(error).__name__



def _leaf_shapes(tree: Any) -> dict[str, tuple | None]:
  """{'opt_state.1.0.mu.params.conv.kernel': shape} for a state or its saved metadata.

  Both a TrainState of ShapeDtypeStructs and orbax's saved metadata (nested
  dicts and lists) flatten to the same dotted paths; empty nodes have no leaves.
  """
  name = lambda k: str(getattr(k, 'key', getattr(k, 'name', getattr(k, 'idx', k))))
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {'.'.join(map(name, path)): getattr(leaf, 'shape', None) for path, leaf in leaves}


def _first_difference(saved: dict, current: dict) -> tuple[str, str] | None:
  """(path, how it differs) for the first leaf of this config's tree that the checkpoint lacks
  or holds at another shape, else the first leaf only the checkpoint has; None if they agree."""
  extra = [path for path in saved if path not in current]
  for path, shape in current.items():
    if path not in saved:
      instead = f' but has {_short(extra[0])}' if extra else ''
      return path, f'the checkpoint has no {_short(path)}{instead}'
    if saved[path] is not None and shape is not None and tuple(saved[path]) != tuple(shape):
      return path, (f'{path} has shape {tuple(saved[path])} in the checkpoint but '
                    f'{tuple(shape)} in this config')
  if extra:
    return extra[0], f'the checkpoint has {_short(extra[0])}, which this config does not build'
  return None


def _short(path: str) -> str:
  # An optimizer state's path up to the parameters it mirrors: opt_state.1.0.mu
  return path.split('.params.')[0] if path.startswith('opt_state.') else path


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
    # The manager clears stale tmp directories in a background thread that only a save
    # waits for: a run that stops before its first save (a mismatched checkpoint's one-line
    # error) would exit under it and print the thread's traceback. Wait for it here.
    getattr(self.manager, '_maybe_await_cleanup_tmp_directory', lambda: None)()
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

  def read_state_shapes(self, step: int) -> dict[str, tuple | None]:
    """The saved state's leaf paths and shapes, from its metadata; reads no arrays."""
    handler = ocp.StandardCheckpointHandler()
    try:
      tree = handler.metadata(self.directory / str(step) / 'state').tree
    finally:
      handler.close()
    shapes = _leaf_shapes(tree)
    if not shapes:
      raise ValueError(f'no arrays in the state metadata of step {step}')
    return shapes

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
    or config is a `CheckpointError`, never mistaken for a broken step; so
    is a saved tree that differs from `abstract_state` (another optimizer in
    a checkpoint whose meta predates `optim`).
    """
    current = _leaf_shapes(abstract_state)
    steps = self.steps()
    for step in reversed(steps):
      saved_meta = self._readable_compatible_meta(step, meta)
      if saved_meta is None:
        continue
      try:
        saved = self.read_state_shapes(step)
      except Exception as e:  # Unreadable metadata: the step is broken.
        self._skip_broken(step, e)
        continue
      self._check_same_tree(step, saved, current)
      items = {'state': ocp.args.StandardRestore(abstract_state)}
      if data_iterator is not None:
        items['data'] = DataRestore(data_iterator)
      try:
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
      except Exception as e:  # A truncated or partly deleted step: try an older one.
        self._skip_broken(step, e)
        continue
      if meta is not None:
        log_optim_changes(saved_meta, meta)
      return restored['state'], step
    return self._none_restored(steps)

  def restore_params(self, abstract_params: Any, meta: dict | None = None) -> tuple[Any, int]:
    """(params, step): only `state.params` of the newest step that restores.

    For evaluate and predict, which need no optimizer state: the saved one
    is never read, so the run's `optim` settings need not match (the `optim`
    key of `meta` is ignored). Broken steps are skipped as in `restore_latest`.
    """
    without_optim = lambda m: {k: v for k, v in m.items() if k != 'optim'}
    meta = None if meta is None else without_optim(meta)
    current = _leaf_shapes({'params': abstract_params})
    target = {'params': abstract_params}
    steps = self.steps()
    for step in reversed(steps):
      if self._readable_compatible_meta(step, meta, without_optim) is None:
        continue
      try:
        saved = self.read_state_shapes(step)
      except Exception as e:
        self._skip_broken(step, e)
        continue
      self._check_same_tree(step, {p: s for p, s in saved.items() if p.startswith('params.')},
                            current)
      # A reader of its own: the manager binds `state` to the handler that wrote it, and a
      # partial restore through it would fail as if the step were broken.
      restore = ocp.args.PyTreeRestore(
          item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
          partial_restore=True)
      reader = ocp.PyTreeCheckpointer()
      try:
        restored = reader.restore(self.directory / str(step) / 'state', args=restore)
      except Exception as e:
        self._skip_broken(step, e)
        continue
      finally:
        reader.close()
      return restored['params'], step
    if not steps:
      raise CheckpointError(f'no checkpoint in {self.directory}; train first with the same '
                            '--config and --workdir')
    return self._none_restored(steps)

  def _readable_compatible_meta(self, step: int, meta: dict | None,
                                view=lambda m: m) -> dict | None:
    """The step's saved meta, checked against `meta`; None (set aside) if unreadable."""
    try:
      saved_meta = self.read_meta(step)
    except Exception as e:  # Missing or unreadable: the step is broken.
      self._skip_broken(step, e)
      return None
    if meta is not None:
      check_compatible(view(saved_meta), meta, self.directory)
    return saved_meta

  def _check_same_tree(self, step: int, saved: dict, current: dict) -> None:
    """A readable step holding another tree is the user's mismatch, not a broken step."""
    difference = _first_difference(saved, current)
    if difference is None:
      return
    path, how = difference
    if path.startswith('opt_state.'):
      raise CheckpointError(
          f'{self.directory} step {step} was written with other optim.* settings (such as '
          f'optim.name): {how}; rerun with the optim settings the run was trained with, or use '
          'a new --workdir')
    raise CheckpointError(f'{self.directory} step {step} holds another state than this config '
                          f'builds: {how}; use the config the run was trained with, or a new '
                          '--workdir')

  def _none_restored(self, steps: list[int]) -> None:
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
