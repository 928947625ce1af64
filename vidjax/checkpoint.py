"""Checkpoints: model and optimizer state, the data iterator, and what the run was.

One orbax step directory holds three items:
- `state`: the train state (step, params, optimizer), restored directly into
  its sharded layout;
- `data`: the grain iterator's position, so a resumed run reads exactly the
  batches it would have read;
- `meta`: the model config and class names, so a workdir holding another
  model's checkpoint is refused with a message naming the difference.

orbax never falls back from a broken newest step by itself; `restore_latest`
walks back to the newest step that restores, naming each one it skips.
"""
from __future__ import annotations

import logging
import pathlib
from typing import Any

import grain
import orbax.checkpoint as ocp

from vidjax.errors import UserError

log = logging.getLogger(__name__)


class CheckpointError(UserError):
  """A checkpoint problem the user must act on; the message is one line."""


def _one_line(error: Exception) -> str:
  text = str(error).strip().splitlines()
  return f'{type(error).__name__}: {text[0][:160]}' if text else type(error).__name__


class Checkpointer:
  """An orbax CheckpointManager for `workdir/checkpoints`."""

  def __init__(self, workdir: str | pathlib.Path, *, max_to_keep: int = 3):
    self.directory = pathlib.Path(workdir).resolve() / 'checkpoints'
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             cleanup_tmp_directories=True),
        item_names=('state', 'data', 'meta'))

  def steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def save(self, step: int, state: Any, meta: dict, data_iterator=None, *, force: bool = False) -> None:
    items = {'state': ocp.args.StandardSave(state), 'meta': ocp.args.JsonSave(meta)}
    if data_iterator is not None:
      items['data'] = grain.checkpoint.CheckpointSave(data_iterator)
    self.manager.save(step, args=ocp.args.Composite(**items), force=force)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def read_meta(self, step: int) -> dict:
    return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']

  def restore_latest(self, abstract_state: Any, data_iterator=None) -> tuple[Any, int] | None:
    """The newest step that restores, as (state, step); None if there are none.

    `abstract_state` is a tree of jax.ShapeDtypeStruct with shardings: the
    arrays come back already placed. The data iterator, when given, is
    moved to the saved position.
    """
    steps = self.steps()
    for step in reversed(steps):
      items = {'state': ocp.args.StandardRestore(abstract_state)}
      if data_iterator is not None:
        items['data'] = grain.checkpoint.CheckpointRestore(data_iterator)
      try:
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
      except Exception as e:  # A truncated or partly deleted step: try an older one.
        log.warning('checkpoint %s/%d cannot be restored (%s); trying an older step',
                    self.directory, step, _one_line(e))
        continue
      return restored['state'], step
    if steps:
      raise CheckpointError(f'none of the checkpoints {steps} in {self.directory} could be '
                            'restored; move the directory away to start from scratch')
    return None

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def check_compatible(saved: dict, current: dict, directory: pathlib.Path) -> None:
  """Refuses to resume another model's checkpoint, naming what differs."""
  for key in sorted(set(saved) | set(current)):
    if saved.get(key) != current.get(key):
      raise CheckpointError(
          f'{directory} holds a checkpoint with {key}={saved.get(key)!r}, but this config has '
          f'{key}={current.get(key)!r}; use a new --workdir or the same config')
