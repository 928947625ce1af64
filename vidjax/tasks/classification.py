"""Video classification: clips -> class logits, evaluated per video.

Pure pieces first (the record's label as targets, normalisation, loss,
evaluation step, per-split evaluation), then `Classification`, which wires
them to the config for the loop in train.py and for `--mode evaluate` and
`--mode predict`. Datasets: any registry entry whose records carry a
'label' (the embedded action set, csv, UCF-101, Kinetics, SSv2).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import pathlib
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.experimental import multihost_utils

from vidjax.metrics import classification as metrics_lib
from vidjax import parallel, progress, report
from vidjax.data import flip_labels, mixing, pipeline, registry
from vidjax.data.records import ClipInfo
from vidjax.models import build_model

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------
# Pure pieces.
# ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LabelTargets:
  """A record's {'label': k} -> {'label': int32}; a mirrored clip of a direction
  class takes its mirror class (`flip_map`, see data/flip_labels.py)."""
  flip_map: tuple[tuple[int, int], ...] = ()

  def __call__(self, annotation: Mapping[str, Any], clip: ClipInfo) -> dict:
    label = int(annotation['label'])
    if clip.flipped:
      label = dict(self.flip_map).get(label, label)
    return {'label': np.int32(label)}

  def padding(self) -> dict:
    return {'label': np.int32(0)}


def training_targets(data, class_names, seed: int) -> tuple[LabelTargets, mixing.MixBatch | None]:
  """The training stream's targets (flip label map when flipping) and batch mixing."""
  flip_map = ()
  if data.flip and data.flip_label_map:
    flip_map = tuple(sorted(flip_labels.flip_label_map(class_names).items()))
  mix = None
  if data.mixup_alpha > 0 or data.cutmix_alpha > 0:
    mix = mixing.MixBatch(seed, len(class_names), data.mixup_alpha, data.cutmix_alpha,
                          data.cutmix_prob)
  return LabelTargets(flip_map), mix


def normalize(video, mean, std):
  """uint8 [B, T, H, W, C] -> float32, on device (4x less host->device traffic)."""
  return (video.astype(jnp.float32) / 255.0 - jnp.asarray(mean)) / jnp.asarray(std)


def classification_targets(batch: dict, num_classes: int, label_smoothing: float):
  """Soft targets [B, K]: the pipeline's (mixup, cutmix) or one-hot labels, smoothed.

  Smoothing is linear, so smoothing a mix equals mixing smoothed labels.
  """
  targets = batch['target'] if 'target' in batch else jax.nn.one_hot(batch['label'], num_classes)
  return optax.smooth_labels(targets, label_smoothing)


def loss(params, batch: dict, dropout_key, *, model, num_classes: int, label_smoothing: float,
         mean, std):
  """(softmax cross-entropy of the batch, {'accuracy'}); pure."""
  video = normalize(batch['video'], mean, std)
  targets = classification_targets(batch, num_classes, label_smoothing)
  logits = model.apply(params, video, train=True, rngs={'dropout': dropout_key})
  value = optax.softmax_cross_entropy(logits, targets).mean()
  return value, {'accuracy': jnp.mean(jnp.argmax(logits, -1) == batch['label'])}


def eval_step(params, batch: dict, *, model, mean, std):
  """Softmax probabilities of one batch; padding rows are dropped on the host."""
  logits = model.apply(params, normalize(batch['video'], mean, std), train=False)
  return jax.nn.softmax(logits, axis=-1)


def model_meta(config: ml_collections.ConfigDict, class_names) -> dict:
  """What must match for a checkpoint to be resumed or used for prediction."""
  return {'model': json.loads(config.model.to_json()), 'class_names': list(class_names),
          'num_frames': config.data.num_frames, 'height': config.data.height,
          'width': config.data.width}


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
  finished = progress.Finished(progress.bar(num_batches, f'evaluate {split}',
                                            config.train.progress_bar, leave=False))
  for batch in pipeline.eval_batches(process_records, config.data, batch_size=local_batch,
                                     num_batches=num_batches, failures=failures,
                                     targets=LabelTargets()):
    batch['index'] = np.where(batch['index'] >= 0, offset + stride * batch['index'], -1)
    device_batch = parallel.global_batch({'video': batch['video']}, mesh)
    probs.append(predict_fn(params, device_batch))
    finished.add(probs[-1])  # Counts the batches the device has finished; never waits.
    labels.append(batch['label'])
    index.append(batch['index'])
    mask.append(batch['mask'])
  # Gathered batch by batch, as the global probabilities are: row order matches.
  gather = lambda xs: np.concatenate(
      [np.asarray(multihost_utils.process_allgather(x, tiled=True)) for x in xs])
  all_probs = gather(probs)
  finished.close()
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


