"""Action segmentation metrics as MS-TCN's `eval.py` defines them, as fractions.

Every action segmentation table since MS-TCN (50Salads, GTEA, Breakfast)
reports these numbers, so the rules are MS-TCN's, only in [0, 1] instead of
percent:

- accuracy: correct frames over all frames of all videos, background included.
- edit: per video, 1 - Levenshtein(predicted, true segment labels) / the longer
  sequence length, then the mean over videos. Background segments are dropped
  from both sequences first.
- F1@k: each predicted (non-background) segment in turn finds the true segment
  of its label with the highest IoU; it is a true positive when that IoU is
  >= k and that true segment is not already taken, otherwise a false positive
  (the best one being taken is a fp even when another true segment would pass:
  MS-TCN's rule). Untaken true segments are false negatives. tp / fp / fn are
  summed over all videos before precision, recall and F1.

Where MS-TCN divides by zero we define: edit is 1 when both segment sequences
are empty (e.g. an all-background video predicted as such), and such a video
adds tp = fp = fn = 0; a predicted segment in a video without true segments is
a fp; F1 is 0 when there is no true positive.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np


def segments_of(labels, background=()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Runs of equal frame labels [T] -> (labels, starts, ends), ends exclusive, background runs left out."""
  labels = np.asarray(labels).reshape(-1)
  if labels.size == 0:
    empty = np.zeros(0, np.int64)
    return labels[:0], empty, empty
  change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
  starts = np.concatenate([[0], change])
  ends = np.concatenate([change, [labels.size]])
  keep = ~np.isin(labels[starts], np.asarray(list(background), labels.dtype))
  return labels[starts][keep], starts[keep], ends[keep]


def _levenshtein(a, b) -> int:
  """Insertions, deletions and substitutions turning sequence `a` into `b`."""
  previous = list(range(len(b) + 1))
  for i, x in enumerate(a, start=1):
    current = [i]
    for j, y in enumerate(b, start=1):
      current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
    previous = current
  return previous[-1]


def edit_score(pred, gt, background=()) -> float:
  """1 - normalised edit distance between the segment label sequences of one video."""
  p, _, _ = segments_of(pred, background)
  y, _, _ = segments_of(gt, background)
  longest = max(len(p), len(y))
  if longest == 0:
    return 1.0
  return 1.0 - _levenshtein(p.tolist(), y.tolist()) / longest


def f1_counts(pred, gt, overlap: float, background=()) -> tuple[int, int, int]:
  """(tp, fp, fn) of one video's segments at IoU threshold `overlap` (MS-TCN's matching)."""
  p_label, p_start, p_end = segments_of(pred, background)
  y_label, y_start, y_end = segments_of(gt, background)
  taken = np.zeros(len(y_label), bool)
  tp = fp = 0
  for label, start, end in zip(p_label, p_start, p_end):
    inter = np.clip(np.minimum(end, y_end) - np.maximum(start, y_start), 0, None)
    iou = inter / ((end - start) + (y_end - y_start) - inter)
    iou = np.where(y_label == label, iou, -1.0)  # Other labels never match.
    best = int(np.argmax(iou)) if len(iou) else -1
    if best >= 0 and iou[best] >= overlap and not taken[best]:
      tp += 1
      taken[best] = True
    else:
      fp += 1
  return tp, fp, int(len(y_label) - taken.sum())


def _f1(tp: int, fp: int, fn: int) -> float:
  # 2PR / (P + R) = 2 tp / (2 tp + fp + fn); MS-TCN's nan_to_num makes tp = 0 give 0.
  return 0.0 if tp == 0 else 2.0 * tp / (2 * tp + fp + fn)


def segmentation_scores(pairs: Iterable, overlaps=(0.1, 0.25, 0.5), background=()) -> dict:
  """{'accuracy', 'edit', 'f1@10', 'f1@25', 'f1@50'} over videos of (pred [T], gt [T]) labels."""
  correct = frames = 0
  edits = []
  counts = np.zeros((len(overlaps), 3), np.int64)  # [overlap, (tp, fp, fn)]
  for pred, gt in pairs:
    pred, gt = np.asarray(pred).reshape(-1), np.asarray(gt).reshape(-1)
    if pred.shape != gt.shape:
      raise ValueError(f'a prediction has {pred.size} frames but its ground truth {gt.size}; '
                       'score frame labels of the same video at the same frame rate')
    correct += int(np.sum(pred == gt))
    frames += gt.size
    edits.append(edit_score(pred, gt, background))
    for k, overlap in enumerate(overlaps):
      counts[k] += f1_counts(pred, gt, overlap, background)
  if frames == 0:
    raise ValueError('no frames to score: every video given is empty (or none was given)')
  scores = {'accuracy': correct / frames, 'edit': float(np.mean(edits))}
  for overlap, (tp, fp, fn) in zip(overlaps, counts.tolist()):
    scores[f'f1@{round(overlap * 100, 6):g}'] = _f1(tp, fp, fn)
  return scores
