"""Training and evaluation, for every task: one loop.

The loop reads top to bottom in the order things happen: mesh, input, model,
shardings, steps, checkpoint, writer, loop, final evaluation. What differs
between tasks -- the data, the model, the loss, the evaluation, what is
predicted and the final report -- comes from the task (`vidjax/tasks/`,
picked by `config.task`); the state, the optimizer and the jitted update are
in `steps.py`; everything else is here, once.
Initialisation order: resume from the workdir's newest good checkpoint if
there is one, else start from `config.init.checkpoint` if set (pretrained
weights, vidjax/pretrained/), else from scratch with parameters created
directly in their sharded layout.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import time
from typing import Any, Callable

import jax
import ml_collections
import numpy as np

from vidjax import checkpoint as checkpoint_lib
from vidjax import early_stopping, parallel, preemption, report, steps, tasks
from vidjax.data.failures import DecodeWorkerDied
from vidjax.errors import UserError
from vidjax.loop_clock import LoopClock
from vidjax.models import cost

log = logging.getLogger(__name__)


class NonFiniteError(UserError):
  """The loss or the gradients became NaN or infinite; one line."""


def checkpoint_meta(config: ml_collections.ConfigDict, task_meta: dict) -> dict:
  """What a training checkpoint records: the task's meta and the optimizer it was trained with.

  The optimizer settings shape the saved optimizer state, so resuming under
  other ones is refused by name (evaluate and predict read parameters only).
  """
  return {**task_meta, 'optim': json.loads(config.optim.to_json())}


@dataclasses.dataclass
class _Run:
  """What the loop and the final report share; set up by `train_and_evaluate`."""
  config: ml_collections.ConfigDict
  workdir: pathlib.Path
  task: tasks.Task
  mesh: Any
  train_iter: Any
  meta: dict
  state: steps.TrainState
  step_fn: Callable
  evaluate: Callable
  ckpt: checkpoint_lib.Checkpointer
  stopper: early_stopping.EarlyStopping | None
  writer: report.Writer
  main: bool
  t_start: float
  num_params: int
  gflops: float
  guard: preemption.PreemptionGuard
  clock: LoopClock  # Where the wall time goes (loop_clock.py).

  def next_batch(self):
    """The next global batch; a stop signal while waiting for it interrupts the wait."""
    with self.guard.interruptible(), self.clock.part('waiting for input'):
      return parallel.global_batch(next(self.train_iter), self.mesh)

  def run_eval(self, split: str, params, step: int) -> dict:
    with self.clock.part('evaluation'):
      result = self.evaluate(params, split)
    self.writer.scalars(step, self.task.eval_scalars(split, result))
    if self.main:
      log.info('step %d %s: %s', step, split, self.task.describe_eval(result))
    return result

  def eval_due(self, step: int) -> bool:
    """Every eval_every steps; with early stopping also after the last step (a candidate)."""
    num_steps = self.config.train.num_steps
    if step % self.config.train.eval_every == 0 and step != num_steps:
      return True
    return self.stopper is not None and step == num_steps

  def evaluate_for_stopping(self, step: int) -> bool:
    """The periodic evaluation; True when early stopping says stop."""
    result = self.run_eval(self.task.periodic_split, self.state.params, step)
    return self.stopper is not None and self.stopper.update(
        step, self.state.params, self.task.selection_metric(result))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains, evaluates and returns the final summaries (also written to workdir).

  From here on SIGTERM / SIGINT stop the run cleanly (vidjax/preemption.py):
  during set-up (dataset generation, loading, the state) at once, with
  nothing to save; in the loop after the step, with a checkpoint.
  """
  guard = preemption.PreemptionGuard()
  try:
    with guard.interruptible():
      run = _set_up(config, pathlib.Path(workdir).resolve(), guard)
  except preemption.StopRequested:
    guard.close()
    raise preemption.NothingToSave(0, str(workdir), 'while starting up') from None
  try:
    step, stopped_early = _loop(run)
    if step < config.train.num_steps and not stopped_early:  # stop_after_steps: the same command goes on.
      log.info('stopped at step %d of %d; run the same command to continue', step,
               config.train.num_steps)
      return {'state': run.state, 'stopped_at': step, 'step_fn': run.step_fn}
    final = _finish(run, step, stopped_early)
  finally:
    guard.close()
  final['step_fn'] = run.step_fn
  return final


