"""Temporal action localization and segmentation of untrimmed video, on snippet features.

The detector (vidjax/models/temporal_detector.py) reads a video's snippet
features -- made by any trained vidjax classifier with `--mode extract`, or
published ones such as ActionFormer's I3D features of THUMOS14 -- and finds
each action instance (start, end, class, score) and the class of every
frame. Pure pieces first (focal loss, 1-D DIoU loss, the evaluation step),
then `Localization`, which wires them to the config for the loop in
train.py and for `--mode evaluate` and `--mode predict`.

Datasets: any registry entry whose records carry 'segments' (seconds) and
'labels' -- 'synthetic_untrimmed' (embedded), 'thumos14', 'activitynet',
'mstcn'. Features: `localization.features_dir/<video_id>.npy`, timed by its
features.json (written by --mode extract) or by localization.feature_stride,
feature_window and feature_fps.
"""
from __future__ import annotations

import functools
import json
import logging
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import optax

from vidjax import parallel
from vidjax.data import pipeline, registry
from vidjax.errors import UserError
from vidjax.models import build_detector
from vidjax.tasks import localization_eval as evaluation
from vidjax.tasks import localization_report as reporting
from vidjax.tasks import localization_videos as videos_lib
from vidjax.tasks.localization_targets import AssignmentSpec, FeatureWindow

log = logging.getLogger(__name__)


def default_config() -> ml_collections.ConfigDict:
  """`config.localization`: features, label assignment, loss, post-processing, metrics."""
  return ml_collections.ConfigDict(dict(
      features_dir='',  # <video_id>.npy snippet features; '' = data root's features/.
      feature_stride=4,  # Frames between snippets (when features.json does not say).
      feature_window=16,  # Frames a snippet covers.
      feature_fps=0.0,  # 0 = each video's fps from its annotation (or features.json).
      feature_layout='TC',  # TC (ActionFormer's I3D) | CT (MS-TCN's) | auto (needs feature_dim).
      feature_dim=0,  # Channels, to tell TC from CT in 'auto' when the shape is ambiguous.
      max_seq_len=256,  # Training window, in snippets; evaluation pads to its multiples.
      regression_ranges=((0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)),
      center_radius=1.5,  # Centre sampling, in strides of the point's level.
      focal_alpha=0.25,
      focal_gamma=2.0,
      offset_loss_weight=1.0,
      segment_loss_weight=1.0,
      pre_nms_threshold=0.001,
      pre_nms_topk=2000,
      min_duration_s=0.05,
      nms_method='soft',  # soft | hard | none
      nms_iou_threshold=0.1,
      nms_sigma=0.5,
      min_score=0.001,
      voting_threshold=0.7,  # Score voting of boundaries; 0 = off.
      max_segments_per_video=200,
      tious=(0.3, 0.4, 0.5, 0.6, 0.7),  # THUMOS14; ActivityNet uses 0.5:0.05:0.95.
      # Frame labels for the segmentation metrics: detections | head (the frame-wise head).
      segmentation_from='detections',
      segmentation_threshold=0.4,  # Detections scoring less leave their frames to background.
      backbone_config='',  # The classifier that made the features: --mode predict on a video.
      backbone_workdir='',
  ))


# ----------------------------------------------------------------------------
# Pure pieces.
# ----------------------------------------------------------------------------

def focal_loss(logits, targets, alpha: float, gamma: float):
  """Sigmoid focal loss (Lin et al. 2017), element-wise: easy negatives fade out."""
  p = jax.nn.sigmoid(logits)
  ce = optax.sigmoid_binary_cross_entropy(logits, targets)
  p_t = p * targets + (1 - p) * (1 - targets)
  alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
  return alpha_t * ce * (1 - p_t) ** gamma


def diou_loss_1d(pred, target):
  """1 - IoU + (centre distance / enclosing length)^2 of (to start, to end) offsets [..., 2]."""
  inter = jnp.minimum(pred[..., 0], target[..., 0]) + jnp.minimum(pred[..., 1], target[..., 1])
  union = pred.sum(-1) + target.sum(-1) - inter
  iou = inter / jnp.maximum(union, 1e-6)
  enclosing = jnp.maximum(pred[..., 0], target[..., 0]) + jnp.maximum(pred[..., 1], target[..., 1])
  centre = ((pred[..., 1] - pred[..., 0]) - (target[..., 1] - target[..., 0])) / 2
  return 1 - iou + (centre / jnp.maximum(enclosing, 1e-6)) ** 2


