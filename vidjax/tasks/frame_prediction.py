"""Future-frame prediction on Moving MNIST (Shi et al. 2015, Table 1).

A model sees `num_observed` frames (10) and predicts the next `num_future`
(10), one Bernoulli logit per pixel. Pure pieces first (loss, evaluation
step, prediction), then the data (an on-the-fly training stream, fixed
val / test / 3-digit test files), then `FramePrediction`, which wires them
to the config for the loop in train.py.

Units, as in vidjax/prediction_metrics.py: training minimises the per-pixel
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

import grain
import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from vidjax import parallel
from vidjax import prediction_metrics as pm
from vidjax.data import moving_mnist, sources
from vidjax.errors import UserError
from vidjax.models import build_forecaster
from vidjax.tasks import frame_prediction_report as figures

log = logging.getLogger(__name__)

FRAME_SIZE = 64  # Moving MNIST's frames are 64x64x1, as in the public file.
# Training sequences the mean-frame baseline averages: its pixels then vary
# by well under 1% between two such draws.
MEAN_FRAME_SEQUENCES = 1000
# Sequences of each evaluated split kept, with their predictions, for pictures.
NUM_EXAMPLES = 4
SPLITS = {'eval': 'val', 'test': 'test', 'test_3digits': 'test_3digits'}  # name -> file key


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


# ----------------------------------------------------------------------------
# Data.
# ----------------------------------------------------------------------------

def data_root(data) -> pathlib.Path:
  return pathlib.Path(data.root).expanduser() if data.root else sources.cache_dir() / 'moving_mnist'


def fixed_set_paths(data) -> dict[str, str]:
  """The val / test / 3-digit test files (generated once, then cached).

  With `moving_mnist.public_test_file` set, the 2-digit test split is that
  file (e.g. the public `mnist_test_seq.npy`), checked before training starts.
  """
  mm = data.moving_mnist
  paths = moving_mnist.ensure_moving_mnist(
      str(data_root(data)), num_val=mm.num_val, num_test=mm.num_test, seed=mm.fixed_sets_seed,
      train_pool_size=mm.train_pool_size, speed_range=tuple(mm.speed_range))
  if mm.public_test_file:
    try:  # Shape only: the evaluation reads the frames when it needs them.
      num_frames = moving_mnist.open_public_npy(mm.public_test_file).shape[0]
    except (OSError, ValueError) as e:
      raise UserError(f'data.moving_mnist.public_test_file: {e}') from None
    if num_frames < mm.num_observed + mm.num_future:
      raise UserError(f'data.moving_mnist.public_test_file {mm.public_test_file} has '
                      f'{num_frames} frames per sequence; the task needs '
                      f'{mm.num_observed + mm.num_future}')
    paths['test'] = mm.public_test_file
  return paths


def train_source(config) -> moving_mnist.MovingMNISTSource:
  mm = config.data.moving_mnist
  return moving_mnist.MovingMNISTSource(
      mm.train_sequences, split='train', seed=config.seed,
      num_frames=mm.num_observed + mm.num_future, speed_range=tuple(mm.speed_range),
      train_pool_size=mm.train_pool_size)


class ProcessRows:
  """A grain map: a global batch [B, ...] -> this process's rows [B / P, ...].

  Every process renders the whole global batch (a 16-sequence batch takes a
  few ms) and keeps its block of rows, the block `global_batch` places on
  its devices, so the global batches do not depend on the process count.
  """

  def __init__(self, process_index: int, process_count: int):
    self.process_index, self.process_count = process_index, process_count

  def __call__(self, video: np.ndarray) -> dict:
    rows = len(video) // self.process_count
    return {'video': video[self.process_index * rows:(self.process_index + 1) * rows]}


def train_stream(config, batch_size: int, process_index: int = 0,
                 process_count: int = 1) -> grain.IterDataset:
  """Endless batches {'video': uint8 [B / P, T, 64, 64, 1]}, rendered on the fly.

  Sequence i of the stream is a pure function of (seed, i), shuffled over
  `data.moving_mnist.train_sequences` and repeated, each epoch in a new
  order; the iterator's state (batches read) goes into checkpoints.
  """
  if batch_size % process_count:
    raise UserError(f'batch size {batch_size} is not divisible by the {process_count} processes')
  stream = grain.MapDataset.source(train_source(config)).shuffle(seed=config.seed).repeat(None)
  batches = stream.batch(batch_size, drop_remainder=True).map(ProcessRows(process_index,
                                                                          process_count))
  # One reading thread: rendering is cheap, and the cores belong to the step.
  return batches.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=4))


def training_mean_frame(config) -> np.ndarray:
  """The mean-frame baseline: float32 [64, 64, 1] in [0, 1], from training sequences."""
  source = train_source(config)
  count = min(MEAN_FRAME_SEQUENCES, len(source))
  return np.mean([source[i].astype(np.float32) for i in range(count)], axis=(0, 1)) / 255.0


def read_observed(path: str, num_observed: int) -> tuple[np.ndarray, np.ndarray | None]:
  """(observed uint8 [T_in, 64, 64, 1], ground-truth future or None) from a file.

  `.npy`: [T, 64, 64] (or [T, 64, 64, 1]), the first T_in frames observed and
  the rest, if any, the truth; or the public layout [T, N, 64, 64], of which
  sequence 0. uint8, or floats in [0, 1]. Anything else is read as a video
  (an mp4 of T_in frames or more); colour is averaged to grey and frames
  are scaled to 64x64.
  """
  p = pathlib.Path(path)
  if not p.is_file():
    raise UserError(f"--video '{path}' does not exist")
  if p.suffix == '.npy':
    try:
      frames = np.load(p)
    except ValueError as e:
      raise UserError(f"--video '{path}' is not a readable .npy: {e}") from None
    if frames.ndim == 4 and frames.shape[-1] != 1:  # Public layout [T, N, H, W].
      frames = frames[:, 0]
    if frames.ndim == 4:
      frames = frames[..., 0]
    if frames.ndim != 3 or frames.shape[1:] != (FRAME_SIZE, FRAME_SIZE):
      raise UserError(f"--video '{path}': expected [T, 64, 64] or the public layout "
                      f"[T, N, 64, 64], got {list(np.shape(frames))}")
    if frames.dtype != np.uint8:
      if frames.min() < 0 or frames.max() > 1:
        raise UserError(f"--video '{path}': {frames.dtype} frames must be in [0, 1]")
      frames = np.rint(frames * 255).astype(np.uint8)
  else:
    from vidjax.data import decode, transforms
    try:
      rgb = decode.read_frames(str(p))  # [T, H, W, 3]
    except decode.DecodeError as e:
      raise UserError(f"--video '{path}' cannot be decoded: {e.reason}") from None
    if rgb.shape[1:3] != (FRAME_SIZE, FRAME_SIZE):
      rgb = transforms.resize(rgb, FRAME_SIZE, FRAME_SIZE)
    frames = np.rint(rgb.astype(np.float32).mean(axis=-1)).astype(np.uint8)
  if len(frames) < num_observed:
    raise UserError(f"--video '{path}' has {len(frames)} frames; the model observes {num_observed}")
  frames = frames[..., None]  # [T, 64, 64, 1]
  future = frames[num_observed:] if len(frames) > num_observed else None
  return frames[:num_observed], future


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
    self._paths: dict[str, str] | None = None
    self._sets: dict[str, np.ndarray] = {}
    self._mean_frame: np.ndarray | None = None

  # Input.
  def train_iterator(self, batch_size: int):
    self._fixed_paths()  # Written before training, so a bad data.root fails now.
    return iter(train_stream(self.config, batch_size, jax.process_index(), jax.process_count()))

  def _fixed_paths(self) -> dict[str, str]:
    if self._paths is None:
      self._paths = fixed_set_paths(self.config.data)
    return self._paths

  def _sequences(self, split: str) -> np.ndarray:
    """uint8 [N, T, 64, 64, 1] of a fixed split (kept: the loop evaluates 'eval' often)."""
    if split not in self._sets:
      seqs = moving_mnist.load_public_npy(self._fixed_paths()[SPLITS[split]])
      self._sets[split] = seqs[:, :self.num_observed + self.num_future]
    return self._sets[split]

  @property
  def mean_frame(self) -> np.ndarray:
    if self._mean_frame is None:
      self._mean_frame = training_mean_frame(self.config)
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

    Returns the model's `prediction_metrics.summarize` numbers, 'loss' (per
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

  def evaluate_rows(self, results: dict) -> list:
    return figures.summary_rows(results, self.config)


def _gather(x) -> np.ndarray:
  """A global array -> the whole of it, as numpy, on every process."""
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))