def _set_up(config: ml_collections.ConfigDict, workdir: pathlib.Path,
            guard: preemption.PreemptionGuard) -> _Run:
  """Sections 1 to 6: everything the loop needs, the state resumed if the workdir has one."""
  workdir.mkdir(parents=True, exist_ok=True)
  main = parallel.is_main_process()
  t_start, clock = time.time(), LoopClock(time.perf_counter())
  task = tasks.get(config)

  # 1. Mesh.
  mesh = parallel.make_mesh(config.mesh.data, config.mesh.model)
  parallel.per_process_batch_size(config.train.batch_size, mesh)  # Checks divisibility.

  # 2. Input: the task's stream of this process's rows of each global batch.
  train_iter = task.train_iterator(config.train.batch_size)

  # 3. Model and optimizer.
  meta = task.meta()
  model = task.build_model(meta)
  tx, schedule = steps.make_optimizer(config.optim, config.train.num_steps, config.init.freeze)

  # 4. State, created in its sharded layout; then resume if the workdir has a checkpoint.
  state, abstract = steps.create_state(config, model, tx, mesh, task)
  ckpt = checkpoint_lib.Checkpointer(workdir, max_to_keep=config.train.max_checkpoints)
  restored = ckpt.restore_latest(abstract, train_iter, meta=checkpoint_meta(config, meta))
  if restored is not None:
    state, resumed_step = restored
    log.info('resumed from %s at step %d', ckpt.directory, resumed_step)
  elif config.init.checkpoint:
    state = _start_from(config, state, abstract, workdir, main)
  if main:
    task.on_start(workdir)
  stopper = None
  if config.train.early_stopping_patience > 0:
    stopper = early_stopping.EarlyStopping(
        workdir, patience=config.train.early_stopping_patience,
        eval_every=config.train.eval_every, abstract_params=abstract.params, meta=meta,
        mesh=mesh)

  # 5. Steps: the one jitted update (explicit shardings, donated state) and the evaluator.
  step_fn = steps.make_update_step(config, task.loss_fn(model), tx, schedule, abstract, mesh)
  evaluate = task.evaluator(model, mesh, jax.tree.map(lambda s: s.sharding, abstract.params))

  # 6. Writer and the numbers shown once.
  writer = report.Writer(workdir, enabled=main)
  num_params = cost.count_params(state.params)
  gflops = cost.forward_flops_per_clip(model, state.params, task.input_shape,
                                       **task.apply_kwargs) / 1e9
  if main:
    log.info('model %s: %s parameters, %.3f GFLOPs per clip (forward)', config.model.name,
             f'{num_params:,}', gflops)
  # 7. The loop (`_loop`), then 8. the final evaluation and report (`_finish`).
  return _Run(config, workdir, task, mesh, train_iter, meta, state, step_fn, evaluate, ckpt,
              stopper, writer, main, t_start, num_params, gflops, guard, clock)


def _start_from(config, state: steps.TrainState, abstract: steps.TrainState,
                workdir: pathlib.Path, main: bool) -> steps.TrainState:
  """The fresh state with `init.checkpoint`'s parameters; what came from where goes to
  workdir/init.txt (the optimizer's moments start at zero either way)."""
  from vidjax.pretrained import init_from, mapping
  params, entries, origin = init_from.load_into(config, state.params, abstract.params)
  if main:
    (workdir / 'init.txt').write_text(f'{origin}\n{mapping.format_table(entries)}\n')
    log.info('initialised from %s: %s (workdir/init.txt lists each parameter)', origin,
             ', '.join(f'{n} {a}' for a, n in mapping.counts(entries).items() if n))
  return state.replace(params=params)


def _advance(bar, step: int) -> None:
  """Moves the progress bar to `step` finished steps (never back)."""
  if bar is not None and step > bar.n:
    bar.update(step - bar.n)


