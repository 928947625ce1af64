"""Class-wise 1-D NMS, Soft-NMS and score voting in numpy: ActionFormer's post-processing.

ActionFormer's `libs/utils/nms.py` calls a compiled `nms_1d_cpu` extension,
its most reported install failure; this is the same post-processing with no
extension. The semantics follow it:

- Suppression is per class: segments of different labels never suppress
  each other (ActionFormer's `multiclass=True`, its THUMOS14 recipe; its
  class-agnostic mode is the special case of one label for all).
- Hard NMS visits segments by score and drops every later one with IoU >=
  `iou_threshold` with a kept one.
- Soft-NMS repeatedly takes the highest (decayed) score and decays the rest:
  gaussian `s * exp(-iou^2 / sigma)` for every overlap, or linear
  `s * (1 - iou)` where iou >= `iou_threshold`; a segment whose score falls
  below `min_score` is dropped.
- Voting replaces each kept segment's boundaries by the average of the
  original segments of its label (suppressed and low-scoring ones included)
  with IoU >= `voting_threshold` with it, weighted by their original scores.

Deliberate differences, all at the edges: ActionFormer pads lengths by 1e-6
inside its IoU (we use the exact IoU, 0 for zero-length pairs); its soft path
never checks the first selected segment against `min_score` and its hard path
keeps scores > `min_score` (we keep scores >= `min_score` everywhere); its
per-class cap to `max_seg_num` followed by a global cap is one global cap here
(the same result); tied scores go to the earlier segment.
"""
from __future__ import annotations

import numpy as np


def _iou(segment: np.ndarray, others: np.ndarray) -> np.ndarray:
  """IoU of one segment [2] with each of `others` [N, 2]; 0 where the union is empty."""
  inter = np.clip(np.minimum(segment[1], others[:, 1]) - np.maximum(segment[0], others[:, 0]),
                  0.0, None)
  union = (segment[1] - segment[0]) + (others[:, 1] - others[:, 0]) - inter
  positive = union > 0
  return np.where(positive, inter / np.where(positive, union, 1.0), 0.0)