def loss(params, batch: dict, dropout_key, *, model, alpha: float, gamma: float,
         offset_weight: float, segment_weight: float):
  """(focal + DIoU + segmentation cross-entropy, parts); pure.

  Class and offset losses are normalised by the batch's positive points, as
  ActionFormer's are; the segmentation loss is a mean over valid snippets.
  """
  out = model.apply(params, batch['features'], batch['mask'], train=True,
                    rngs={'dropout': dropout_key})
  valid = out['point_mask'].astype(jnp.float32)  # [B, P]
  positive = batch['positive'].astype(jnp.float32)
  num_positive = jnp.maximum(positive.sum(), 1.0)
  class_loss = (focal_loss(out['class_logits'], batch['class_targets'], alpha, gamma).sum(-1)
                * valid).sum() / num_positive
  offset_loss = (diou_loss_1d(out['offsets'], batch['offset_targets']) * positive).sum() / num_positive
  steps = batch['mask'].astype(jnp.float32)  # [B, T]
  segment_ce = optax.softmax_cross_entropy_with_integer_labels(out['segment_logits'],
                                                               batch['segment_labels'])
  segment_loss = (segment_ce * steps).sum() / jnp.maximum(steps.sum(), 1.0)
  correct = (out['segment_logits'].argmax(-1) == batch['segment_labels']) * steps
  total = class_loss + offset_weight * offset_loss + segment_weight * segment_loss
  return total, {'class_loss': class_loss, 'offset_loss': offset_loss,
                 'segment_loss': segment_loss,
                 'segment_accuracy': correct.sum() / jnp.maximum(steps.sum(), 1.0)}


def eval_step(params, batch: dict, *, model):
  """Class scores [B, P, K], offsets [B, P, 2] and segment probabilities [B, T, K + 1]."""
  out = model.apply(params, batch['features'], batch['mask'], train=False)
  return {'scores': jax.nn.sigmoid(out['class_logits']), 'offsets': out['offsets'],
          'segment_probs': jax.nn.softmax(out['segment_logits'], axis=-1)}


# ----------------------------------------------------------------------------
# The task.
# ----------------------------------------------------------------------------

