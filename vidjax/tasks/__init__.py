"""Tasks: what differs between learning problems, so that the loop does not.

`train.train_and_evaluate` is one loop for every task: the mesh, the sharded
state, the jitted update with donation and explicit shardings, resume with
the data position, preemption, the NaN policy, checkpoints, early stopping,
the writer and the progress bar. A task (`config.task`) supplies the rest,
through the `Task` methods below, which the loop calls in this order:

  input     train_iterator -> a grain iterator of this process's batch rows:
            the dataset registry's records (vidjax/data/registry.py), the
            task's targets function turning each annotation into fixed-shape
            targets (vidjax/data/records.py), the shared training stream
  model     meta, build_model, input_shape / apply_kwargs (init and FLOPs)
  update    loss_fn -> a pure (params, batch, dropout_key) -> (loss, metrics)
  log       describe_train
  evaluate  evaluator -> evaluate(params, split); eval_scalars, describe_eval,
            selection_metric (lower is better: early stopping's criterion)
  report    final_splits, report -> results.json fields, console rows, pictures

and, for a trained workdir (vidjax/predict.py) and the cost summary:

  --mode evaluate   evaluate_rows (console), evaluation_fields (evaluation.json)
  --mode predict    predict(paths, restore, workdir): reads and checks the
                    files, restores, prints and writes the predictions
  summary           summary_model: the model at the task's input size, no data

The pure pieces (loss, evaluation step) are module-level functions in each
task's file, bound with `functools.partial`; a task object only wires them
to the config. Adding a task: its file here, its line in `TASKS`.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

from vidjax.errors import UserError


class Task(Protocol):
  name: str
  periodic_split: str  # Evaluated every train.eval_every steps (and for early stopping).
  final_splits: Sequence[str]  # Evaluated at the end, with the final (or best) parameters.
  input_shape: tuple[int, ...]  # One example's model input, e.g. [T, H, W, C].
  apply_kwargs: dict  # Keyword arguments of model.apply besides `train`.

  def train_iterator(self, batch_size: int) -> Any:
    """Endless batches of this process's rows of global batches of `batch_size`."""

  def meta(self, saved: dict | None = None) -> dict:
    """What a checkpoint must match; `saved` is a checkpoint's, when restoring one."""

  def build_model(self, meta: dict) -> Any: ...

  def on_start(self, workdir) -> None:
    """Files written once at start-up by process 0."""

  def loss_fn(self, model) -> Callable: ...

  def describe_train(self, summary: dict) -> str: ...

  def evaluator(self, model, mesh, params_sharding=None) -> Callable[[Any, str], dict]: ...

  def eval_scalars(self, split: str, result: dict) -> dict: ...

  # Optional: {tag: markdown} for TensorBoard's text tab (classification's per-class
  # table and confusion matrix); `--mode evaluate` writes it where a task has it.
  # def eval_texts(self, split: str, result: dict) -> dict: ...

  def describe_eval(self, result: dict) -> str: ...

  def selection_metric(self, result: dict) -> float: ...

  def report(self, workdir, final: dict, *, evaluate, params, history_path) -> tuple[dict, list, dict]:
    """(results.json fields, console rows, {name: path} of files written)."""

  def evaluate_rows(self, results: dict) -> list:
    """Console rows of `--mode evaluate`."""

  def evaluation_fields(self, results: dict) -> dict:
    """`--mode evaluate`'s evaluation.json (JSON-able)."""

  def predict(self, paths: list[str], restore: Callable[[], tuple], workdir) -> list:
    """`--mode predict`: checks `paths`, calls `restore()` -> (model, params, what),
    prints and writes under `workdir/predictions/`."""

  def summary_model(self, num_classes: int | None = None) -> Any:
    """The model whose cost `python -m vidjax.summary` reports, built without data."""


# The task registry: `config.task` -> its class, one line each. (Imported here, after
# the protocol, so that a task module may import its sibling helpers from this package.)
from vidjax.tasks.classification import Classification  # noqa: E402
from vidjax.tasks.denoising import Denoising  # noqa: E402
from vidjax.tasks.detection import Detection  # noqa: E402
from vidjax.tasks.frame_prediction import FramePrediction  # noqa: E402
from vidjax.tasks.localization import Localization  # noqa: E402

TASKS = {
    'classification': Classification,
    'frame_prediction': FramePrediction,
    'localization': Localization,
    'detection': Detection,
    'denoising': Denoising,
}


def get(config) -> Task:
  """The task `config.task`, bound to the config."""
  if config.task not in TASKS:
    raise UserError(f"unknown task '{config.task}'; use one of {', '.join(TASKS)}")
  return TASKS[config.task](config)
