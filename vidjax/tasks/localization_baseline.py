"""The sliding-window baseline: the trimmed clip classifier over windows, plus NMS.

What localization looked like before single-stage detectors (and what a
user with only a clip classifier would do): slide windows of several
lengths over the video, score each window by the classifier's class
probability inside it against its flanks, and keep the best windows with
NMS. It reads the probabilities `--mode extract` wrote beside the
features (probabilities/<video_id>.npy, one row per snippet) and is scored
by the same evaluator as the detector, on the same videos; its frame labels
(the classifier's argmax at the nearest snippet) by the same segmentation
metrics.

Its NMS settings are chosen on the validation split (the best of a small
grid), then applied once to the test split, so the baseline gets the same
tuning a user would give it.
"""
from __future__ import annotations

import itertools
import pathlib

import numpy as np

from vidjax.tasks import localization_nms
from vidjax.tasks.localization_eval import score, snippets_to_frames

# Window lengths in snippets (4 frames each at the default stride): 2-13 s at 8 fps.
WINDOWS = (2, 3, 4, 6, 8, 12, 16, 24)
NMS_GRID = {'method': ('hard', 'soft'), 'iou_threshold': (0.3, 0.5, 0.7)}
MIN_SCORE = 0.05


def window_candidates(probs: np.ndarray, action_columns: np.ndarray, grid,
                      windows=WINDOWS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """probs [T, K_classifier] -> every window's (segment [N, 2] s, score [N], label [N]).

  A window of snippets [i, i + k) covers frames from snippet i's first to
  snippet i + k - 1's last. Its score for action c is the classifier's mean
  probability of c inside times one minus its mean over the flanks (k / 4
  snippets, at least one, either side): the mean alone ranks every window
  inside an action equal to the whole action, so NMS would keep fragments;
  the contrast makes the window that fits the action best win.
  """
  segments, scores, labels = [], [], []
  cumulative = np.concatenate([np.zeros((1, probs.shape[1])), np.cumsum(probs, 0)])
  total = len(probs)

  def mean(lo, hi):  # [W] windows [lo, hi) clipped to the video; 0 where empty.
    lo, hi = np.clip(lo, 0, total), np.clip(hi, 0, total)
    count = np.maximum(hi - lo, 1)[:, None]
    return (cumulative[hi] - cumulative[lo]) / count * ((hi > lo)[:, None])

  for k in windows:
    if k > total:
      continue
    start = np.arange(total - k + 1)
    flank = max(1, k // 4)
    inside = mean(start, start + k)  # [W, K]
    left, right = mean(start - flank, start), mean(start + k, start + k + flank)
    sides = (start > 0).astype(float) + (start + k < total)  # Flanks that exist.
    outside = (left + right) / np.maximum(sides, 1)[:, None]
    t0 = start * grid.stride / grid.fps
    t1 = ((start + k - 1) * grid.stride + grid.window) / grid.fps
    for c, column in enumerate(action_columns):
      score = inside[:, column] * (1 - outside[:, column])
      keep = score >= MIN_SCORE
      segments.append(np.stack([t0[keep], t1[keep]], -1))
      scores.append(score[keep])
      labels.append(np.full(keep.sum(), c))
  if not segments:
    return np.zeros((0, 2)), np.zeros((0,)), np.zeros((0,), int)
  return np.concatenate(segments), np.concatenate(scores), np.concatenate(labels)


def action_columns(classifier_names, class_names) -> np.ndarray:
  """Which classifier output is each action class (matched by name)."""
  missing = [n for n in class_names if n not in classifier_names]
  if missing:
    raise ValueError(f'the classifier has no class {missing[0]!r}; it cannot be a baseline here')
  return np.asarray([list(classifier_names).index(n) for n in class_names])


def detect(videos, probabilities_dir: pathlib.Path, columns, *, method: str,
           iou_threshold: float, max_segments: int = 200) -> list[dict]:
  detections = []
  for v in videos:
    probs = np.load(probabilities_dir / f'{v.video_id}.npy')
    segments, scores, labels = window_candidates(probs, columns, v.grid)
    segments, scores, labels = localization_nms.postprocess(
        segments, scores, labels, method=method, iou_threshold=iou_threshold, sigma=0.5,
        min_score=MIN_SCORE if method == 'hard' else 0.001, max_segments=max_segments)
    detections.append({'segments': segments, 'scores': scores, 'labels': labels})
  return detections


def frame_labels(videos, probabilities_dir: pathlib.Path, columns) -> list[np.ndarray]:
  """Each frame: the classifier's most likely class at the nearest snippet (0: not an action)."""
  out = []
  for v in videos:
    probs = np.load(probabilities_dir / f'{v.video_id}.npy')
    to_label = np.zeros((probs.shape[1],), np.int32)  # Background and unknown columns -> 0.
    to_label[columns] = np.arange(len(columns)) + 1
    out.append(snippets_to_frames(to_label[probs.argmax(-1)], len(v.frame_labels), v.grid))
  return out


def evaluate(val_videos, test_videos, probabilities_dir: pathlib.Path, classifier_names,
             class_names, tious) -> dict:
  """The baseline's test result, with NMS settings picked on the validation videos."""
  columns = action_columns(classifier_names, class_names)
  best = None
  for method, iou in itertools.product(NMS_GRID['method'], NMS_GRID['iou_threshold']):
    found = score(val_videos, detect(val_videos, probabilities_dir, columns, method=method,
                                     iou_threshold=iou), None, class_names, tious)
    if best is None or found['average_map'] > best[0]:
      best = (found['average_map'], method, iou)
  _, method, iou = best
  result = score(test_videos, detect(test_videos, probabilities_dir, columns, method=method,
                                     iou_threshold=iou),
                 frame_labels(test_videos, probabilities_dir, columns), class_names, tious)
  result['nms'] = {'method': method, 'iou_threshold': iou, 'chosen_on': 'val',
                   'val_average_map': best[0]}
  return result
