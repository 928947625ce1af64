"""Training and evaluation of video classifiers: pure steps and one loop.

The loop reads top to bottom in the order things happen: mesh, input, model,
shardings, steps, checkpoint, writer, loop, final evaluation. Initialisation
order: resume from the workdir's newest good checkpoint if there is one,
else start from scratch with parameters created directly in their sharded
layout.
"""
from __future__ import annotations

import functools
import json
import logging
import pathlib
import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.experimental import multihost_utils

from vidjax import checkpoint as checkpoint_lib
from vidjax import metrics as metrics_lib
from vidjax import parallel, preemption, report
from vidjax.data import pipeline, sources
from vidjax.errors import UserError
from vidjax.models import build_model, cost

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
# Pure pieces: optimizer, input normalisation, loss, steps.
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
    base = optax.chain(optax.add_decayed_weights(optim.weight_decay, decay_mask),
                       optax.rmsprop(schedule, decay=optim.momentum))
  else:
    raise UserError(f"unknown optim.name '{optim.name}'; use adamw, sgd or rmsprop")
  clip = optax.clip_by_global_norm(optim.grad_clip_norm) if optim.grad_clip_norm > 0 else optax.identity()
  return optax.chain(clip, base), schedule


def normalize(video, mean, std):
  """uint8 [B, T, H, W, C] -> float32, on device (4x less host->device traffic)."""
  return (video.astype(jnp.float32) / 255.0 - jnp.asarray(mean)) / jnp.asarray(std)


def classification_targets(batch: dict, num_classes: int, label_smoothing: float):
  """Soft targets [B, K]: the pipeline's (mixup, cutmix) or one-hot labels, smoothed.

  Smoothing is linear, so smoothing a mix equals mixing smoothed labels.
  """
  targets = batch['target'] if 'target' in batch else jax.nn.one_hot(batch['label'], num_classes)
  return optax.smooth_labels(targets, label_smoothing)


