"""Object detection and tracking in video: clips -> the last frame's boxes, then tracks.

The detector (vidjax/models/yolo.py, family 'yolo') reads a clip of
data.num_frames frames and finds the boxes of its LAST frame, so a video is
detected frame by frame with each frame's own past as context (temporal
'none': the single-frame YOLOX; 'mean' / 'attention': the past helps).
Training: SimOTA assignment and the YOLOX loss (detection_assign.py,
detection_loss.py) on the last frame's boxes (detection_targets.py).
Evaluation: every frame of every video, on-device NMS, COCO mAP, then
ByteTrack and HOTA / MOTA / IDF1 (detection_eval.py). Pure pieces first,
then `Detection`, which wires them to the config.

Datasets: any registry entry whose records carry 'boxes' -- 'synthetic_objects'
(embedded), 'coco', 'cocovid', 'yolo', 'mot'.
"""
from __future__ import annotations

import functools
import json
import pathlib

import jax
import ml_collections

from vidjax import parallel
from vidjax.data import pipeline, registry
from vidjax.errors import UserError
from vidjax.models import build_box_detector
from vidjax.models.yolo import anchor_points
from vidjax.tasks import detection_eval as evaluation
from vidjax.tasks import detection_report as reporting
from vidjax.tasks.classification import model_meta, normalize
from vidjax.tasks.detection_loss import yolox_loss
from vidjax.tasks.detection_nms import postprocess
from vidjax.tasks.detection_targets import BoxTargets


def default_config() -> ml_collections.ConfigDict:
  """`config.detection`: targets, loss, post-processing and the tracker."""
  return ml_collections.ConfigDict(dict(
      max_boxes=32,  # Boxes of one frame, padded with a mask; a frame with more is an error.
      box_loss='giou',  # giou | iou (YOLOX's 1 - IoU^2).
      box_weight=5.0,
      center_radius=2.5,  # SimOTA's candidate radius, in strides.
      score_threshold=0.01,  # obj * cls below this is no detection.
      nms_iou_threshold=0.65,
      pre_nms_top_k=1000,
      max_detections=100,  # Per frame: COCO's AR100.
      # The classes COCO mAP scores: 'box' each box's best class (YOLOX's); 'multi' every
      # (box, class) pair above score_threshold (Ultralytics' validation NMS); 'track' each
      # tracked box its track's class, voted over the whole video (detection_vote.py; offline).
      # With 'multi' or 'track', results.json keeps the 'box' mAP beside it.
      label_mode='box',
      # ByteTrack (detection_tracker.py), MOT17's settings.
      track_thresh=0.5,
      track_low_thresh=0.1,
      track_new_thresh=0.6,
      track_match_thresh=0.8,
      track_buffer=30,  # Frames a lost track is kept.
      # False is ByteTrack's own: a track follows boxes of any class, so a label that flickers
      # (a handwritten 2 read as a 7 for a frame) does not break it; True matches within a class.
      track_class_aware=False,
  ))


# ----------------------------------------------------------------------------
# Pure pieces.
# ----------------------------------------------------------------------------

def loss(params, batch: dict, dropout_key, *, model, centers, strides, mean, std,
         box_loss: str, box_weight: float, center_radius: float):
  """(YOLOX loss of the clips' last frames, its parts); pure."""
  del dropout_key  # The detector has no dropout.
  outputs = model.apply(params, normalize(batch['video'], mean, std), train=True)
  total, parts = yolox_loss(outputs, centers, strides, batch['boxes'], batch['box_labels'],
                            batch['box_mask'], box_loss=box_loss, box_weight=box_weight,
                            center_radius=center_radius)
  return total, parts


def eval_step(params, batch: dict, *, model, centers, strides, mean, std, nms: dict,
              multi_label: bool = False):
  """Each clip's last frame -> {'boxes' [B, K, 4] in the clip's pixels, 'scores', 'labels',
  'valid' [B, K]}, best first, one label per box; with `multi_label` also the same four
  under 'multi_label_*', every (box, class) pair a candidate (for COCO mAP)."""
  outputs = model.apply(params, normalize(batch['video'], mean, std), train=False)
  names = ('boxes', 'scores', 'labels', 'valid')
  result = dict(zip(names, postprocess(outputs, centers, strides, **nms)))
  if multi_label:
    multi = postprocess(outputs, centers, strides, multi_label=True, **nms)
    result.update({f'multi_label_{k}': v for k, v in zip(names, multi)})
  return result


# ----------------------------------------------------------------------------
# The task.
# ----------------------------------------------------------------------------

