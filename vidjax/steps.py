"""The train state, the optimizer and the one jitted update step of every task.

`make_update_step` is the only place where the update is jitted: the loop,
the benchmarks and the tests all call it, so what they measure and check is
the step that trains. The loss is the task's (`Task.loss_fn`); everything
else here is the same for every task.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vidjax import parallel
from vidjax.pretrained import fine_tune
from vidjax.errors import UserError


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: updates applied so far.
  params: Any
  opt_state: Any
  # The first step (numbered from 1, as in the logs) whose loss (code 1) or
  # gradients (code 2) were not finite; -1 while all were. Such steps are not
  # applied; `nonfinite_count` counts them.
  nonfinite_step: jax.Array
  nonfinite_what: jax.Array
  nonfinite_count: jax.Array


def make_schedule(optim: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
  warmup = min(optim.warmup_steps, max(num_steps - 1, 0))
  if optim.schedule == 'constant':
    return optax.join_schedules(
        [optax.linear_schedule(0.0, optim.learning_rate, warmup),
         optax.constant_schedule(optim.learning_rate)], [warmup])
  if optim.schedule == 'cosine':
    return optax.warmup_cosine_decay_schedule(0.0, optim.learning_rate, warmup, max(num_steps, warmup + 1))
  raise UserError(f"unknown optim.schedule '{optim.schedule}'; use cosine or constant")


def make_optimizer(optim: ml_collections.ConfigDict, num_steps: int, freeze: str = 'none'):
  """(optimizer, schedule); `freeze='backbone'` leaves the backbone frozen, and
  `optim.layer_decay` < 1 scales each layer's rate (pretrained/fine_tune.py)."""
  schedule = make_schedule(optim, num_steps)
  # Decay only matrices and kernels, not biases or norm scales.
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
  if optim.name == 'adamw':
    base = optax.adamw(schedule, weight_decay=optim.weight_decay, mask=decay_mask)
  elif optim.name == 'sgd':
    base = optax.chain(optax.add_decayed_weights(optim.weight_decay, decay_mask),
                       optax.sgd(schedule, momentum=optim.momentum, nesterov=True))
  elif optim.name == 'rmsprop':
    # eps outside the square root (as PyTorch and Keras): optax's default puts it inside,
    # where 1e-8 outweighs g^2 for most parameters of a per-pixel-mean loss (g ~ 1e-5) and
    # turns RMSProp into plain SGD for them.
    base = optax.chain(optax.add_decayed_weights(optim.weight_decay, decay_mask),
                       optax.rmsprop(schedule, decay=optim.momentum, eps_in_sqrt=False))
  else:
    raise UserError(f"unknown optim.name '{optim.name}'; use adamw, sgd or rmsprop")
  clip = optax.clip_by_global_norm(optim.grad_clip_norm) if optim.grad_clip_norm > 0 else optax.identity()
  tx = fine_tune.wrap(optax.chain(clip, base), freeze=freeze, layer_decay=optim.layer_decay)
  return tx, schedule


def update_step(state: TrainState, batch: dict, seed, *, loss_fn: Callable, tx, schedule,
                inject_nan_at_step: int = -1):
  """One update of any task. Pure: the dropout key derives from (seed, step).

  `seed` is an int32 array, not a constant, so every seed runs the same compiled step.

  `loss_fn(params, batch, dropout_key) -> (loss, metrics)` is the task's. A
  step whose loss or gradients are not finite changes nothing but the
  non-finite counters, so the parameters stay usable whatever the policy.
  """
  dropout_key = jax.random.fold_in(jax.random.key(seed), state.step)

  def loss_and_metrics(params):
    loss, metrics = loss_fn(params, batch, dropout_key)
    if inject_nan_at_step >= 0:  # The test-only fault hook; a no-op otherwise.
      loss = jnp.where(state.step + 1 == inject_nan_at_step, jnp.nan, loss)
    return loss, metrics

  (loss, task_metrics), grads = jax.value_and_grad(loss_and_metrics, has_aux=True)(state.params)
  updates, new_opt_state = tx.update(grads, state.opt_state, state.params)
  new_params = optax.apply_updates(state.params, updates)

  grad_norm = optax.tree.norm(grads)
  loss_ok, grads_ok = jnp.isfinite(loss), jnp.isfinite(grad_norm)
  ok = loss_ok & grads_ok
  keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)
  first_bad = (state.nonfinite_step < 0) & ~ok
  state = state.replace(
      step=state.step + 1,
      params=keep(new_params, state.params),
      opt_state=keep(new_opt_state, state.opt_state),
      nonfinite_step=jnp.where(first_bad, state.step + 1, state.nonfinite_step),
      nonfinite_what=jnp.where(first_bad, jnp.where(loss_ok, 2, 1), state.nonfinite_what),
      nonfinite_count=state.nonfinite_count + (~ok).astype(jnp.int32))
  metrics = {'loss': loss, **task_metrics, 'grad_norm': grad_norm,
             'learning_rate': schedule(state.step - 1)}
  return state, metrics


