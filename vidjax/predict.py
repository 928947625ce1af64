"""Using a trained workdir: evaluate its checkpoint, or predict for files.

Both modes work for every task, and the task says what they produce:
`--mode evaluate` runs the task's final evaluation, prints its rows and
writes `workdir/evaluation.json`; `--mode predict` hands the files (given,
found in folders, or listed by a dataset split) to the task's `predict`
(classification writes top-5 classes, one JSON line per video, frame
prediction writes the next frames). Only the parameters are read.
"""
from __future__ import annotations

import json
import pathlib

from vidjax import checkpoint as checkpoint_lib
from vidjax import early_stopping, parallel, report, steps, tasks
from vidjax.data import registry
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
  if saved is None and config.init.checkpoint and task.name == 'classification':
    ckpt.close()  # A released model (e.g. an official TimeSformer .pyth), never trained here.
    return _from_init_checkpoint(config, task)
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


def _from_init_checkpoint(config, task):
  """(task, model, params, mesh, what) of `config.init.checkpoint` for a classifier: the class
  names are the train split's (read from its list, no video decoded), as a run would have them."""
  from vidjax.pretrained import init_from
  task.class_names = registry.load_split(config.data, config.data.train_split,
                                         config.seed).class_names
  model = task.build_model(task.meta())
  tx, _ = steps.make_optimizer(config.optim, config.train.num_steps)  # For the shapes only.
  mesh = parallel.make_mesh(config.mesh.data, config.mesh.model)
  state, abstract = steps.create_state(config, model, tx, mesh, task)
  params, _, origin = init_from.load_into(config, state.params, abstract.params)
  return task, model, params, mesh, f'init.checkpoint {origin}'


def evaluate(config, workdir: str) -> dict:
  """The task's final evaluation of a trained workdir: printed, written to evaluation.json
  (never results.json, which is the training run's) and to TensorBoard.

  TensorBoard gets the task's `eval_scalars` (and `eval_texts`, for a task that has
  them: classification's per-class table and confusion matrix) at the checkpoint's
  step, in `tensorboard/evaluate`: beside the training curves as a run of its own,
  so the two do not mix, and without appending to the run's metrics.jsonl.
  """
  task, model, params, mesh, what = restore_params(config, workdir)
  evaluate_split = task.evaluator(model, mesh)
  results = {split: evaluate_split(params, split) for split in task.final_splits}
  if parallel.is_main_process():
    path = pathlib.Path(workdir) / 'evaluation.json'
    path.write_text(json.dumps({'task': task.name, 'model': config.model.name,
                                'checkpoint': what, **task.evaluation_fields(results)},
                               indent=2, default=float))
    step = int(what.split()[1]) if what.startswith('step ') else 0  # 'step N ...' or a file.
    writer = report.Writer(workdir, tensorboard='tensorboard/evaluate', history=False)
    texts = getattr(task, 'eval_texts', None)
    for split, result in results.items():
      writer.scalars(step, task.eval_scalars(split, result))
      for tag, text in (texts(split, result) if texts else {}).items():
        writer.text(step, tag, text)
    writer.close()
    print(report.summary([('checkpoint', f'{workdir} {what}'), *task.evaluate_rows(results),
                          ('written', f'{path}, {path.parent / "tensorboard" / "evaluate"}')]),
          flush=True)
  return results


# The files a folder given to --video expands to. Frame prediction's sequences and
# localization's snippet features are arrays: a folder holding no video gives its .npy files.
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mkv', '.webm', '.mov', '.m4v')
ARRAY_SUFFIXES = ('.npy',)


def folder_files(folder: pathlib.Path) -> list[str]:
  """The videos under `folder`, recursively, sorted; its .npy arrays if it holds no video."""
  files = sorted(p for p in folder.rglob('*') if p.is_file())
  for suffixes in (VIDEO_SUFFIXES, ARRAY_SUFFIXES):
    found = [str(p) for p in files if p.suffix.lower() in suffixes]
    if found:
      return found
  raise UserError(f"--video '{folder}' is a folder with no video "
                  f"({', '.join(VIDEO_SUFFIXES)}) or .npy file in it")


def split_files(config, split: str) -> list[str]:
  """The files of `config.data`'s split `split`, in its order; listed-but-absent ones too,
  so that the task reports them as unreadable."""
  found = registry.load_split(config.data, split, config.seed)
  name = f"split '{split}' of data.dataset '{config.data.dataset}'"
  if any(record.index >= 0 for record in found.records):
    raise UserError(f'{name} is arrays, not files; pass --video with files instead')
  paths = [record.path for record in found.records if record.path] + list(found.missing)
  if not paths:
    raise UserError(f'{name} lists no video files')
  return paths


def prediction_paths(config, videos: list[str], split: str = '') -> list[str]:
  """`--video` files and folders, then `--split`'s files: every file once, in that order.

  A path that is neither a file nor a folder stays in the list, so the task
  reports it as missing with the rest of the batch.
  """
  paths = []
  for video in videos:
    paths += folder_files(pathlib.Path(video)) if pathlib.Path(video).is_dir() else [video]
  if split:
    paths += split_files(config, split)
  return list(dict.fromkeys(paths))


def predict(config, workdir: str, paths: list[str], split: str = '') -> list:
  """`--mode predict` over files, folders (`paths`) and a dataset split: the task reads the
  files, then the parameters, then predicts, prints and writes."""
  task = tasks.get(config)
  paths = prediction_paths(config, paths, split)
  if not paths:
    raise UserError('--mode predict needs --video PATH or FOLDER (repeat for more) or --split NAME')

  def restore():
    _, model, params, _, what = restore_params(config, workdir, task)
    return model, params, what
  return task.predict(paths, restore, pathlib.Path(workdir))
