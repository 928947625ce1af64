"""Temporal action localization mAP, scored as ActivityNet's official evaluation does.

Numbers here must be comparable with published THUMOS14 / ActivityNet tables,
which all come from ActivityNet's `Evaluation/eval_detection.py`, so this
module reproduces its rules rather than inventing cleaner ones:

- Per class, predictions are visited by score, highest first (ties: earlier
  prediction first; the official order of tied scores depends on numpy's sort).
- At each tIoU threshold a prediction is a true positive when its video has a
  ground truth instance of that class, not yet matched at that threshold, with
  tIoU >= the threshold; it takes the one with the highest tIoU (ties: the
  later instance in the ground-truth list, which is what the official reversed
  argsort gives wherever numpy sorts ties stably; newer numpy's SIMD argsort
  leaves that order undefined). Anything else is a false positive, including
  duplicates and predictions in videos without ground truth of the class.
- recall = cum tp / #ground truth, precision = cum tp / #predictions so far,
  and AP is the all-point interpolated area (VOC 2011 onwards).
- A class with no predictions has AP 0. mAP averages the classes of
  `class_names` that have ground truth; a class with none (the official code
  never sees such a class, and its recall would divide by zero) is left out
  of the mean and reported as None.
- Zero-length segments have tIoU 0 (the official code yields NaN).

`activitynet_results` / `read_activitynet_results` convert to and from the
official results JSON, so our outputs can be scored by the official tools and
official-format files by ours.
"""
from __future__ import annotations

import json
import pathlib
from typing import Iterable, Sequence

import numpy as np

THUMOS14_TIOUS = (0.3, 0.4, 0.5, 0.6, 0.7)
ACTIVITYNET_TIOUS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5:0.05:0.95


def pairwise_tiou(a, b) -> np.ndarray:
  """Temporal IoU of every segment of `a` [N, 2] with every one of `b` [M, 2] -> [N, M]."""
  a = np.asarray(a, np.float64).reshape(-1, 2)
  b = np.asarray(b, np.float64).reshape(-1, 2)
  inter = np.clip(np.minimum(a[:, None, 1], b[None, :, 1]) -
                  np.maximum(a[:, None, 0], b[None, :, 0]), 0.0, None)
  union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
  positive = union > 0
  return np.where(positive, inter / np.where(positive, union, 1.0), 0.0)


def segment_iou(segment, candidates) -> np.ndarray:
  """Temporal IoU of one segment [2] with each of `candidates` [N, 2] -> [N]."""
  return pairwise_tiou(np.asarray(segment, np.float64).reshape(1, 2), candidates)[0]


def interpolated_ap(precision, recall) -> float:
  """All-point interpolated AP: the area under the precision envelope (ActivityNet's
  `interpolated_prec_rec`): precision made non-increasing from the right, summed
  over the steps where recall changes."""
  mprec = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
  mrec = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
  mprec = np.maximum.accumulate(mprec[::-1])[::-1]
  steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
  return float(np.sum((mrec[steps] - mrec[steps - 1]) * mprec[steps]))


def _columns(rows, width: int) -> tuple[list, np.ndarray]:
  """(video ids, float array [N, width - 1]) of tuples (video_id, numbers...)."""
  rows = list(rows)
  videos = [row[0] for row in rows]
  numbers = np.array([[float(x) for x in row[1:width]] for row in rows], np.float64)
  return videos, numbers.reshape(len(rows), width - 1)


def average_precision(ground_truth, predictions, tious=THUMOS14_TIOUS) -> np.ndarray:
  """AP of ONE class at each tIoU threshold -> [len(tious)].

  ground_truth: (video_id, t0, t1) rows; predictions: (video_id, t0, t1, score)
  rows. NaN at every threshold when there is no ground truth (undefined recall);
  0 when there are no predictions.
  """
  tious = np.asarray(tious, np.float64).reshape(-1)
  gt_videos, gt_segments = _columns(ground_truth, 3)
  pred_videos, pred = _columns(predictions, 4)
  if not gt_videos:
    return np.full(len(tious), np.nan)
  if not pred_videos:
    return np.zeros(len(tious))

  by_video: dict = {}
  for index, video in enumerate(gt_videos):
    by_video.setdefault(video, []).append(index)
  by_video = {video: np.asarray(indices) for video, indices in by_video.items()}

  order = np.argsort(-pred[:, 2], kind='stable')
  matched = np.zeros((len(tious), len(gt_videos)), bool)  # [K, G]: taken at that threshold
  tp = np.zeros((len(tious), len(order)), bool)  # [K, P] in score order
  for rank, p in enumerate(order):
    candidates = by_video.get(pred_videos[p])
    if candidates is None:
      continue
    tiou = segment_iou(pred[p, :2], gt_segments[candidates])
    by_tiou = np.argsort(tiou, kind='stable')[::-1]  # Highest first; ties: later first.
    candidates, tiou = candidates[by_tiou], tiou[by_tiou]
    # Candidates above a threshold are a prefix of this order: take its first free one.
    free = (tiou[None, :] >= tious[:, None]) & ~matched[:, candidates]  # [K, C]
    hit = free.any(axis=1)
    first = free.argmax(axis=1)
    matched[np.flatnonzero(hit), candidates[first[hit]]] = True
    tp[:, rank] = hit

  cum_tp = np.cumsum(tp, axis=1)
  recall = cum_tp / len(gt_videos)
  precision = cum_tp / np.arange(1, len(order) + 1)
  return np.array([interpolated_ap(precision[k], recall[k]) for k in range(len(tious))])


