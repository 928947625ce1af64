"""Future-frame prediction on Moving MNIST (Shi et al. 2015, Table 1).

A model sees `num_observed` frames (10) and predicts the next `num_future`
(10), one Bernoulli logit per pixel. Pure pieces first (loss, evaluation
step, prediction), then `FramePrediction`, which wires them to the config
for the loop in train.py and for `--mode evaluate` and `--mode predict`.
The data is the registry's 'moving_mnist' (vidjax/data/moving_mnist_splits.py:
an on-the-fly training split, fixed val / test / 3-digit test files), read
through the same training stream as video files.

Units, as in vidjax/metrics/frame_prediction.py: training minimises the per-pixel
binary cross-entropy with targets = pixels / 255 (its mean, so the step size
does not depend on the frame size); evaluation reports Shi et al.'s unit,
that BCE summed over the 10 x 64 x 64 predicted pixels, per sequence, plus
MSE and SSIM per frame, each also per future step t+1 .. t+10. The trivial
baselines (last observed frame, mean training frame) go through the same
evaluation, batch by batch, beside the model.
"""
from __future__ import annotations

import functools
import json
import logging
import pathlib

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from vidjax import parallel, progress
from vidjax.metrics import frame_prediction as pm
from vidjax.data import clips, pipeline, registry
from vidjax.errors import UserError
from vidjax.models import build_forecaster
from vidjax.tasks import frame_prediction_files as files
from vidjax.tasks import frame_prediction_report as figures
from vidjax.tasks import predict_failures as failures

log = logging.getLogger(__name__)

FRAME_SIZE = files.FRAME_SIZE  # Moving MNIST frames: 64x64x1.
# Training sequences the mean-frame baseline averages: its pixels then vary
# by well under 1% between two such draws.
MEAN_FRAME_SEQUENCES = 1000
# Sequences of each evaluated split kept, with their predictions, for pictures.
NUM_EXAMPLES = 4


# ----------------------------------------------------------------------------
# Pure pieces.
# ----------------------------------------------------------------------------

def split_sequence(video, num_observed: int, num_future: int):
  """uint8 [B, T, H, W, C] -> (observed [B, T_in, ...], targets [B, T_out, ...]) in [0, 1]."""
  frames = pm.to_unit(video)
  return frames[:, :num_observed], frames[:, num_observed:num_observed + num_future]


def loss(params, batch: dict, dropout_key, *, model, num_observed: int, num_future: int):
  """(mean per-pixel BCE, {'bce_per_sequence'}): the optimised and the reported unit."""
  observed, targets = split_sequence(batch['video'], num_observed, num_future)
  logits = model.apply(params, observed, num_future=num_future, train=True,
                       rngs={'dropout': dropout_key})  # [B, T_out, H, W, C]
  bce = pm.bce_with_logits(logits, targets)  # [B, T_out], summed over pixels
  pixels_per_frame = np.prod(targets.shape[2:])
  return bce.mean() / pixels_per_frame, {'bce_per_sequence': bce.sum(axis=1).mean()}


def predict_frames(params, observed, *, model, num_future: int):
  """Probabilities [B, T_out, H, W, C] of the frames after `observed` [B, T_in, H, W, C]."""
  return jax.nn.sigmoid(model.apply(params, observed, num_future=num_future, train=False))


def eval_step(params, batch: dict, mean_frame, *, model, num_observed: int,
              num_future: int) -> dict:
  """Per-frame 'bce', 'mse', 'ssim' [B, T_out] of the model and of both baselines.

  The baselines ride along in the same step: they cost almost nothing beside
  the model and so go through exactly the same metric code. 'probs' (for the
  pictures) and 'index' (-1 marks padding rows) come back too.
  """
  observed, targets = split_sequence(batch['video'], num_observed, num_future)
  logits = model.apply(params, observed, num_future=num_future, train=False)
  return {'model': pm.per_frame_metrics(targets, logits=logits),
          **pm.baseline_metrics(observed, targets, mean_frame),  # 'last_frame', 'mean_frame'
          'probs': jax.nn.sigmoid(logits), 'index': batch['index']}


def train_stream(config, batch_size: int, process_index: int = 0,
                 process_count: int = 1) -> pipeline.TrainBatches:
  """Endless batches {'video': uint8 [B / P, T, 64, 64, 1]}, rendered on the fly.

  The shared training stream over the registry's 'train' split: sequence i
  is a pure function of (seed, i), shuffled over
  `data.moving_mnist.train_sequences` and repeated, each epoch in a new
  order; its position goes into checkpoints. Rendering is cheap, so it stays
  in one thread of this process.
  """
  data = config.data
  train_set = registry.load_split(data, data.train_split, config.seed)
  failures = pipeline.FailureCounter('train', data.max_failed_fraction)
  return pipeline.TrainBatches(
      train_set.records, clips.SourceClip(train_set.source), config.seed, batch_size=batch_size,
      failures=failures, process_index=process_index, process_count=process_count, workers=0,
      read_threads=1)