def _loop(run: _Run) -> tuple[int, bool]:
  """Trains from the state's step to the end (or a stop); returns (step, stopped_early).

  No host sync inside it except every log_every steps. Whatever ends it (the
  last step, a stop, a preemption, an error), pending checkpoint writes
  finish; the writer closes unless the final report still needs it. Within
  a step: log, evaluate, checkpoint, so a checkpoint's step has been
  evaluated -- except after a preemption, whose evaluation a resume with
  early stopping runs first (repeating one that did happen changes nothing).
  """
  config, task, stopper = run.config, run.task, run.stopper
  num_steps = config.train.num_steps
  ckpt_meta = checkpoint_meta(config, run.meta)
  step = int(run.state.step)
  stop_at = num_steps
  if config.train.stop_after_steps > 0:
    stop_at = min(num_steps, step + config.train.stop_after_steps)
  stopped_early = False
  guard = run.guard
  if stopper is not None and step > 0:
    try:
      with guard.interruptible():
        stopped_early = (run.evaluate_for_stopping(step) if run.eval_due(step)
                         else stopper.should_stop(step))
    except preemption.StopRequested:
      raise preemption.NothingToSave(step, str(run.workdir), 'while re-evaluating') from None
    if stopped_early:
      log.info('stopped early before (%d evaluations without improvement since the best, '
               'at step %d): nothing to train', stopper.evaluations_since_best(step),
               stopper.best_step)
      stop_at = step
  pending: list[dict] = []
  bar, clock, first_step = None, run.clock, step
  clock.mark('setup')
  if run.main and config.train.progress_bar and step < stop_at:
    from tqdm import tqdm
    bar = tqdm(total=num_steps, initial=step, desc='train', unit='step', dynamic_ncols=True)
  t_log, clips_since, in_flight = time.time(), 0, None
  try:
    try:
      next_batch = run.next_batch() if step < stop_at else None
    except preemption.StopRequested:
      raise preemption.NothingToSave(step, str(run.workdir)) from None
    while step < stop_at:
      with clock.part('compiling the step' if step == first_step else 'dispatching steps'):
        run.state, step_metrics = run.step_fn(run.state, next_batch)
      step += 1
      pending.append(step_metrics)
      clips_since += config.train.batch_size
      position = checkpoint_lib.DataPosition(run.train_iter)  # Before the prefetch below.
      preempted = guard.should_stop(step)
      data_error = None
      if step < stop_at and not preempted:  # Decode and place the next batch while this step runs.
        try:
          next_batch = run.next_batch()
        except preemption.StopRequested:
          preempted = True
        except DecodeWorkerDied as e:  # Save this step, then stop with one line.
          data_error = e
      if bar is not None:  # Counts finished steps: dispatch runs ahead of the device.
        if in_flight is not None:
          with clock.part('waiting on the steps'):
            jax.block_until_ready(in_flight)  # The previous step; this one stays queued.
          _advance(bar, step - 1)
        in_flight = step_metrics
      if step % config.train.log_every == 0 or step == stop_at:
        with clock.part('waiting on the steps'):
          summary = _fetch(pending)
        pending = []
        _advance(bar, step)
        _check_finite(run.state, config.train.on_nonfinite)
        summary['clips_per_second'] = clips_since / max(time.time() - t_log, 1e-9)
        t_log, clips_since = time.time(), 0
        run.writer.scalars(step, {f'train/{k}': v for k, v in summary.items()})
        if bar is not None:
          bar.set_postfix(loss=f"{summary['loss']:.3f}", clips_s=f"{summary['clips_per_second']:.0f}")
        elif run.main:
          log.info('step %d/%d: %s, %.0f clips/s', step, num_steps, task.describe_train(summary),
                   summary['clips_per_second'])
      if run.eval_due(step) and not preempted and data_error is None:
        try:
          with guard.interruptible():
            stopped_early = run.evaluate_for_stopping(step)
        except preemption.StopRequested:
          preempted = True
        if stopped_early:
          log.info('early stopping at step %d: %d evaluations without improvement since '
                   'the best, at step %d', step, stopper.evaluations_since_best(step),
                   stopper.best_step)
      if (step % config.train.checkpoint_every == 0 or step == stop_at or preempted
          or stopped_early or data_error is not None):
        _check_finite(run.state, config.train.on_nonfinite)  # Never save past a NaN under 'stop'.
        with clock.part('checkpoints'):
          run.ckpt.save(step, run.state, ckpt_meta, position, force=True)
      if data_error is not None:
        raise preemption.Preempted(step, str(run.workdir), str(data_error))
      if preempted:
        raise preemption.Preempted(step, str(run.workdir))
      if stopped_early:
        break
  finally:
    if bar is not None:
      bar.close()
    run.ckpt.wait()
    if step < num_steps and not stopped_early:
      run.ckpt.close()
      run.writer.close()
      if stopper is not None:
        stopper.close()
  return step, stopped_early