def abstract_state(config, model, tx, mesh, task=None):
  """(init function, the state's shapes with their shardings); allocates nothing.

  The task says what one example looks like (`input_shape`, `apply_kwargs`).
  Checkpoints restore straight into the abstract state's layout.
  """
  if task is None:
    from vidjax import tasks
    task = tasks.get(config)
  example = jnp.zeros((1, *task.input_shape), jnp.float32)

  def init(key):
    params = model.init(key, example, **task.apply_kwargs)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      nonfinite_step=jnp.full((), -1, jnp.int32),
                      nonfinite_what=jnp.zeros((), jnp.int32),
                      nonfinite_count=jnp.zeros((), jnp.int32))

  shapes = jax.eval_shape(init, jax.random.key(0))
  shardings = parallel.state_shardings(shapes, mesh, config.mesh.param_sharding)
  return init, jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                            shapes, shardings)


def create_state(config, model, tx, mesh, task=None) -> tuple[TrainState, Any]:
  """The initial state, created directly in its sharded layout, and its abstract form."""
  init, abstract = abstract_state(config, model, tx, mesh, task)
  key = jax.random.fold_in(jax.random.key(config.seed), 1)  # Stream 1: init. (Data uses seed.)
  state = jax.jit(init, out_shardings=jax.tree.map(lambda s: s.sharding, abstract))(key)
  return state, abstract


def make_update_step(config, loss_fn: Callable, tx, schedule, abstract: TrainState, mesh, *,
                     donate: bool = True):
  """The update, jitted with explicit shardings; the state's buffers are donated.

  `loss_fn` is the task's (`task.loss_fn(model)`), `abstract` the state's
  sharded shapes (`abstract_state`) or a tree of its shardings. The batch is
  split over the mesh's `data` axis, the metrics come back replicated.
  """
  state_sharding = jax.tree.map(lambda s: getattr(s, 'sharding', s), abstract)
  jitted = jax.jit(
      functools.partial(update_step, loss_fn=loss_fn, tx=tx, schedule=schedule,
                        inject_nan_at_step=config.train.inject_nan_at_step),
      in_shardings=(state_sharding, parallel.batch_sharding(mesh), parallel.replicated(mesh)),
      out_shardings=(state_sharding, parallel.replicated(mesh)),
      donate_argnums=(0,) if donate else ())
  if not -2**31 <= config.seed < 2**31:
    raise UserError(f'config.seed={config.seed} does not fit in int32; use a smaller seed')
  seed = jax.device_put(np.int32(config.seed), parallel.replicated(mesh))
  return UpdateStep(jitted, seed)


@dataclasses.dataclass(frozen=True)
class UpdateStep:
  """`step(state, batch) -> (state, metrics)`: the jitted update with its seed as an argument.

  A seed baked in as a constant would make each seed a new program, compiled anew
  (and missed by the persistent compilation cache); as data, one program serves all.
  """
  jitted: Any
  seed: jax.Array  # int32 [], replicated.

  def __call__(self, state: TrainState, batch: dict):
    return self.jitted(state, batch, self.seed)

  def lower(self, state, batch) -> '_WithSeed':
    """Lowered (and, after `.compile()`, compiled) forms that take (state, batch) too."""
    return _WithSeed(self.jitted.lower(state, batch, self.seed), self.seed)

  def _cache_size(self) -> int:
    return self.jitted._cache_size()


@dataclasses.dataclass(frozen=True)
class _WithSeed:
  """A jax Lowered or Compiled stage of `UpdateStep`, called as (state, batch)."""
  stage: Any
  seed: jax.Array

  def compile(self, *args, **kwargs) -> '_WithSeed':
    return _WithSeed(self.stage.compile(*args, **kwargs), self.seed)

  def __call__(self, state: TrainState, batch: dict):
    return self.stage(state, batch, self.seed)

  def __getattr__(self, name: str):  # as_text, cost_analysis, memory_analysis, ...
    return getattr(self.stage, name)