class Detection:
  """`config.task = 'detection'`: see vidjax/tasks/__init__.py for the protocol."""
  name = 'detection'
  periodic_split = 'eval'
  final_splits = ('eval', 'test')
  apply_kwargs: dict = {}

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    data = config.data
    if data.train_crop != 'none':
      raise UserError(f"task 'detection' scales whole frames (data.train_crop='none'); "
                      f"got '{data.train_crop}', whose crop the boxes would not follow")
    temporal = config.model.yolo.temporal
    if temporal != 'none' and data.num_frames < 2:
      raise UserError(f"model.yolo.temporal='{temporal}' aggregates past frames, but "
                      f"data.num_frames={data.num_frames}: set --config.data.num_frames=4")
    if config.detection.label_mode not in evaluation.LABEL_MODES:
      raise UserError(f"detection.label_mode must be one of {', '.join(evaluation.LABEL_MODES)}"
                      f", got '{config.detection.label_mode}'")
    self.input_shape = (data.num_frames, data.height, data.width, 3)
    self.split_names = {'eval': data.eval_split, 'test': data.test_split}
    self.class_names: list[str] | None = None
    self.train_failures: pipeline.FailureCounter | None = None
    self._sets: dict[str, registry.Split] = {}

  def _split(self, name: str) -> registry.Split:
    if name not in self._sets:
      self._sets[name] = registry.load_split(self.config.data, self.split_names[name],
                                             self.config.seed)
    return self._sets[name]

  def anchors(self):
    """(centers [A, 2], strides [A]) of the model's input size."""
    yolo = self.config.model.yolo
    return anchor_points(self.config.data.height, self.config.data.width,
                         tuple(yolo.strides), yolo.input_scale)

  def _normalisation(self) -> dict:
    return {'mean': tuple(self.config.data.mean), 'std': tuple(self.config.data.std)}

  # Input.
  def train_iterator(self, batch_size: int):
    data, seed = self.config.data, self.config.seed
    train_set = registry.load_split(data, data.train_split, seed)
    self.class_names = train_set.class_names
    self._split('eval')  # A missing eval split fails now, not after training.
    self.train_failures = pipeline.FailureCounter('train', data.max_failed_fraction)
    targets = BoxTargets(self.config.detection.max_boxes, data.height, data.width)
    return iter(pipeline.train_dataset(
        train_set.records, data, batch_size=batch_size, seed=seed, failures=self.train_failures,
        targets=targets, process_index=jax.process_index(), process_count=jax.process_count()))

  # Model.
  def meta(self, saved: dict | None = None) -> dict:
    class_names = saved['class_names'] if saved is not None else self.class_names
    return model_meta(self.config, class_names)

  def build_model(self, meta: dict):
    self.class_names = list(meta['class_names'])
    return build_box_detector(self.config.model, len(self.class_names))

  def summary_model(self, num_classes: int | None = None):
    num_classes = registry.published_num_classes(self.config.data.dataset, num_classes)
    return build_box_detector(self.config.model, num_classes)

  def on_start(self, workdir: pathlib.Path) -> None:
    (workdir / 'classes.json').write_text(json.dumps(self.class_names))

  # Update.
  def loss_fn(self, model):
    det = self.config.detection
    centers, strides = self.anchors()
    return functools.partial(loss, model=model, centers=centers, strides=strides,
                             box_loss=det.box_loss, box_weight=det.box_weight,
                             center_radius=det.center_radius, **self._normalisation())

  def describe_train(self, summary: dict) -> str:
    return (f"loss {summary['loss']:.4f} (box {summary['box']:.3f}, obj {summary['obj']:.3f}, "
            f"cls {summary['cls']:.3f}), {summary['num_fg']:.0f} foreground anchors, "
            f"IoU {summary['fg_iou']:.3f}")

  # Evaluation.
  def predict_step(self, model):
    """eval_step bound to the model, the anchors and the post-processing settings."""
    det = self.config.detection
    centers, strides = self.anchors()
    nms = dict(iou_threshold=det.nms_iou_threshold, max_detections=det.max_detections,
               pre_nms_top_k=det.pre_nms_top_k, score_threshold=det.score_threshold)
    return functools.partial(eval_step, model=model, centers=centers, strides=strides, nms=nms,
                             multi_label=det.label_mode == 'multi', **self._normalisation())

  def evaluator(self, model, mesh, params_sharding=None):
    """evaluate(params, split) for split in 'eval', 'test': every frame of every video."""
    batch_sharding = parallel.batch_sharding(mesh)
    predict_fn = jax.jit(self.predict_step(model),
                         in_shardings=None if params_sharding is None else (params_sharding,
                                                                            batch_sharding),
                         out_shardings=batch_sharding)

    def evaluate(params, split: str) -> dict:
      try:
        return evaluation.evaluate_split(predict_fn, params, self._split(split).records,
                                         self.class_names, self.config, mesh, split=split)
      except ValueError as e:
        raise UserError(f"split '{self.split_names[split]}': {e}") from None
    return evaluate

  def eval_scalars(self, split: str, result: dict) -> dict:
    return {f'{split}/{k}': result[k] for k in reporting.SCALARS if result.get(k) is not None}

  def describe_eval(self, result: dict) -> str:
    return reporting.describe(result)

  def selection_metric(self, result: dict) -> float:
    return 1.0 - (result['mAP'] or 0.0)

  # Report.
  def report(self, workdir: pathlib.Path, final: dict, *, evaluate, params, history_path):
    del evaluate, params
    return reporting.write_report(workdir, final, self, history_path)

  # Using a trained model.
  def evaluate_rows(self, results: dict) -> list:
    return [(f'{self.split_names[s]} boxes / tracks', reporting.describe(r))
            for s, r in results.items()]

  def evaluation_fields(self, results: dict) -> dict:
    return {s: {'split': self.split_names[s], **reporting.split_fields(r)}
            for s, r in results.items()}

  def predict(self, paths: list[str], restore, workdir: pathlib.Path) -> list:
    return reporting.predict(self, paths, restore, pathlib.Path(workdir))