class Localization:
  """`config.task = 'localization'`: see vidjax/tasks/__init__.py for the protocol."""
  name = 'localization'
  periodic_split = 'eval'
  final_splits = ('eval', 'test')
  apply_kwargs: dict = {}

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    loc = config.localization
    levels = config.model.temporal_detector.levels
    if loc.max_seq_len % 2 ** (levels - 1):
      raise UserError(f'localization.max_seq_len {loc.max_seq_len} must be a multiple of '
                      f'2**(levels - 1) = {2 ** (levels - 1)}')
    if loc.segmentation_from not in ('detections', 'head'):
      raise UserError(f"localization.segmentation_from must be 'detections' or 'head', "
                      f"got '{loc.segmentation_from}'")
    if len(loc.regression_ranges) != levels:
      raise UserError(f'localization.regression_ranges has {len(loc.regression_ranges)} ranges '
                      f'for {levels} pyramid levels; give one per level')
    data = config.data
    self.split_names = {'train': data.train_split, 'eval': data.eval_split, 'test': data.test_split}
    self.class_names: list[str] | None = None
    self.feature_dim: int | None = None
    self._sets: dict[str, videos_lib.SplitVideos] = {}
    self.train_failures: pipeline.FailureCounter | None = None

  @property
  def input_shape(self) -> tuple[int, ...]:
    return (self.config.localization.max_seq_len, self.feature_dim or 1)

  def _split(self, name: str) -> videos_lib.SplitVideos:
    if name not in self._sets:
      self._sets[name] = videos_lib.load(self.config, self.split_names[name], self.class_names)
      if self.class_names is None:
        self.class_names = self._sets[name].class_names
    return self._sets[name]

  def _assignment(self) -> AssignmentSpec:
    loc = self.config.localization
    return AssignmentSpec(num_steps=loc.max_seq_len, levels=self.config.model.temporal_detector.levels,
                          num_classes=len(self.class_names),
                          regression_ranges=tuple(map(tuple, loc.regression_ranges)),
                          radius=loc.center_radius)

  # Input.
  def train_iterator(self, batch_size: int):
    train = self._split('train')
    self.feature_dim = train.feature_dim
    self._split('eval')  # A missing eval split fails now, not after training.
    self.train_failures = pipeline.FailureCounter('train', self.config.data.max_failed_fraction)
    window = FeatureWindow(self._assignment(), train.layout, train.feature_dim)
    return iter(pipeline.TrainBatches(
        train.training_records(), window, self.config.seed, batch_size=batch_size,
        failures=self.train_failures, process_index=jax.process_index(),
        process_count=jax.process_count(), workers=0, read_threads=1))

  # Model.
  def meta(self, saved: dict | None = None) -> dict:
    if saved is not None:
      class_names, feature_dim = saved['class_names'], saved['feature_dim']
    else:
      class_names, feature_dim = self.class_names, self.feature_dim
    return {'model': json.loads(self.config.model.to_json()), 'class_names': list(class_names),
            'feature_dim': int(feature_dim), 'max_seq_len': self.config.localization.max_seq_len}

  def build_model(self, meta: dict):
    self.class_names = list(meta['class_names'])
    self.feature_dim = int(meta['feature_dim'])
    return build_detector(self.config.model, len(self.class_names))

  def summary_model(self, num_classes: int | None = None):
    num_classes = registry.published_num_classes(self.config.data.dataset, num_classes)
    self.feature_dim = self.feature_dim or self.config.localization.feature_dim or 2048
    return build_detector(self.config.model, num_classes)

  def on_start(self, workdir: pathlib.Path) -> None:
    (workdir / 'classes.json').write_text(json.dumps(self.class_names))

  # Update.
  def loss_fn(self, model):
    loc = self.config.localization
    return functools.partial(loss, model=model, alpha=loc.focal_alpha, gamma=loc.focal_gamma,
                             offset_weight=loc.offset_loss_weight,
                             segment_weight=loc.segment_loss_weight)

  def describe_train(self, summary: dict) -> str:
    return (f"loss {summary['loss']:.4f} (class {summary['class_loss']:.3f}, offsets "
            f"{summary['offset_loss']:.3f}, frames {summary['segment_loss']:.3f})")

  # Evaluation.
  def evaluator(self, model, mesh, params_sharding=None):
    """evaluate(params, split) for split in 'eval', 'test'."""
    batch_sharding = parallel.batch_sharding(mesh)
    predict_fn = jax.jit(functools.partial(eval_step, model=model),
                         in_shardings=None if params_sharding is None else (params_sharding,
                                                                            batch_sharding),
                         out_shardings=batch_sharding)

    def evaluate(params, split: str) -> dict:
      found = self._split(split)
      return evaluation.evaluate_videos(
          predict_fn, params, found.videos, self.class_names, config=self.config, mesh=mesh,
          feature_layout=found.layout, feature_dim=found.feature_dim, failed=len(found.failed),
          split=split)
    return evaluate

  def eval_scalars(self, split: str, result: dict) -> dict:
    # TensorBoard tags: '@' is not allowed, so map_0.5 and f1_50.
    scalars = {f'{split}/average_map': result['average_map']}
    scalars.update({f'{split}/map_{t:g}': m for t, m in zip(result['tious'], result['map'])})
    if 'segmentation' in result:
      scalars.update({f"{split}/{k.replace('@', '_')}": v
                      for k, v in result['segmentation'].items()})
    return scalars

  def describe_eval(self, result: dict) -> str:
    return reporting.describe(result)

  def selection_metric(self, result: dict) -> float:
    return -result['average_map']

  # Report.
  def report(self, workdir: pathlib.Path, final: dict, *, evaluate, params, history_path):
    del evaluate, params
    return reporting.write_report(workdir, final, self, history_path)

  # Using a trained model.
  def evaluate_rows(self, results: dict) -> list:
    return reporting.evaluate_rows(results, self.split_names)

  def evaluation_fields(self, results: dict) -> dict:
    return reporting.evaluation_fields(results, self.split_names)

  def predict(self, paths: list[str], restore, workdir: pathlib.Path) -> list:
    return reporting.predict(self, paths, restore, pathlib.Path(workdir))
