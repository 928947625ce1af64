"""Using a trained workdir: evaluate its checkpoint, or classify video files."""
from __future__ import annotations

import functools
import pathlib

import jax
import numpy as np

from vidjax import checkpoint as checkpoint_lib
from vidjax import parallel, report, train
from vidjax.data import decode, pipeline, sources
from vidjax.errors import UserError
from vidjax.models import build_model


def restore_params(config, workdir: str):
  """(model, params, class names) from the newest good checkpoint in workdir."""
  ckpt = checkpoint_lib.Checkpointer(workdir, max_to_keep=config.train.max_checkpoints)
  saved = ckpt.newest_meta()
  if saved is None:
    raise UserError(f'no checkpoint in {ckpt.directory}; train first with the same '
                    '--config and --workdir')
  class_names = saved['class_names']
  model = build_model(config.model, len(class_names))
  tx, _ = train.make_optimizer(config.optim, config.train.num_steps)
  mesh = parallel.make_mesh(config.mesh.data, config.mesh.model)
  _, abstract_state = train.abstract_state(config, model, tx, mesh)
  state, step = ckpt.restore_latest(abstract_state, meta=train.model_meta(config, class_names))
  ckpt.close()
  return model, state.params, class_names, mesh, step


def evaluate(config, workdir: str) -> dict:
  model, params, class_names, mesh, step = restore_params(config, workdir)
  mean, std = tuple(config.data.mean), tuple(config.data.std)
  predict_fn = jax.jit(functools.partial(train.eval_step, model=model, mean=mean, std=std),
                       out_shardings=parallel.batch_sharding(mesh))
  results = {}
  rows = [('checkpoint', f'{workdir} step {step}')]
  for split in (config.data.eval_split, config.data.test_split):
    dataset = sources.load_split(config.data, split)
    result = train.evaluate_split(predict_fn, params, dataset.records, class_names, config, mesh, split)
    results[split] = result
    rows.append((f'{split} top-1 / top-5',
                 f"{result['top1']:.4f} / {result['top5']:.4f} ({result['num_videos']} videos, "
                 f"{result['num_failed']} unreadable)"))
  if parallel.is_main_process():
    print(report.summary(rows), flush=True)
  return results


def predict(config, workdir: str, videos: list[str], top_k: int = 5) -> list[list[tuple[str, float]]]:
  """Prints and returns the top-k (class, probability) of each video."""
  for path in videos:
    if not pathlib.Path(path).is_file():
      raise UserError(f"--video '{path}' does not exist")
  model, params, class_names, _, _ = restore_params(config, workdir)
  params = jax.device_put(params, jax.devices()[0])
  mean, std = tuple(config.data.mean), tuple(config.data.std)
  predict_fn = jax.jit(functools.partial(train.eval_step, model=model, mean=mean, std=std))
  ranked = []
  for path in videos:
    try:
      clip = pipeline.read_clip_for_prediction(path, config.data)
    except decode.DecodeError as e:
      raise UserError(f"--video '{path}' cannot be decoded: {e.reason}") from None
    probs = np.asarray(predict_fn(params, {'video': clip[None]}))[0]
    order = np.argsort(-probs)[:top_k]
    ranked.append([(class_names[i], float(probs[i])) for i in order])
    print(path)
    for rank, (name, p) in enumerate(ranked[-1], 1):
      print(f'  {rank}. {name:<24s} {p:.4f}')
  return ranked
