"""Box detection mAP, scored by pycocotools, the official COCO evaluation.

Published detection tables all come from pycocotools' COCOeval, so we run it
rather than reimplement it (its 101-point interpolated precision, its area
ranges, its greedy matching and crowd rules). This module only converts:

- `coco_ground_truth` / `coco_results` write plain numpy inputs (per image:
  boxes [N, 4] as (x0, y0, x1, y1) in pixels, class indices, scores) as COCO
  JSON: boxes become [x, y, w, h], an image's id is its position in the list
  and a category's id is its class index.
- `coco_eval` scores a ground-truth dict and a results list (or paths to the
  JSON files, so official-format files are scored the same way) and returns
  pycocotools' numbers as a JSON-able dict, with its printing silenced.

Where pycocotools reports -1 (a quantity with no ground truth: a class without
instances, or no small objects for APs), we report None, never 0. Empty
results score 0 wherever ground truth exists (pycocotools' loadRes fails on an
empty list, so an empty detection set is built directly).
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import pathlib
from typing import Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

# (our key, index into COCOeval.stats) in the order summarize() prints them.
_STATS = (('mAP', 0), ('AP50', 1), ('AP75', 2), ('APs', 3), ('APm', 4), ('APl', 5),
          ('AR1', 6), ('AR10', 7), ('AR100', 8), ('ARs', 9), ('ARm', 10), ('ARl', 11))


def xyxy_to_xywh(boxes) -> np.ndarray:
  """Corners (x0, y0, x1, y1) [N, 4] -> COCO's (x, y, width, height) [N, 4]."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def xywh_to_xyxy(boxes) -> np.ndarray:
  """COCO's (x, y, width, height) [N, 4] -> corners (x0, y0, x1, y1) [N, 4]."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def _labels(image: dict, num_boxes: int, index: int, num_classes: int | None) -> np.ndarray:
  labels = np.asarray(image['labels']).reshape(-1)
  if len(labels) != num_boxes:
    raise ValueError(f'image {index} has {num_boxes} boxes but {len(labels)} labels')
  if not np.issubdtype(labels.dtype, np.integer) and len(labels):
    raise ValueError(f'image {index} has labels {labels.tolist()}; labels are class indices')
  if num_classes is not None and len(labels) and not (
      labels.min() >= 0 and labels.max() < num_classes):
    raise ValueError(f'image {index} has labels {labels.tolist()}; '
                     f'labels are class indices in [0, {num_classes})')
  return labels.astype(np.int64)


def coco_ground_truth(images: Sequence[dict], class_names: Sequence[str]) -> dict:
  """Per image {'boxes': [N, 4] xyxy, 'labels': [N], optional 'iscrowd': [N]} -> COCO dict.

  Annotation ids start at 1: COCOeval records a match by the matched id, so an
  id of 0 would read as no match.
  """
  names = list(class_names)
  if len(set(names)) != len(names):
    raise ValueError(f'class names must be unique: {names}')
  annotations = []
  for index, image in enumerate(images):
    boxes = xyxy_to_xywh(image['boxes'])
    labels = _labels(image, len(boxes), index, len(names))
    crowd = np.asarray(image.get('iscrowd', np.zeros(len(boxes))), np.int64).reshape(-1)
    for box, label, is_crowd in zip(boxes, labels, crowd):
      annotations.append({
          'id': len(annotations) + 1, 'image_id': index, 'category_id': int(label),
          'bbox': [float(x) for x in box], 'area': float(box[2] * box[3]),
          'iscrowd': int(is_crowd)})
  return {
      'images': [{'id': index} for index in range(len(images))],
      'annotations': annotations,
      'categories': [{'id': k, 'name': name} for k, name in enumerate(names)],
  }


def coco_results(predictions: Sequence[dict]) -> list[dict]:
  """Per image {'boxes': [N, 4] xyxy, 'labels': [N], 'scores': [N]} -> COCO results list."""
  results = []
  for index, image in enumerate(predictions):
    boxes = xyxy_to_xywh(image['boxes'])
    labels = _labels(image, len(boxes), index, None)
    scores = np.asarray(image['scores'], np.float64).reshape(-1)
    if len(scores) != len(boxes):
      raise ValueError(f'image {index} has {len(boxes)} boxes but {len(scores)} scores')
    for box, label, score in zip(boxes, labels, scores):
      results.append({'image_id': index, 'category_id': int(label),
                      'bbox': [float(x) for x in box], 'score': float(score)})
  return results


def _load(path_or_data):
  if isinstance(path_or_data, (str, pathlib.Path)):
    return json.loads(pathlib.Path(path_or_data).read_text())
  return copy.deepcopy(path_or_data)  # pycocotools writes ids and areas into what it is given.


def _coco(dataset: dict) -> COCO:
  coco = COCO()
  coco.dataset = dataset
  coco.createIndex()
  return coco


def _check_results(results, gt: dict) -> None:
  if not isinstance(results, list):
    raise ValueError('COCO results are a list of {image_id, category_id, bbox, score} dicts')
  images = {image['id'] for image in gt['images']}
  categories = {category['id'] for category in gt['categories']}
  for result in results:
    if result['image_id'] not in images:
      raise ValueError(f"a result has image_id {result['image_id']!r}, "
                       'which is not in the ground truth')
    if result['category_id'] not in categories:
      raise ValueError(f"a result has category_id {result['category_id']!r}; "
                       f'the ground truth has {sorted(categories)}')


def _defined(value) -> float | None:
  """pycocotools' -1 (no ground truth to score against) -> None."""
  return None if value <= -1 else float(value)