def _label(entry: dict, num_classes: int, what: str) -> int:
  label = entry['label']
  if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)) \
      or not 0 <= label < num_classes:
    raise ValueError(f"{what} in video '{entry['video_id']}' has label {label!r}; "
                     f"labels are class indices in [0, {num_classes})")
  return int(label)


def _check_names(class_names: Sequence[str]) -> list[str]:
  names = list(class_names)
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise ValueError(f'class names must be unique; repeated: {", ".join(map(str, duplicates))}')
  return names


def detection_map(ground_truth: Iterable[dict], predictions: Iterable[dict],
                  class_names: Sequence[str], tious=THUMOS14_TIOUS) -> dict:
  """mAP at each tIoU, its mean over tIoUs, and per-class AP (JSON-able, fractions).

  ground_truth: {'video_id', 'segment': (t0, t1), 'label': class index} dicts;
  predictions: the same plus 'score'. Classes without ground truth have
  per-class AP None and are left out of the mean (see the module docstring).
  """
  names = _check_names(class_names)
  gt_rows = [[] for _ in names]
  for entry in ground_truth:
    gt_rows[_label(entry, len(names), 'a ground truth instance')].append(
        (entry['video_id'], *entry['segment']))
  pred_rows = [[] for _ in names]
  for entry in predictions:
    pred_rows[_label(entry, len(names), 'a prediction')].append(
        (entry['video_id'], *entry['segment'], entry['score']))

  per_class, counts, scored = {}, {}, []
  for k, name in enumerate(names):
    counts[name] = len(gt_rows[k])
    if not gt_rows[k]:
      per_class[name] = None
      continue
    ap = average_precision(gt_rows[k], pred_rows[k], tious)
    per_class[name] = [float(x) for x in ap]
    scored.append(ap)
  if not scored:
    raise ValueError('no ground truth instance in any class, so mAP is undefined')
  maps = np.mean(scored, axis=0)
  return {
      'tious': [float(t) for t in np.asarray(tious).reshape(-1)],
      'map': [float(x) for x in maps],
      'average_map': float(np.mean(maps)),
      'per_class_ap': per_class,
      'num_ground_truth': counts,
  }


def activitynet_results(predictions: Iterable[dict], class_names: Sequence[str]) -> dict:
  """Prediction dicts -> ActivityNet's results JSON (labels by name, times in seconds)."""
  names = _check_names(class_names)
  results: dict = {}
  for entry in predictions:
    t0, t1 = entry['segment']
    results.setdefault(str(entry['video_id']), []).append({
        'label': names[_label(entry, len(names), 'a prediction')],
        'score': float(entry['score']),
        'segment': [float(t0), float(t1)],
    })
  return {'version': 'VERSION 1.3', 'results': results,
          'external_data': {'used': False, 'details': ''}}


def read_activitynet_results(path_or_dict, class_names: Sequence[str]) -> list[dict]:
  """An ActivityNet results JSON (a path or the loaded dict) -> prediction dicts."""
  data = path_or_dict
  if not isinstance(data, dict):
    data = json.loads(pathlib.Path(path_or_dict).read_text())
  if 'results' not in data:
    raise ValueError("an ActivityNet results file needs a 'results' field "
                     "({video_id: [{'label', 'score', 'segment'}, ...]})")
  index = {name: k for k, name in enumerate(_check_names(class_names))}
  predictions = []
  for video, entries in data['results'].items():
    for entry in entries:
      if entry['label'] not in index:
        raise ValueError(f"unknown label '{entry['label']}' in video '{video}'; "
                         f"it is not one of the {len(index)} class names")
      t0, t1 = entry['segment']
      predictions.append({'video_id': video, 'segment': (float(t0), float(t1)),
                          'label': index[entry['label']], 'score': float(entry['score'])})
  return predictions


def per_class_table(result: dict) -> str:
  """`detection_map`'s result as a fixed-width table: AP per class and tIoU, its mean
  over tIoUs, the number of ground truth instances; the last row is the mAP."""
  names = list(result['per_class_ap'])
  width = max([len('class'), len('mAP')] + [len(str(n)) for n in names])
  header = (f'{"class":<{width}}  {"n_gt":>5}' +
            ''.join(f'  {t:>6.2f}' for t in result['tious']) + f'  {"mean":>6}')
  lines = [header, '-' * len(header)]

  def row(name, count, values):
    cells = (''.join(f'  {v:>6.4f}' for v in values) + f'  {np.mean(values):>6.4f}'
             if values is not None else
             ''.join(f'  {"-":>6}' for _ in range(len(result['tious']) + 1)))
    return f'{str(name):<{width}}  {count:>5}' + cells

  for name in names:
    lines.append(row(name, result['num_ground_truth'][name], result['per_class_ap'][name]))
  lines.append('-' * len(header))
  lines.append(row('mAP', sum(result['num_ground_truth'].values()), result['map']))
  return '\n'.join(lines)