# ----------------------------------------------------------------------------
# The task.
# ----------------------------------------------------------------------------

class FramePrediction:
  """`config.task = 'frame_prediction'`: see vidjax/tasks/__init__.py for the protocol."""
  name = 'frame_prediction'
  periodic_split = 'eval'
  final_splits = ('eval', 'test', 'test_3digits')

  def __init__(self, config: ml_collections.ConfigDict):
    if config.data.dataset != 'moving_mnist':
      raise UserError(f"task 'frame_prediction' reads data.dataset='moving_mnist', "
                      f"not '{config.data.dataset}'")
    mm = config.data.moving_mnist
    if mm.num_observed < 1 or mm.num_future < 1 or mm.num_observed + mm.num_future > 20:
      raise UserError('data.moving_mnist.num_observed + num_future must be in [2, 20] (the '
                      f'sequences have 20 frames), got {mm.num_observed} + {mm.num_future}')
    self.config = config
    self.num_observed, self.num_future = mm.num_observed, mm.num_future
    self.input_shape = (mm.num_observed, FRAME_SIZE, FRAME_SIZE, 1)
    self.apply_kwargs = {'num_future': mm.num_future}
    data = config.data
    self.split_names = {'eval': data.eval_split, 'test': data.test_split,
                        'test_3digits': 'test_3digits'}
    self._sets: dict[str, registry.Split] = {}
    self._mean_frame: np.ndarray | None = None

  # Input.
  def train_iterator(self, batch_size: int):
    self._split('eval')  # Written before training, so a bad data.root fails now.
    return iter(train_stream(self.config, batch_size, jax.process_index(), jax.process_count()))

  def _split(self, name: str) -> registry.Split:
    """A fixed split, kept: the loop evaluates 'eval' often."""
    if name not in self._sets:
      self._sets[name] = registry.load_split(self.config.data, self.split_names[name],
                                             self.config.seed)
    return self._sets[name]

  def _sequences(self, name: str) -> np.ndarray:
    return self._split(name).source  # uint8 [N, T, 64, 64, 1]

  @property
  def mean_frame(self) -> np.ndarray:
    """The mean-frame baseline: float32 [64, 64, 1] in [0, 1], from training sequences."""
    if self._mean_frame is None:
      data = self.config.data
      source = registry.load_split(data, data.train_split, self.config.seed).source
      count = min(MEAN_FRAME_SEQUENCES, len(source))
      self._mean_frame = np.mean([source[i].astype(np.float32) for i in range(count)],
                                 axis=(0, 1)) / 255.0
    return self._mean_frame

  # Model.
  def meta(self, saved: dict | None = None) -> dict:
    del saved
    return {'model': json.loads(self.config.model.to_json()), 'task': self.name,
            'num_observed': self.num_observed, 'num_future': self.num_future,
            'frame_size': FRAME_SIZE}

  def build_model(self, meta: dict):
    del meta
    return build_forecaster(self.config.model)

  def summary_model(self, num_classes: int | None = None):
    del num_classes
    return build_forecaster(self.config.model)

  def on_start(self, workdir) -> None:
    del workdir

  # Update.
  def loss_fn(self, model):
    return functools.partial(loss, model=model, num_observed=self.num_observed,
                             num_future=self.num_future)

  def describe_train(self, summary: dict) -> str:
    return f"loss {summary['loss']:.4f}, BCE/sequence {summary['bce_per_sequence']:.1f}"

  # Evaluation.
  def evaluator(self, model, mesh, params_sharding=None):
    """evaluate(params, split) for split in 'eval' (val), 'test', 'test_3digits'.

    Returns the model's `metrics.frame_prediction.summarize` numbers, 'loss' (per
    pixel, the training unit), 'baselines' (the same numbers for both trivial
    predictions) and 'examples' (the first sequences with their predictions).
    """
    batch_sharding = parallel.batch_sharding(mesh)
    shardings = None
    if params_sharding is not None:
      shardings = (params_sharding, batch_sharding, parallel.replicated(mesh))
    step = jax.jit(functools.partial(eval_step, model=model, num_observed=self.num_observed,
                                     num_future=self.num_future),
                   in_shardings=shardings, out_shardings=batch_sharding)
    local_batch = parallel.per_process_batch_size(self.config.eval.batch_size, mesh)

    def evaluate(params, split: str) -> dict:
      seqs = self._sequences(split)  # [N, T, 64, 64, 1]
      # Process p evaluates sequences p, p + P, ...; every process runs as many batches.
      rows = np.arange(len(seqs))[jax.process_index()::jax.process_count()]
      num_batches = -(-(-(-len(seqs) // jax.process_count())) // local_batch)
      outputs, examples = [], None
      shown = progress.bar(num_batches, f'evaluate {split}', self.config.train.progress_bar,
                           leave=False)
      for b in range(num_batches):
        index = np.full((local_batch,), -1, np.int32)
        chunk = rows[b * local_batch:(b + 1) * local_batch]
        index[:len(chunk)] = chunk
        batch = {'video': seqs[np.maximum(index, 0)], 'index': index}
        out = step(params, parallel.global_batch(batch, mesh), self.mean_frame)
        probs = out.pop('probs')
        out = jax.tree.map(_gather, out)
        if examples is None:
          first = np.flatnonzero(out['index'] >= 0)[:NUM_EXAMPLES]
          examples = {'index': out['index'][first], 'video': seqs[out['index'][first]],
                      'predicted': _gather(probs)[first]}  # [K, T_out, 64, 64, 1]
        outputs.append(out)
        shown.update(1)  # This batch's metrics are on the host (`_gather`).
      shown.close()
      stacked = jax.tree.map(lambda *xs: np.concatenate(xs), *outputs)
      keep = stacked.pop('index') >= 0
      per_frame = jax.tree.map(lambda x: x[keep], stacked)  # each [N, T_out]
      result = pm.summarize(per_frame['model'])
      result['loss'] = result['bce_per_sequence'] / (self.num_future * FRAME_SIZE ** 2)
      result['baselines'] = {name: pm.summarize(per_frame[name])
                             for name in ('last_frame', 'mean_frame')}
      result['examples'] = examples
      return result
    return evaluate

  def eval_scalars(self, split: str, result: dict) -> dict:
    return {f'{split}/loss': result['loss'], f'{split}/bce_per_sequence': result['bce_per_sequence'],
            f'{split}/mse_per_frame': result['mse_per_frame'], f'{split}/ssim': result['ssim']}

  def describe_eval(self, result: dict) -> str:
    base = result['baselines']
    return (f"BCE/sequence {result['bce_per_sequence']:.1f} (last frame "
            f"{base['last_frame']['bce_per_sequence']:.1f}, mean frame "
            f"{base['mean_frame']['bce_per_sequence']:.1f}), MSE/frame "
            f"{result['mse_per_frame']:.1f}, SSIM {result['ssim']:.3f} "
            f"({result['num_sequences']} sequences)")

  def selection_metric(self, result: dict) -> float:
    return result['bce_per_sequence']

  # Report.
  def report(self, workdir: pathlib.Path, final: dict, *, evaluate, params, history_path):
    del evaluate, params
    return figures.write_report(workdir, final, self.config, history_path)

  # Using a trained model.
  def evaluate_rows(self, results: dict) -> list:
    return figures.summary_rows(results, self.config)

  def evaluation_fields(self, results: dict) -> dict:
    return figures.results_fields(results, self.config)

  def predict(self, paths: list[str], restore, workdir: pathlib.Path) -> list:
    """Writes the predicted frames of each readable sequence as an mp4 and a PNG strip.

    Each path is a `.npy` or a video (see `frame_prediction_files.read_observed`);
    every file is read before the model is restored. Unreadable ones are skipped
    and listed (vidjax/tasks/predict_failures.py); returns the readable ones' files.
    """
    out_dir = pathlib.Path(workdir) / 'predictions'
    skipped, inputs = failures.Skipped(paths), []
    for path in paths:
      try:
        inputs.append((path, files.read_observed(path, self.num_observed)))
      except failures.Unreadable as e:
        skipped.add(path, e.reason)
    if not inputs:
      raise skipped.nothing_read(out_dir)
    model, params, what = restore()
    params = jax.device_put(params, jax.devices()[0])
    forecast = jax.jit(functools.partial(predict_frames, model=model, num_future=self.num_future))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path, (observed, future) in inputs:
      probs = np.asarray(forecast(params, observed[None].astype(np.float32) / 255.0))[0]
      truth = None if future is None else future[None, :self.num_future]
      title = f"{figures.row_name(self.config.model)}, {what}: {pathlib.Path(path).name}"
      written.append(files.write_prediction(out_dir, path, observed, probs, truth, title))
    skipped.finish(out_dir, f'{workdir} {what}')
    return written


def _gather(x) -> np.ndarray:
  """A global array -> the whole of it, as numpy, on every process."""
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))