def _finish(run: _Run, step: int, stopped_early: bool) -> dict:
  """The final evaluation (with the best parameters under early stopping), the task's
  pictures and numbers, results.json and the console summary."""
  config, task, stopper, main = run.config, run.task, run.stopper, run.main
  params, best_step = run.state.params, None
  if stopper is not None:
    if stopper.best_step is not None:
      params, best_step = stopper.best_params(), stopper.best_step
      log.info('final evaluation with the parameters of step %d (best %s %.6g)', best_step,
               task.periodic_split, stopper.best_metric)
    stopper.close()
  # Logged at the step whose parameters they measure (the best, under early stopping).
  try:
    with run.guard.interruptible():
      final = {split: run.run_eval(split, params, best_step or step)
               for split in task.final_splits}
  except preemption.StopRequested:
    run.ckpt.close()
    run.writer.close()
    raise preemption.Preempted(step, str(run.workdir),
                               'preempted during the final evaluation') from None
  run.writer.flush()
  run.ckpt.close()
  if main:
    task_results, task_rows, files = task.report(run.workdir, final, evaluate=run.evaluate,
                                                 params=params,
                                                 history_path=run.writer.history_path)
    extra_rows = []
    if stopper is not None:
      stopping = (f'stopped at step {step}' if stopped_early else f'ran all {step} steps')
      extra_rows.append(('early stopping', f'{stopping}; parameters of step {best_step} '
                                           f'(best {task.periodic_split})'))
    results = {
        'task': task.name, 'model': config.model.name, 'num_params': run.num_params,
        'gflops_per_clip': run.gflops, 'step': step, 'devices': jax.device_count(),
        'processes': jax.process_count(),
        **({'best_step': best_step, 'stopped_early': stopped_early} if stopper else {}),
        **task_results,
        'wall_seconds': time.time() - run.t_start, 'time_seconds': run.clock.totals(),
    }
    (run.workdir / 'results.json').write_text(json.dumps(results, indent=2))
    files['results'] = run.workdir / 'results.json'
    print(report.summary([
        ('model', f'{config.model.name} ({run.num_params:,} parameters, '
                  f'{run.gflops:.3f} GFLOPs/clip)'),
        ('devices', f'{jax.device_count()} x {jax.devices()[0].platform} in '
                    f'{jax.process_count()} process(es), mesh {dict(run.mesh.shape)}'),
        ('steps', f'{step} at batch {config.train.batch_size}'),
        *extra_rows,
        *task_rows,
        ('wall time', f'{time.time() - run.t_start:.0f} s'),
        ('where it went', run.clock.line()),
        ('workdir', str(run.workdir)),
        ('files', ', '.join(p.name for p in files.values()) + ', tensorboard/, checkpoints/'),
    ]), flush=True)
  run.writer.close()
  final['state'] = run.state
  if stopper is not None:
    final['best_step'] = best_step
    final['stopped_early'] = stopped_early
  return final


def _fetch(metric_list: list[dict]) -> dict:
  stacked = jax.device_get(metric_list)
  return {k: float(np.mean([m[k] for m in stacked])) for k in stacked[0]}


def _check_finite(state: steps.TrainState, policy: str) -> None:
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
