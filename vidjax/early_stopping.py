"""Early stopping on the periodic evaluation, resumable like the rest of the run.

Why it needs care: the run can be preempted or killed at any step and must
then continue exactly as if it had not been. So the early-stopping state is
kept to two numbers, saved with the best parameters in their own orbax
checkpoint (`workdir/early_stopping/checkpoints`, one step, the best):

- the best step and the best metric (lower is better), and from them
- the evaluations without improvement since: step // eval_every -
  best_step // eval_every, since evaluations happen at multiples of
  eval_every. Stop when that reaches `patience`.

An evaluation is a pure function of the parameters, so one that is repeated
after a resume (the loop re-runs an evaluation a preemption may have cut
off) finds the same metric, which is no improvement: repeating is harmless.
"""
from __future__ import annotations

import logging
import pathlib
from typing import Any

import jax
import jax.numpy as jnp

from vidjax import checkpoint as checkpoint_lib
from vidjax import parallel

log = logging.getLogger(__name__)

DIRECTORY = 'early_stopping'


class EarlyStopping:
  """Tracks the best evaluation, keeps its parameters, says when to stop."""

  def __init__(self, workdir: pathlib.Path, *, patience: int, eval_every: int,
               abstract_params: Any, meta: dict, mesh):
    self.patience = patience
    self.eval_every = eval_every
    self.meta = meta
    self._abstract = {'params': abstract_params,
                      'metric': jax.ShapeDtypeStruct((), jnp.float32,
                                                     sharding=parallel.replicated(mesh))}
    self._mesh = mesh
    self._ckpt = checkpoint_lib.Checkpointer(pathlib.Path(workdir) / DIRECTORY, max_to_keep=1)
    self.best_step: int | None = None
    self.best_metric = float('inf')
    saved = self._ckpt.steps()
    if saved:
      # The parameters are read again when they are wanted (`best_params`).
      restored, self.best_step = self._ckpt.restore_latest(self._abstract, meta=meta)
      self.best_metric = float(restored['metric'])

  def evaluations_since_best(self, step: int) -> int:
    if self.best_step is None:
      return step // self.eval_every
    return step // self.eval_every - self.best_step // self.eval_every

  def should_stop(self, step: int) -> bool:
    return self.evaluations_since_best(step) >= self.patience

  def update(self, step: int, params: Any, metric: float) -> bool:
    """Records the evaluation at `step`; True when training should stop."""
    if metric < self.best_metric:
      self.best_metric, self.best_step = metric, step
      value = jax.device_put(jnp.float32(metric), parallel.replicated(self._mesh))
      self._ckpt.save(step, {'params': params, 'metric': value}, self.meta, force=True)
      self._ckpt.wait()  # Written before the run's checkpoint of this step.
      log.info('step %d: best evaluation so far (%.6g), parameters kept', step, metric)
    return self.should_stop(step)

  def best_params(self) -> Any | None:
    """The best parameters, in their sharded layout; None before any evaluation."""
    if self.best_step is None:
      return None
    restored, _ = self._ckpt.restore_latest(self._abstract, meta=self.meta)
    return restored['params']

  def close(self) -> None:
    self._ckpt.close()


def restore_best_params(workdir: pathlib.Path, abstract_params: Any, meta: dict, mesh):
  """(params, step) of a workdir's early-stopping checkpoint, or None if it has none."""
  if not (pathlib.Path(workdir) / DIRECTORY / 'checkpoints').is_dir():
    return None
  stopper = EarlyStopping(workdir, patience=1, eval_every=1, abstract_params=abstract_params,
                          meta=meta, mesh=mesh)
  try:
    params = stopper.best_params()
    return None if params is None else (params, stopper.best_step)
  finally:
    stopper.close()
