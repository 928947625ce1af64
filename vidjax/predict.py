"""Using a trained workdir: evaluate its checkpoint, or predict for files.

Both modes work for every task: `--mode evaluate` runs the task's final
evaluation; `--mode predict` classifies videos (classification) or predicts
the next frames of a sequence (frame prediction).
"""
from __future__ import annotations

import functools
import pathlib

import jax
import numpy as np

from vidjax import checkpoint as checkpoint_lib
from vidjax import early_stopping, parallel, report, tasks, train
from vidjax.data import decode, pipeline
from vidjax.errors import UserError


def restore_params(config, workdir: str):
  """(task, model, params, mesh, what) from the workdir's checkpoints.

  The parameters are those of the newest good checkpoint, or, when the run
  kept early-stopping parameters, those of its best evaluation (which the
  run's own final evaluation used). `what` says which, for the console.
  """
  task = tasks.get(config)
  ckpt = checkpoint_lib.Checkpointer(workdir, max_to_keep=config.train.max_checkpoints)
  saved = ckpt.newest_meta()
  if saved is None:
    raise UserError(f'no checkpoint in {ckpt.directory}; train first with the same '
                    '--config and --workdir')
  model = task.build_model(saved)
  tx, _ = train.make_optimizer(config.optim, config.train.num_steps)
  mesh = parallel.make_mesh(config.mesh.data, config.mesh.model)
  _, abstract_state = train.abstract_state(config, model, tx, mesh)
  meta = task.meta(saved)
  state, step = ckpt.restore_latest(abstract_state, meta=meta)
  ckpt.close()
  params, what = state.params, f'step {step}'
  best = early_stopping.restore_best_params(workdir, abstract_state.params, meta, mesh)
  if best is not None:
    params, what = best[0], f'step {best[1]} (best evaluation; last step {step})'
  return task, model, params, mesh, what


def evaluate(config, workdir: str) -> dict:
  """The task's final evaluation of a trained workdir, printed and returned."""
  task, model, params, mesh, what = restore_params(config, workdir)
  evaluate_split = task.evaluator(model, mesh)
  results = {split: evaluate_split(params, split) for split in task.final_splits}
  if parallel.is_main_process():
    print(report.summary([('checkpoint', f'{workdir} {what}'), *task.evaluate_rows(results)]),
          flush=True)
  return results


def predict(config, workdir: str, videos: list[str], top_k: int = 5):
  """`--mode predict`: classify videos, or predict the frames after each sequence."""
  if config.task == 'frame_prediction':
    return predict_frames(config, workdir, videos)
  return classify(config, workdir, videos, top_k)


def classify(config, workdir: str, videos: list[str], top_k: int = 5) -> list[list[tuple[str, float]]]:
  """Prints and returns the top-k (class, probability) of each video."""
  from vidjax.tasks import classification
  for path in videos:
    if not pathlib.Path(path).is_file():
      raise UserError(f"--video '{path}' does not exist")
  task, model, params, _, _ = restore_params(config, workdir)
  params = jax.device_put(params, jax.devices()[0])
  mean, std = tuple(config.data.mean), tuple(config.data.std)
  predict_fn = jax.jit(functools.partial(classification.eval_step, model=model, mean=mean, std=std))
  ranked = []
  for path in videos:
    try:
      clip = pipeline.read_clip_for_prediction(path, config.data)
    except decode.DecodeError as e:
      raise UserError(f"--video '{path}' cannot be decoded: {e.reason}") from None
    probs = np.asarray(predict_fn(params, {'video': clip[None]}))[0]
    order = np.argsort(-probs)[:top_k]
    ranked.append([(task.class_names[i], float(probs[i])) for i in order])
    print(path)
    for rank, (name, p) in enumerate(ranked[-1], 1):
      print(f'  {rank}. {name:<24s} {p:.4f}')
  return ranked


def predict_frames(config, workdir: str, paths: list[str]) -> list[dict[str, pathlib.Path]]:
  """Writes the predicted frames of each sequence as an mp4 and a PNG strip.

  Each path is a `.npy` ([T, 64, 64], or the public [T, N, 64, 64] layout, of
  which sequence 0) or a video of at least `num_observed` frames; the first
  `num_observed` frames are observed (see `frame_prediction.read_observed`).
  Files go to `workdir/predictions/<name>_predicted.{mp4,png}`.
  """
  from vidjax.data.synthetic_actions import write_mp4
  from vidjax.tasks import frame_prediction
  from vidjax.tasks import frame_prediction_report as figures
  inputs = [frame_prediction.read_observed(path, config.data.moving_mnist.num_observed)
            for path in paths]  # Every file is checked before the model is loaded.
  task, model, params, _, what = restore_params(config, workdir)
  params = jax.device_put(params, jax.devices()[0])
  forecast = jax.jit(functools.partial(frame_prediction.predict_frames, model=model,
                                       num_future=task.num_future))
  out_dir = pathlib.Path(workdir) / 'predictions'
  out_dir.mkdir(parents=True, exist_ok=True)
  written = []
  for path, (observed, future) in zip(paths, inputs):
    probs = np.asarray(forecast(params, observed[None].astype(np.float32) / 255.0))[0]
    frames = np.clip(np.rint(probs * 255.0), 0, 255).astype(np.uint8)  # [T_out, 64, 64, 1]
    stem = pathlib.Path(path).stem
    files = {'mp4': out_dir / f'{stem}_predicted.mp4', 'png': out_dir / f'{stem}_predicted.png'}
    write_mp4(files['mp4'], np.repeat(frames, 3, axis=-1))
    truth = None if future is None else future[None, :task.num_future]
    figures.plot_strip(observed[None], probs[None], files['png'], truth=truth, labels=[stem],
                       title=f"{figures.row_name(config.model)}, {what}: {pathlib.Path(path).name}")
    print(path)
    print(f"  {len(frames)} predicted frames: {files['mp4']}")
    print(f"  strip (input, {'truth, ' if truth is not None else ''}predicted): {files['png']}")
    written.append(files)
  return written
