"""Training and evaluation, for every task: state, pure steps and one loop.

The loop reads top to bottom in the order things happen: mesh, input, model,
shardings, steps, checkpoint, writer, loop, final evaluation. What differs
between tasks (classification, frame prediction) -- the data, the model,
the loss, the evaluation and the final report -- comes from the task
(`vidjax/tasks/`, picked by `config.task`); everything else is here, once.
Initialisation order: resume from the workdir's newest good checkpoint if
there is one, else start from scratch with parameters created directly in
their sharded layout.
"""
from __future__ import annotations

import functools
import json
import logging
import pathlib
import time
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vidjax import checkpoint as checkpoint_lib
from vidjax import early_stopping, parallel, preemption, report, tasks
from vidjax.errors import UserError
from vidjax.models import cost
from vidjax.tasks import classification

log = logging.getLogger(__name__)


class NonFiniteError(UserError):
  """The loss or the gradients became NaN or infinite; one line."""


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


# ----------------------------------------------------------------------------
# Pure pieces: the optimizer and the update step (the loss is the task's).
# ----------------------------------------------------------------------------

def make_schedule(optim: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
  warmup = min(optim.warmup_steps, max(num_steps - 1, 0))
  if optim.schedule == 'constant':
    return optax.join_schedules(
        [optax.linear_schedule(0.0, optim.learning_rate, warmup),
         optax.constant_schedule(optim.learning_rate)], [warmup])
  if optim.schedule == 'cosine':
    return optax.warmup_cosine_decay_schedule(0.0, optim.learning_rate, warmup, max(num_steps, warmup + 1))
  raise UserError(f"unknown optim.schedule '{optim.schedule}'; use cosine or constant")


def make_optimizer(optim: ml_collections.ConfigDict, num_steps: int):
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
  return optax.chain(clip, base), schedule


def update_step(state: TrainState, batch: dict, *, loss_fn: Callable, tx, schedule, seed: int,
                inject_nan_at_step: int = -1):
  """One update of any task. Pure: the dropout key derives from (seed, step).

  `loss_fn(params, batch, dropout_key) -> (loss, metrics)` is the task's
  (e.g. `tasks.classification.loss`, bound with functools.partial). A step
  whose loss or gradients are not finite changes nothing but the non-finite
  counters, so the parameters stay usable whatever the policy.
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


def train_step(state: TrainState, batch: dict, *, model, tx, schedule, num_classes: int,
               label_smoothing: float, mean, std, seed: int, inject_nan_at_step: int = -1):
  """The classification update, bound as the loop binds it (benchmarks and tests use it)."""
  loss_fn = functools.partial(classification.loss, model=model, num_classes=num_classes,
                              label_smoothing=label_smoothing, mean=mean, std=std)
  return update_step(state, batch, loss_fn=loss_fn, tx=tx, schedule=schedule, seed=seed,
                     inject_nan_at_step=inject_nan_at_step)


# ----------------------------------------------------------------------------
# Helpers the loop uses.
# ----------------------------------------------------------------------------

def abstract_state(config, model, tx, mesh):
  """(init function, the state's shapes with their shardings); allocates nothing.

  The task says what one example looks like (`input_shape`, `apply_kwargs`).
  Checkpoints restore straight into the abstract state's layout.
  """
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


def create_state(config, model, tx, mesh) -> tuple[TrainState, Any]:
  """The initial state, created directly in its sharded layout, and its abstract form."""
  init, abstract = abstract_state(config, model, tx, mesh)
  key = jax.random.fold_in(jax.random.key(config.seed), 1)  # Stream 1: init. (Data uses seed.)
  state = jax.jit(init, out_shardings=jax.tree.map(lambda s: s.sharding, abstract))(key)
  return state, abstract


def _fetch(metric_list: list[dict]) -> dict:
  stacked = jax.device_get(metric_list)
  return {k: float(np.mean([m[k] for m in stacked])) for k in stacked[0]}


# ----------------------------------------------------------------------------
# The loop.
# ----------------------------------------------------------------------------

def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains, evaluates and returns the final summaries (also written to workdir)."""
  workdir = pathlib.Path(workdir).resolve()
  workdir.mkdir(parents=True, exist_ok=True)
  main = parallel.is_main_process()
  t_start = time.time()
  task = tasks.get(config)

  # 1. Mesh.
  mesh = parallel.make_mesh(config.mesh.data, config.mesh.model)
  parallel.per_process_batch_size(config.train.batch_size, mesh)  # Checks divisibility.

  # 2. Input: the task's stream of this process's rows of each global batch.
  train_iter = task.train_iterator(config.train.batch_size)

  # 3. Model and optimizer.
  meta = task.meta()
  model = task.build_model(meta)
  tx, schedule = make_optimizer(config.optim, config.train.num_steps)

  # 4. State, created in its sharded layout; then resume if the workdir has a checkpoint.
  state, abstract_state = create_state(config, model, tx, mesh)
  ckpt = checkpoint_lib.Checkpointer(workdir, max_to_keep=config.train.max_checkpoints)
  restored = ckpt.restore_latest(abstract_state, train_iter, meta=meta)
  if restored is not None:
    state, resumed_step = restored
    log.info('resumed from %s at step %d', ckpt.directory, resumed_step)
  if main:
    task.on_start(workdir)
  stopper = None
  if config.train.early_stopping_patience > 0:
    stopper = early_stopping.EarlyStopping(
        workdir, patience=config.train.early_stopping_patience,
        eval_every=config.train.eval_every, abstract_params=abstract_state.params, meta=meta,
        mesh=mesh)

  # 5. Steps: jitted with explicit shardings; the state's buffers are donated.
  state_sharding = jax.tree.map(lambda s: s.sharding, abstract_state)
  batch_sharding = parallel.batch_sharding(mesh)
  step_fn = jax.jit(
      functools.partial(update_step, loss_fn=task.loss_fn(model), tx=tx, schedule=schedule,
                        seed=config.seed, inject_nan_at_step=config.train.inject_nan_at_step),
      in_shardings=(state_sharding, batch_sharding),
      out_shardings=(state_sharding, parallel.replicated(mesh)),
      donate_argnums=(0,))
  evaluate = task.evaluator(model, mesh, state_sharding.params)

  # 6. Writer and the numbers shown once.
  writer = report.Writer(workdir, enabled=main)
  num_params = cost.count_params(state.params)
  gflops = cost.forward_flops_per_clip(model, state.params, task.input_shape,
                                       **task.apply_kwargs) / 1e9
  if main:
    log.info('model %s: %s parameters, %.3f GFLOPs per clip (forward)', config.model.name,
             f'{num_params:,}', gflops)

  def run_eval(split, params, step):
    result = evaluate(params, split)
    writer.scalars(step, task.eval_scalars(split, result))
    if main:
      log.info('step %d %s: %s', step, split, task.describe_eval(result))
    return result

  num_steps = config.train.num_steps

  def eval_due(step: int) -> bool:
    """Every eval_every steps; with early stopping also after the last step (a candidate)."""
    if step % config.train.eval_every == 0 and step != num_steps:
      return True
    return stopper is not None and step == num_steps

  def evaluate_for_stopping(step: int) -> bool:
    """The periodic evaluation; True when early stopping says stop."""
    result = run_eval(task.periodic_split, state.params, step)
    return stopper is not None and stopper.update(step, state.params,
                                                  task.selection_metric(result))

  # 7. The loop. No host sync inside it except every log_every steps. Whatever
  #    ends it (the last step, a stop, a preemption, an error), pending
  #    checkpoint writes finish and the writer closes. Within a step: log,
  #    evaluate, checkpoint, so a checkpoint's step has been evaluated --
  #    except after a preemption, whose evaluation a resume with early
  #    stopping runs first (repeating one that did happen changes nothing).
  step = int(state.step)
  stop_at = num_steps
  if config.train.stop_after_steps > 0:
    stop_at = min(num_steps, step + config.train.stop_after_steps)
  stopped_early = False
  if stopper is not None and step > 0:
    stopped_early = evaluate_for_stopping(step) if eval_due(step) else stopper.should_stop(step)
    if stopped_early:
      log.info('stopped early before (%d evaluations without improvement since the best, '
               'at step %d): nothing to train', stopper.evaluations_since_best(step),
               stopper.best_step)
      stop_at = step
  pending: list[dict] = []
  bar = None
  if main and config.train.progress_bar and step < stop_at:
    from tqdm import tqdm
    bar = tqdm(total=num_steps, initial=step, desc='train', unit='step', dynamic_ncols=True)
  t_log, clips_since = time.time(), 0
  guard = preemption.PreemptionGuard()
  try:
    next_batch = parallel.global_batch(next(train_iter), mesh) if step < stop_at else None
    while step < stop_at:
      state, step_metrics = step_fn(state, next_batch)
      step += 1
      pending.append(step_metrics)
      clips_since += config.train.batch_size
      position = checkpoint_lib.DataPosition(train_iter)  # Before the prefetch below.
      preempted = guard.should_stop(step)
      if step < stop_at and not preempted:  # Decode and place the next batch while this step runs.
        next_batch = parallel.global_batch(next(train_iter), mesh)
      if bar is not None:
        bar.update(1)
      if step % config.train.log_every == 0 or step == stop_at:
        summary = _fetch(pending)
        pending = []
        _check_finite(state, config.train.on_nonfinite)
        summary['clips_per_second'] = clips_since / max(time.time() - t_log, 1e-9)
        t_log, clips_since = time.time(), 0
        writer.scalars(step, {f'train/{k}': v for k, v in summary.items()})
        if bar is not None:
          bar.set_postfix(loss=f"{summary['loss']:.3f}", clips_s=f"{summary['clips_per_second']:.0f}")
        elif main:
          log.info('step %d/%d: %s, %.0f clips/s', step, num_steps, task.describe_train(summary),
                   summary['clips_per_second'])
      if eval_due(step) and not preempted:
        stopped_early = evaluate_for_stopping(step)
        if stopped_early:
          log.info('early stopping at step %d: %d evaluations without improvement since '
                   'the best, at step %d', step, stopper.evaluations_since_best(step),
                   stopper.best_step)
      if (step % config.train.checkpoint_every == 0 or step == stop_at or preempted
          or stopped_early):
        _check_finite(state, config.train.on_nonfinite)  # Never save past a NaN under 'stop'.
        ckpt.save(step, state, meta, position, force=True)
      if preempted:
        raise preemption.Preempted(step, str(workdir))
      if stopped_early:
        break
  finally:
    guard.close()
    if bar is not None:
      bar.close()
    ckpt.wait()
    if step < num_steps and not stopped_early:
      ckpt.close()
      writer.close()
      if stopper is not None:
        stopper.close()
  if step < num_steps and not stopped_early:  # stop_after_steps: the same command goes on.
    log.info('stopped at step %d of %d; run the same command to continue', step, num_steps)
    return {'state': state, 'stopped_at': step}

  # 8. Final evaluation, with the best parameters under early stopping, then
  #    the task's pictures and numbers and the summary.
  params, best_step = state.params, None
  if stopper is not None:
    if stopper.best_step is not None:
      params, best_step = stopper.best_params(), stopper.best_step
      log.info('final evaluation with the parameters of step %d (best %s %.6g)', best_step,
               task.periodic_split, stopper.best_metric)
    stopper.close()
  # Logged at the step whose parameters they measure (the best, under early stopping).
  final = {split: run_eval(split, params, best_step or step) for split in task.final_splits}
  writer.flush()
  ckpt.close()
  files = {}
  if main:
    task_results, task_rows, files = task.report(workdir, final, evaluate=evaluate, params=params,
                                                 history_path=writer.history_path)
    extra_rows = []
    if stopper is not None:
      stopping = (f'stopped at step {step}' if stopped_early else f'ran all {step} steps')
      extra_rows.append(('early stopping', f'{stopping}; parameters of step {best_step} '
                                           f'(best {task.periodic_split})'))
    results = {
        'model': config.model.name, 'num_params': num_params, 'gflops_per_clip': gflops,
        'step': step, 'devices': jax.device_count(), 'processes': jax.process_count(),
        **({'best_step': best_step, 'stopped_early': stopped_early} if stopper else {}),
        **task_results,
        'wall_seconds': time.time() - t_start,
    }
    (workdir / 'results.json').write_text(json.dumps(results, indent=2))
    files['results'] = workdir / 'results.json'
    print(report.summary([
        ('model', f'{config.model.name} ({num_params:,} parameters, {gflops:.3f} GFLOPs/clip)'),
        ('devices', f'{jax.device_count()} x {jax.devices()[0].platform} in {jax.process_count()} process(es), '
                    f'mesh {dict(mesh.shape)}'),
        ('steps', f'{step} at batch {config.train.batch_size}'),
        *extra_rows,
        *task_rows,
        ('wall time', f'{time.time() - t_start:.0f} s'),
        ('workdir', str(workdir)),
        ('files', ', '.join(p.name for p in files.values()) + ', tensorboard/, checkpoints/'),
    ]), flush=True)
  writer.close()
  final['state'] = state
  if stopper is not None:
    final['best_step'] = best_step
    final['stopped_early'] = stopped_early
  return final


def _check_finite(state: TrainState, policy: str) -> None:
  """Acts on non-finite steps: 'stop' raises, 'skip' logs how many were skipped."""
  bad_step = int(state.nonfinite_step)
  if bad_step < 0:
    return
  what = 'loss' if int(state.nonfinite_what) == 1 else 'gradients'
  if policy == 'skip':
    log.warning('%d update(s) skipped for non-finite loss or gradients, the first at step %d (%s)',
                int(state.nonfinite_count), bad_step, what)
    return
  if policy != 'stop':
    raise UserError(f"train.on_nonfinite must be 'stop' or 'skip', got '{policy}'")
  raise NonFiniteError(f'non-finite {what} at step {bad_step}; that update was not applied and the '
                       'last checkpoint is intact; lower optim.learning_rate or check the data')
