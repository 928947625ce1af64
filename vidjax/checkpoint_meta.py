"""What a checkpoint must match before it is restored, and how a mismatch is told.

A checkpoint records the task's meta (the model config, the class names) and
the optimizer settings. Resuming another model's or optimizer's checkpoint is
refused with one line naming the first key that differs.
"""
from __future__ import annotations

import logging

from vidjax.errors import UserError

log = logging.getLogger('vidjax.checkpoint')

# The `optim` settings that decide the optimizer state's tree; a change of any
# other (learning rate, schedule, decay) is allowed on resume, as when
# fine-tuning, and logged. A tree change they miss is caught by the state's own check.
OPTIM_STATE_KEYS = ('name',)


class CheckpointError(UserError):
  """A checkpoint problem the user must act on; the message is one line."""


def check_compatible(saved: dict, current: dict, directory) -> None:
  """Refuses to resume another model's or optimizer's checkpoint, naming what differs.

  `optim` is compared only where both have it (older checkpoints lack it;
  evaluate and predict leave it out), and only in `OPTIM_STATE_KEYS`.
  """
  for key in sorted((set(saved) | set(current)) - {'optim'}):
    was, now = saved.get(key), current.get(key)
    if key == 'model':  # Only the chosen family's block: adding a family breaks no checkpoint.
      was, now = model_identity(was), model_identity(now)
    if was != now:
      where, was, now = _first_change(key, was, now)
      raise CheckpointError(
          f'{directory} holds a checkpoint with {where}={was!r}, but this config has '
          f'{where}={now!r}; use a new --workdir or the same config')
  if 'optim' not in saved or 'optim' not in current:
    return
  for key in OPTIM_STATE_KEYS:
    was, now = saved['optim'].get(key), current['optim'].get(key)
    if was != now:
      raise CheckpointError(
          f'{directory} was trained with optim.{key}={was!r}, but this config has '
          f'optim.{key}={now!r}; rerun with --config.optim.{key}={was}, or use a new --workdir')


def model_identity(model):
  """A saved `config.model` without the blocks of the families it does not use."""
  if not isinstance(model, dict) or 'name' not in model:
    return model
  return {k: v for k, v in model.items() if not isinstance(v, dict) or k == model['name']}


def _first_change(where: str, was, now) -> tuple[str, object, object]:
  """The dotted key of the first difference between two JSON values, and both values there."""
  if isinstance(was, dict) and isinstance(now, dict):
    for key in sorted(set(was) | set(now), key=lambda k: (k != 'name', k)):  # The name first.
      if was.get(key) != now.get(key):
        return _first_change(f'{where}.{key}', was.get(key), now.get(key))
  return where, was, now


def log_optim_changes(saved: dict, current: dict) -> None:
  """Names the optimizer settings a resume changes (allowed: they keep the state's tree)."""
  if 'optim' not in saved or 'optim' not in current:
    return
  was, now = saved['optim'], current['optim']
  changed = [f'optim.{k} {was.get(k)!r} -> {now.get(k)!r}' for k in sorted(set(was) | set(now))
             if was.get(k) != now.get(k)]
  if changed:
    log.info('resuming with changed optimizer settings: %s', ', '.join(changed))