def coco_eval(ground_truth, results) -> dict:
  """COCO bbox AP/AR (fractions) and per-class AP@[.5:.95], keyed by category name.

  ground_truth: a COCO dict or a path to one; results: a COCO results list or a
  path to one. mAP is AP@[.5:.95] (COCO's "AP"), AR100 is AR@[.5:.95] with up to
  100 detections per image. Undefined numbers (pycocotools' -1) are None.
  """
  gt_data, results = _load(ground_truth), _load(results)
  _check_results(results, gt_data)
  with contextlib.redirect_stdout(io.StringIO()):
    gt = _coco(gt_data)
    if results:
      dt = gt.loadRes(results)
    else:
      dt = _coco({'images': gt_data['images'], 'categories': gt_data['categories'],
                  'annotations': []})
    evaluator = COCOeval(gt, dt, iouType='bbox')
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()

  out = {key: _defined(evaluator.stats[i]) for key, i in _STATS}
  precision = evaluator.eval['precision']  # [T, R, K, A, M]: IoU, recall, class, area, maxDets
  mean = lambda p: float(np.mean(p[p > -1])) if np.any(p > -1) else None
  per_class, per_class_50, counts = {}, {}, {}
  for k, category_id in enumerate(evaluator.params.catIds):
    name = gt.cats[category_id]['name']
    per_class[name] = mean(precision[:, :, k, 0, -1])  # All areas, 100 detections.
    per_class_50[name] = mean(precision[0, :, k, 0, -1])  # IoU 0.5.
    counts[name] = len(gt.getAnnIds(catIds=[category_id], iscrowd=False))
  out['per_class_AP'] = per_class
  out['per_class_AP50'] = per_class_50
  out['num_ground_truth'] = counts
  return out


def class_agnostic(ground_truth, results) -> tuple[dict, list]:
  """The same ground truth and results with every box in one class, 'object'.

  Scored by `coco_eval`, it separates finding and placing boxes from naming
  them: the gap to the class-aware AP is what wrong labels cost.
  """
  gt, results = _load(ground_truth), _load(results)
  for row in gt['annotations'] + results:
    row['category_id'] = 0
  gt['categories'] = [{'id': 0, 'name': 'object'}]
  return gt, results