# ----------------------------------------------------------------------------
# The task.
# ----------------------------------------------------------------------------

class Classification:
  """`config.task = 'classification'`: see vidjax/tasks/__init__.py for the protocol."""
  name = 'classification'
  periodic_split = 'eval'
  final_splits = ('eval', 'test')
  apply_kwargs: dict = {}

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    data = config.data
    self.input_shape = (data.num_frames, data.height, data.width, 3)
    self.split_names = {'eval': data.eval_split, 'test': data.test_split}
    self.class_names: list[str] | None = None
    self.train_failures: pipeline.FailureCounter | None = None
    self._sets: dict[str, registry.Split] = {}

  # Input.
  def train_iterator(self, batch_size: int):
    data, seed = self.config.data, self.config.seed
    train_set = registry.load_split(data, data.train_split, seed)
    self.class_names = train_set.class_names
    self._split('eval')  # A missing eval split fails now, not after training.
    self.train_failures = pipeline.FailureCounter('train', data.max_failed_fraction)
    targets, mix = training_targets(data, self.class_names, seed)
    return iter(pipeline.train_dataset(
        train_set.records, data, batch_size=batch_size, seed=seed, failures=self.train_failures,
        targets=targets, batch_fn=mix, process_index=jax.process_index(),
        process_count=jax.process_count()))

  def _split(self, name: str) -> registry.Split:
    if name not in self._sets:
      self._sets[name] = registry.load_split(self.config.data, self.split_names[name],
                                             self.config.seed)
    return self._sets[name]

  # Model.
  def meta(self, saved: dict | None = None) -> dict:
    class_names = saved['class_names'] if saved is not None else self.class_names
    return model_meta(self.config, class_names)

  def build_model(self, meta: dict):
    self.class_names = list(meta['class_names'])
    return build_model(self.config.model, len(self.class_names))

  def summary_model(self, num_classes: int | None = None):
    """The model at the dataset's class count (the registry's published one), no data read."""
    num_classes = registry.published_num_classes(self.config.data.dataset, num_classes)
    return build_model(self.config.model, num_classes)

  def on_start(self, workdir: pathlib.Path) -> None:
    (workdir / 'classes.json').write_text(json.dumps(self.class_names))

  # Update.
  def loss_fn(self, model):
    return functools.partial(loss, model=model, num_classes=len(self.class_names),
                             label_smoothing=self.config.optim.label_smoothing,
                             mean=tuple(self.config.data.mean), std=tuple(self.config.data.std))

  def describe_train(self, summary: dict) -> str:
    return f"loss {summary['loss']:.4f}, accuracy {summary['accuracy']:.3f}"

  # Evaluation.
  def evaluator(self, model, mesh, params_sharding=None):
    """evaluate(params, split) for split in 'eval', 'test' (config.data's splits)."""
    data = self.config.data
    batch_sharding = parallel.batch_sharding(mesh)
    predict_fn = jax.jit(functools.partial(eval_step, model=model, mean=tuple(data.mean),
                                           std=tuple(data.std)),
                         in_shardings=None if params_sharding is None else (params_sharding,
                                                                            batch_sharding),
                         out_shardings=batch_sharding)

    def evaluate(params, split: str) -> dict:
      return evaluate_split(predict_fn, params, self._split(split).records, self.class_names,
                            self.config, mesh, split)
    return evaluate

  def eval_scalars(self, split: str, result: dict) -> dict:
    """The summary numbers only: per-class ones go to TensorBoard's text tab (`eval_texts`),
    so that metrics.jsonl keeps one short line per evaluation."""
    return {f'{split}/top1': result['top1'], f'{split}/top5': result['top5'],
            f'{split}/loss': result['loss'],
            f'{split}/mean_class_accuracy': result['mean_class_accuracy'],
            **{f'{split}/{average}_{m}': result[average][m] for average in ('macro', 'weighted')
               for m in metrics_lib.AVERAGED}}

  def describe_eval(self, result: dict) -> str:
    return (f"top1 {result['top1']:.4f} top5 {result['top5']:.4f} "
            f"macro F1 {result['macro']['f1']:.4f} "
            f"({result['num_videos']} videos, {result['num_failed']} unreadable)")

  def eval_texts(self, split: str, result: dict) -> dict:
    """Tables for TensorBoard's text tab: the per-class table and the confusion matrix."""
    return {f'{split}/per_class': metrics_lib.per_class_table(result, self.class_names),
            f'{split}/confusion_matrix': metrics_lib.confusion_table(result['confusion'])}

  def selection_metric(self, result: dict) -> float:
    return result['loss']

  # Report.
  def report(self, workdir: pathlib.Path, final: dict, *, evaluate, params, history_path):
    del evaluate, params
    model_name = self.config.model.name
    files = {'curves': workdir / 'training_curves.png',
             'confusion': workdir / 'confusion_test.png'}
    history = report.read_history(history_path)
    report.plot_curves(history, files['curves'])
    report.plot_confusion(final['test']['confusion'], self.class_names, files['confusion'],
                          f"{model_name}: test confusion (top-1 {final['test']['top1']:.3f})")
    failed = len(self.train_failures.failed) if self.train_failures is not None else 0
    results = {
        'train_failed_videos': failed,
        **{f'{split}_{k}': final[split][k] for split in ('eval', 'test')
           for k in ('top1', 'top5', 'mean_class_accuracy', 'num_videos', 'num_failed')},
        'class_names': list(self.class_names),
        **{split: metrics_lib.split_fields(final[split], self.class_names)
           for split in ('eval', 'test')},
    }
    # The tables beside the final scalars, at the step train.py logged them (the best, under
    # early stopping); a file of its own, as train.py's writer is still open on the folder.
    step = max([r['step'] for r in history if 'test/top1' in r], default=0)
    writer = report.Writer(workdir, history=False, suffix='.final')
    for split in ('eval', 'test'):
      for tag, text in self.eval_texts(split, final[split]).items():
        writer.text(step, tag, text)
    writer.close()
    test = final['test']
    rows = [
        ('eval top-1 / top-5', f"{final['eval']['top1']:.4f} / {final['eval']['top5']:.4f}"),
        ('test top-1 / top-5', f"{final['test']['top1']:.4f} / {final['test']['top5']:.4f} "
                               f"({final['test']['num_videos']} videos)"),
        ('test mean class acc / macro F1',
         f"{test['mean_class_accuracy']:.4f} / {test['macro']['f1']:.4f}"),
        ('unreadable videos', f"train {failed}, eval {final['eval']['num_failed']}, "
                              f"test {final['test']['num_failed']}"),
        ('test per class', metrics_lib.per_class_table(test, self.class_names)),
    ]
    return results, rows, files

  # Using a trained model.
  def evaluate_rows(self, results: dict) -> list:
    """Console rows of `--mode evaluate`: per split, its numbers and its per-class table."""
    rows = []
    for split, r in results.items():
      name = self.split_names[split]
      rows += [(f'{name} top-1 / top-5', f"{r['top1']:.4f} / {r['top5']:.4f} "
                                         f"({r['num_videos']} videos, {r['num_failed']} unreadable)"),
               (f'{name} mean class acc / macro F1',
                f"{r['mean_class_accuracy']:.4f} / {r['macro']['f1']:.4f}"),
               (f'{name} per class', metrics_lib.per_class_table(r, self.class_names))]
    return rows

  def evaluation_fields(self, results: dict) -> dict:
    """`--mode evaluate`'s evaluation.json: the class names (the confusion matrices' order),
    then each split's metrics (`metrics_lib.split_fields`)."""
    return {'class_names': list(self.class_names),
            **{split: {'split': self.split_names[split],
                       **metrics_lib.split_fields(r, self.class_names)}
               for split, r in results.items()}}

  def predict(self, paths: list[str], restore, workdir: pathlib.Path, top_k: int = 5) -> list:
    """Top-k classes of each video, one JSON line each; see classification_predict.py."""
    from vidjax.tasks import classification_predict  # It imports this module: imported here.
    return classification_predict.predict(self, paths, restore, workdir, top_k)
