"""Using a trained workdir: evaluate its checkpoint, or predict for files.

Both modes work for every task, and the task says what they produce:
`--mode evaluate` runs the task's final evaluation, prints its rows and
writes `workdir/evaluation.json`; `--mode predict` hands the files to the
task's `predict` (classification prints and writes top-5 classes, frame
prediction writes the next frames). Only the parameters are read.
"""
from __future__ import annotations

import json
import pathlib

from vidjax import checkpoint as checkpoint_lib
from vidjax import early_stopping, parallel, report, steps, tasks
from vidjax.errors import UserError


def restore_params(config, workdir: str, task=None):
  """(task, model, params, mesh, what) from the workdir's checkpoints.

  The parameters are those of the newest good checkpoint, or, when the run
  kept early-stopping parameters, those of its best evaluation (which the
  run's own final evaluation used). `what` says which, for the console.
  Only parameters are read, so the optimizer settings need not match the run's.
  """
  task = task or tasks.get(config)
  ckpt = checkpoint_lib.Checkpointer(workdir, max_to_keep=config.train.max_checkpoints)
  saved = ckpt.newest_meta()
  if saved is None:
    raise UserError(f'no checkpoint in {ckpt.directory}; train first with the same '
                    '--config and --workdir')
  model = task.build_model(saved)
  tx, _ = steps.make_optimizer(config.optim, config.train.num_steps)  # For the shapes only.
  mesh = parallel.make_mesh(config.mesh.data, config.mesh.model)
  _, abstract_state = steps.abstract_state(config, model, tx, mesh, task)
  meta = task.meta(saved)
  params, step = ckpt.restore_params(abstract_state.params, meta)
  ckpt.close()
  what = f'step {step}'
  best = early_stopping.restore_best_params(workdir, abstract_state.params, meta, mesh)
  if best is not None:
    params, what = best[0], f'step {best[1]} (best evaluation; last step {step})'
  return task, model, params, mesh, what


def evaluate(config, workdir: str) -> dict:
  """The task's final evaluation of a trained workdir: printed, written to evaluation.json."""
  task, model, params, mesh, what = restore_params(config, workdir)
  evaluate_split = task.evaluator(model, mesh)
  results = {split: evaluate_split(params, split) for split in task.final_splits}
  if parallel.is_main_process():
    path = pathlib.Path(workdir) / 'evaluation.json'
    path.write_text(json.dumps({'task': task.name, 'model': config.model.name,
                                'checkpoint': what, **task.evaluation_fields(results)},
                               indent=2, default=float))
    print(report.summary([('checkpoint', f'{workdir} {what}'), *task.evaluate_rows(results),
                          ('written', str(path))]), flush=True)
  return results


def predict(config, workdir: str, paths: list[str]) -> list:
  """`--mode predict`: the task reads the files, then the parameters, then predicts."""
  task = tasks.get(config)

  def restore():
    _, model, params, _, what = restore_params(config, workdir, task)
    return model, params, what
  return task.predict(paths, restore, pathlib.Path(workdir))