def train_step(state: TrainState, batch: dict, *, model, tx, schedule, num_classes: int,
               label_smoothing: float, mean, std, seed: int, inject_nan_at_step: int = -1):
  """One update. Pure: the dropout key derives from (seed, step).

  A step whose loss or gradients are not finite changes nothing but the
  non-finite counters, so the parameters stay usable whatever the policy.
  """
  dropout_key = jax.random.fold_in(jax.random.key(seed), state.step)
  video = normalize(batch['video'], mean, std)

  targets = classification_targets(batch, num_classes, label_smoothing)

  def loss_fn(params):
    logits = model.apply(params, video, train=True, rngs={'dropout': dropout_key})
    loss = optax.softmax_cross_entropy(logits, targets).mean()
    if inject_nan_at_step >= 0:  # The test-only fault hook; a no-op otherwise.
      loss = jnp.where(state.step + 1 == inject_nan_at_step, jnp.nan, loss)
    return loss, logits

  (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
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
  metrics = {
      'loss': loss,
      'accuracy': jnp.mean(jnp.argmax(logits, -1) == batch['label']),
      'grad_norm': grad_norm,
      'learning_rate': schedule(state.step - 1),
  }
  return state, metrics


def eval_step(params, batch: dict, *, model, mean, std):
  """Softmax probabilities of one batch; padding rows are dropped on the host."""
  logits = model.apply(params, normalize(batch['video'], mean, std), train=False)
  return jax.nn.softmax(logits, axis=-1)


# ----------------------------------------------------------------------------
# Helpers the loop uses.
# ----------------------------------------------------------------------------

def model_meta(config: ml_collections.ConfigDict, class_names) -> dict:
  """What must match for a checkpoint to be resumed or used for prediction."""
  return {'model': json.loads(config.model.to_json()), 'class_names': list(class_names),
          'num_frames': config.data.num_frames, 'height': config.data.height,
          'width': config.data.width}


def abstract_state(config, model, tx, mesh):
  """(init function, the state's shapes with their shardings); allocates nothing.

  Checkpoints restore straight into the abstract state's layout.
  """
  clip = jnp.zeros((1, config.data.num_frames, config.data.height, config.data.width, 3), jnp.float32)

  def init(key):
    params = model.init(key, clip)
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


def evaluate_split(predict_fn, params, records, class_names, config, mesh, split: str) -> dict:
  """Per-video metrics over one split, on all processes together."""
  if not records:
    raise pipeline.DataError(f"the '{split}' split has no videos")
  process_records = pipeline.shard_for_process(records, jax.process_index(), jax.process_count())
  local_batch = parallel.per_process_batch_size(config.eval.batch_size, mesh)
  longest = -(-len(records) // jax.process_count())
  num_batches = -(-longest * pipeline.views_per_video(config.data) // local_batch)
  failures = pipeline.FailureCounter(split, config.data.max_failed_fraction,
                                     min_seen=len(process_records))
  # Global record index: this process's i-th record is records[process + i * count].
  offset, stride = jax.process_index(), jax.process_count()
  probs, labels, index, mask = [], [], [], []
  for batch in pipeline.eval_batches(process_records, config.data, batch_size=local_batch,
                                     num_batches=num_batches, failures=failures):
    batch['index'] = np.where(batch['index'] >= 0, offset + stride * batch['index'], -1)
    device_batch = parallel.global_batch({'video': batch['video']}, mesh)
    probs.append(predict_fn(params, device_batch))
    labels.append(batch['label'])
    index.append(batch['index'])
    mask.append(batch['mask'])
  gather = lambda xs: np.asarray(multihost_utils.process_allgather(np.concatenate(xs), tiled=True))
  all_probs = np.concatenate([np.asarray(multihost_utils.process_allgather(p, tiled=True)) for p in probs])
  all_labels, all_index, all_mask = gather(labels), gather(index), gather(mask).astype(bool)
  failed = int(multihost_utils.process_allgather(np.asarray([len(failures.failed)])).sum())
  kept = all_mask & (all_index >= 0)
  videos, video_probs = metrics_lib.average_views(all_probs[kept], all_index[kept])
  first = {v: l for v, l in zip(all_index[kept][::-1], all_labels[kept][::-1])}
  video_labels = np.asarray([first[v] for v in videos], np.int64)
  result = metrics_lib.classification_metrics(video_probs, video_labels, len(class_names))
  result['num_failed'] = failed
  eps = 1e-7
  result['loss'] = float(-np.mean(np.log(video_probs[np.arange(len(videos)), video_labels] + eps)))
  if failed:
    log.warning('%s', failures.summary())
  return result


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

  # 1. Mesh.
  mesh = parallel.make_mesh(config.mesh.data, config.mesh.model)
  local_batch = parallel.per_process_batch_size(config.train.batch_size, mesh)

  # 2. Input.
  train_set = sources.load_split(config.data, config.data.train_split)
  class_names = train_set.class_names
  eval_set = sources.load_split(config.data, config.data.eval_split)
  train_failures = pipeline.FailureCounter('train', config.data.max_failed_fraction)
  train_records = pipeline.shard_for_process(train_set.records, jax.process_index(),
                                             jax.process_count())
  train_data = pipeline.train_dataset(train_records, config.data, batch_size=local_batch,
                                      seed=config.seed, failures=train_failures,
                                      class_names=class_names)
  train_iter = iter(train_data)

  # 3. Model and optimizer.
  model = build_model(config.model, len(class_names))
  tx, schedule = make_optimizer(config.optim, config.train.num_steps)

  # 4. State, created in its sharded layout; then resume if the workdir has a checkpoint.
  state, abstract_state = create_state(config, model, tx, mesh)
  ckpt = checkpoint_lib.Checkpointer(workdir, max_to_keep=config.train.max_checkpoints)
  meta = model_meta(config, class_names)
  restored = ckpt.restore_latest(abstract_state, train_iter, meta=meta)
  if restored is not None:
    state, resumed_step = restored
    log.info('resumed from %s at step %d', ckpt.directory, resumed_step)
  if main:
    (workdir / 'classes.json').write_text(json.dumps(class_names))

  # 5. Steps: jitted with explicit shardings; the state's buffers are donated.
  mean, std = tuple(config.data.mean), tuple(config.data.std)
  state_sharding = jax.tree.map(lambda s: s.sharding, abstract_state)
  batch_sharding = parallel.batch_sharding(mesh)
  step_fn = jax.jit(
      functools.partial(train_step, model=model, tx=tx, schedule=schedule,
                        num_classes=len(class_names), label_smoothing=config.optim.label_smoothing,
                        mean=mean, std=std, seed=config.seed,
                        inject_nan_at_step=config.train.inject_nan_at_step),
      in_shardings=(state_sharding, batch_sharding),
      out_shardings=(state_sharding, parallel.replicated(mesh)),
      donate_argnums=(0,))
  predict_fn = jax.jit(functools.partial(eval_step, model=model, mean=mean, std=std),
                       in_shardings=(state_sharding.params, batch_sharding),
                       out_shardings=batch_sharding)

  # 6. Writer and the numbers shown once.
  writer = report.Writer(workdir, enabled=main)
  num_params = cost.count_params(state.params)
  clip_shape = (config.data.num_frames, config.data.height, config.data.width, 3)
  gflops = cost.forward_flops_per_clip(model, state.params, clip_shape) / 1e9
  if main:
    log.info('model %s: %s parameters, %.3f GFLOPs per clip (forward)', config.model.name,
             f'{num_params:,}', gflops)

  def run_eval(split_name, dataset, step):
    result = evaluate_split(predict_fn, state.params, dataset.records, class_names, config, mesh,
                            split_name)
    writer.scalars(step, {f'{split_name}/top1': result['top1'], f'{split_name}/top5': result['top5'],
                          f'{split_name}/loss': result['loss'],
                          f'{split_name}/mean_class_accuracy': result['mean_class_accuracy']})
    if main:
      log.info('step %d %s: top1 %.4f top5 %.4f (%d videos, %d unreadable)', step, split_name,
               result['top1'], result['top5'], result['num_videos'], result['num_failed'])
    return result

  # 7. The loop. No host sync inside it except every log_every steps. Whatever
  #    ends it (the last step, a stop, a preemption, an error), pending
  #    checkpoint writes finish and the writer closes.
  step = int(state.step)
  num_steps = config.train.num_steps
  stop_at = num_steps
  if config.train.stop_after_steps > 0:
    stop_at = min(num_steps, step + config.train.stop_after_steps)
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
          log.info('step %d/%d: loss %.4f, accuracy %.3f, %.0f clips/s', step, num_steps,
                   summary['loss'], summary['accuracy'], summary['clips_per_second'])
      if step % config.train.checkpoint_every == 0 or step == stop_at or preempted:
        _check_finite(state, config.train.on_nonfinite)  # Never save past a NaN under 'stop'.
        ckpt.save(step, state, meta, position, force=True)
      if preempted:
        raise preemption.Preempted(step, str(workdir))
      if step % config.train.eval_every == 0 and step != num_steps:
        run_eval('eval', eval_set, step)
  finally:
    guard.close()
    if bar is not None:
      bar.close()
    ckpt.wait()
    if step < num_steps:
      ckpt.close()
      writer.close()
  if step < num_steps:  # stop_after_steps: the same command goes on from here.
    log.info('stopped at step %d of %d; run the same command to continue', step, num_steps)
    return {'state': state, 'stopped_at': step}

  # 8. Final evaluation on the eval and test splits, pictures and the summary.
  final = {'eval': run_eval('eval', eval_set, step)}
  test_set = sources.load_split(config.data, config.data.test_split)
  final['test'] = run_eval('test', test_set, step)
  writer.flush()
  ckpt.close()
  files = {}
  if main:
    files['curves'] = workdir / 'training_curves.png'
    report.plot_curves(report.read_history(writer.history_path), files['curves'])
    files['confusion'] = workdir / 'confusion_test.png'
    report.plot_confusion(final['test']['confusion'], class_names, files['confusion'],
                          f"{config.model.name}: test confusion (top-1 {final['test']['top1']:.3f})")
    results = {
        'model': config.model.name, 'num_params': num_params, 'gflops_per_clip': gflops,
        'step': step, 'devices': jax.device_count(), 'processes': jax.process_count(),
        'train_failed_videos': len(train_failures.failed),
        **{f'{split}_{k}': final[split][k] for split in final
           for k in ('top1', 'top5', 'mean_class_accuracy', 'num_videos', 'num_failed')},
        'per_class_test_accuracy': dict(zip(class_names,
                                            map(float, final['test']['per_class_accuracy']))),
        'wall_seconds': time.time() - t_start,
    }
    (workdir / 'results.json').write_text(json.dumps(results, indent=2))
    files['results'] = workdir / 'results.json'
    print(report.summary([
        ('model', f'{config.model.name} ({num_params:,} parameters, {gflops:.3f} GFLOPs/clip)'),
        ('devices', f'{jax.device_count()} x {jax.devices()[0].platform} in {jax.process_count()} process(es), '
                    f'mesh {dict(mesh.shape)}'),
        ('steps', f'{step} at batch {config.train.batch_size}'),
        ('eval top-1 / top-5', f"{final['eval']['top1']:.4f} / {final['eval']['top5']:.4f}"),
        ('test top-1 / top-5', f"{final['test']['top1']:.4f} / {final['test']['top5']:.4f} "
                               f"({final['test']['num_videos']} videos)"),
        ('unreadable videos', f"train {len(train_failures.failed)}, eval {final['eval']['num_failed']}, "
                              f"test {final['test']['num_failed']}"),
        ('wall time', f'{time.time() - t_start:.0f} s'),
        ('workdir', str(workdir)),
        ('files', ', '.join(p.name for p in files.values()) + ', tensorboard/, checkpoints/'),
    ]), flush=True)
  writer.close()
  final['state'] = state
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