def _inputs(segments, scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  segments = np.asarray(segments, np.float64)
  if segments.size == 0:
    segments = segments.reshape(0, 2)
  scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
  n = len(segments)
  if segments.shape != (n, 2) or scores.shape != (n,) or labels.shape != (n,):
    raise ValueError(f'expected segments [N, 2], scores [N] and labels [N]; got '
                     f'{segments.shape}, {scores.shape} and {labels.shape}')
  return segments, scores, labels


def _ranking(indices: np.ndarray, scores: np.ndarray) -> np.ndarray:
  """The permutation putting (index, score) pairs highest score first, ties by lower index."""
  return np.lexsort((np.asarray(indices), -np.asarray(scores, np.float64)))


def _cap(order: np.ndarray, max_segments: int | None) -> np.ndarray:
  return order if max_segments is None else order[:max_segments]


def nms_1d(segments, scores, labels, *, iou_threshold: float,
           max_segments: int | None = None) -> np.ndarray:
  """Hard NMS within each label -> kept indices, highest score first (at most `max_segments`)."""
  segments, scores, labels = _inputs(segments, scores, labels)
  keep = []
  for label in np.unique(labels):
    members = np.flatnonzero(labels == label)
    order = members[_ranking(members, scores[members])]
    alive = np.ones(len(order), bool)
    for i, index in enumerate(order):
      if alive[i]:
        keep.append(index)
        alive[i + 1:] &= _iou(segments[index], segments[order[i + 1:]]) < iou_threshold
  keep = np.asarray(keep, np.int64)
  return _cap(keep[_ranking(keep, scores[keep])], max_segments)


def _soft_nms(segments, scores, labels, *, sigma, iou_threshold, min_score,
              method) -> tuple[np.ndarray, np.ndarray]:
  """(kept indices, their decayed scores), in selection order within each label."""
  if method not in ('gaussian', 'linear'):
    raise ValueError(f"soft-NMS method '{method}' is not one of 'gaussian', 'linear'")
  kept, kept_scores = [], []
  for label in np.unique(labels):
    rest = np.flatnonzero((labels == label) & (scores >= min_score))
    decayed = scores[rest]
    while rest.size:
      best = int(np.argmax(decayed))  # First maximum: the lowest index among ties.
      kept.append(rest[best])
      kept_scores.append(decayed[best])
      chosen = segments[rest[best]]
      rest, decayed = np.delete(rest, best), np.delete(decayed, best)
      iou = _iou(chosen, segments[rest])
      if method == 'gaussian':
        decayed = decayed * np.exp(-iou ** 2 / sigma)
      else:
        decayed = np.where(iou >= iou_threshold, decayed * (1.0 - iou), decayed)
      survive = decayed >= min_score
      rest, decayed = rest[survive], decayed[survive]
  return np.asarray(kept, np.int64), np.asarray(kept_scores, np.float64)


def soft_nms_1d(segments, scores, labels, *, sigma: float = 0.5, iou_threshold: float = 0.1,
                min_score: float = 1e-3, method: str = 'gaussian',
                max_segments: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Soft-NMS within each label -> (segments [M, 2], decayed scores [M], labels [M]),
  highest score first. `iou_threshold` gates the linear decay only."""
  segments, scores, labels = _inputs(segments, scores, labels)
  kept, decayed = _soft_nms(segments, scores, labels, sigma=sigma, iou_threshold=iou_threshold,
                            min_score=min_score, method=method)
  order = _cap(_ranking(kept, decayed), max_segments)
  return segments[kept[order]], decayed[order], labels[kept[order]]


def vote(kept_segments, kept_labels, segments, scores, labels, threshold: float) -> np.ndarray:
  """Each kept segment's boundaries as the score-weighted mean of the segments of its label
  with IoU >= `threshold` with it (itself included, so the weights never all vanish
  unless the scores are 0, when the segment stays as it is) -> [M, 2]."""
  kept_segments = np.asarray(kept_segments, np.float64).reshape(-1, 2)
  segments, scores, labels = _inputs(segments, scores, labels)
  voted = kept_segments.copy()
  for m, (segment, label) in enumerate(zip(kept_segments, kept_labels)):
    weights = np.where((labels == label) & (_iou(segment, segments) >= threshold), scores, 0.0)
    if weights.sum() > 0:
      voted[m] = weights @ segments / weights.sum()
  return voted


def postprocess(segments, scores, labels, *, method: str = 'soft', iou_threshold: float = 0.1,
                sigma: float = 0.5, min_score: float = 1e-3, max_segments: int | None = None,
                voting_threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """One video's candidates -> (segments [M, 2], scores [M], labels [M]), highest score first.

  method: 'soft' (gaussian Soft-NMS, ActionFormer's choice), 'hard' or 'none'
  (no suppression); every method drops scores below `min_score` and keeps at
  most `max_segments`. `voting_threshold` > 0 then applies `vote`.
  """
  segments, scores, labels = _inputs(segments, scores, labels)
  if method == 'soft':
    kept, kept_scores = _soft_nms(segments, scores, labels, sigma=sigma,
                                  iou_threshold=iou_threshold, min_score=min_score,
                                  method='gaussian')
  elif method in ('hard', 'none'):
    kept = np.flatnonzero(scores >= min_score)
    if method == 'hard':
      kept = kept[nms_1d(segments[kept], scores[kept], labels[kept], iou_threshold=iou_threshold)]
    kept_scores = scores[kept]
  else:
    raise ValueError(f"NMS method '{method}' is not one of 'soft', 'hard', 'none'")
  order = _cap(_ranking(kept, kept_scores), max_segments)
  kept, kept_scores = kept[order], kept_scores[order]
  out = segments[kept]
  if voting_threshold > 0:
    out = vote(out, labels[kept], segments, scores, labels, voting_threshold)
  return out, kept_scores, labels[kept]
