"""Classification metrics, computed on the host from per-video probabilities.

Multi-view evaluation averages each video's view softmaxes first
(`average_views`), so every metric here is per video, not per clip.

Precision, recall and F1 follow scikit-learn's
`precision_recall_fscore_support(labels=range(K), zero_division=0)` exactly
(tests compare against it): a ratio with a zero denominator is 0, so a class
never predicted has precision 0, a class absent from the labels has recall 0,
and an empty class (in neither) scores 0 on all three. The macro average is
over all K classes, empty ones included (they pull it down: a split missing
classes says so); the weighted average weighs each class by its support, so
empty classes do not count. `mean_class_accuracy` is different on purpose:
the mean recall over the classes present in the labels (sklearn's
`balanced_accuracy_score`), the figure papers report.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

AVERAGED = ('precision', 'recall', 'f1')


def average_views(probs: np.ndarray, video_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean softmax over the views of each video: [N_views, K] -> [N_videos, K]."""
  videos, inverse = np.unique(video_index, return_inverse=True)
  sums = np.zeros((len(videos), probs.shape[1]), np.float64)
  np.add.at(sums, inverse, probs)
  counts = np.bincount(inverse, minlength=len(videos))[:, None]
  return videos, sums / counts


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
  if len(labels) == 0:
    return float('nan')
  k = min(k, probs.shape[1])
  top = np.argsort(-probs, axis=1, kind='stable')[:, :k]
  return float(np.mean(np.any(top == labels[:, None], axis=1)))


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
  """[true class, predicted class] counts."""
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (labels, predictions), 1)
  return matrix


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
  """Recall of each class; NaN for classes absent from the labels."""
  totals = confusion.sum(axis=1)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), np.nan)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
  """numerator / denominator, 0 where the denominator is 0 (zero_division=0)."""
  return np.where(denominator > 0, numerator / np.maximum(denominator, 1), 0.0)


def precision_recall_f1(confusion: np.ndarray) -> dict:
  """Per-class 'precision', 'recall', 'f1' [K] and 'support' [K], then their 'macro' and
  'weighted' averages ({'precision', 'recall', 'f1'}); see the module docstring."""
  tp = np.diag(confusion).astype(np.float64)
  predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
  # F1 = 2tp / (2tp + fp + fn), as sklearn computes it (not from the rounded P and R).
  per_class = {'precision': _ratio(tp, predicted), 'recall': _ratio(tp, support),
               'f1': _ratio(2 * tp, predicted + support)}
  total = support.sum()
  return {**per_class, 'support': support.astype(np.int64),
          'macro': {k: float(np.mean(v)) for k, v in per_class.items()},
          'weighted': {k: float(np.sum(v * support) / total) if total else 0.0
                       for k, v in per_class.items()}}


def classification_metrics(probs: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
  """top-1, top-5, mean class accuracy, per-class and averaged precision / recall / F1,
  support and the confusion matrix [true, predicted]."""
  confusion = confusion_matrix(np.argmax(probs, axis=1), labels, num_classes)
  per_class = per_class_accuracy(confusion)
  return {
      'top1': top_k_accuracy(probs, labels, 1),
      'top5': top_k_accuracy(probs, labels, 5),
      'mean_class_accuracy': float(np.nanmean(per_class)) if np.any(~np.isnan(per_class)) else float('nan'),
      **precision_recall_f1(confusion),
      'confusion': confusion,
      'num_videos': int(len(labels)),
  }


def split_fields(result: dict, class_names: Sequence[str]) -> dict:
  """One split's metrics as JSON-able fields (results.json and evaluation.json)."""
  return {
      **{k: result[k] for k in ('top1', 'top5', 'mean_class_accuracy', 'loss', 'num_videos',
                                'num_failed') if k in result},
      'macro': dict(result['macro']), 'weighted': dict(result['weighted']),
      'per_class': {name: {'precision': float(result['precision'][i]),
                           'recall': float(result['recall'][i]), 'f1': float(result['f1'][i]),
                           'support': int(result['support'][i])}
                    for i, name in enumerate(class_names)},
      'confusion_matrix': np.asarray(result['confusion']).astype(int).tolist(),
  }


def _clip(name: str, width: int) -> str:
  return name if len(name) <= width else name[:width - 2] + '..'


def per_class_table(result: dict, class_names: Sequence[str], max_name: int = 32) -> str:
  """A fixed-width table: index, class, precision, recall, F1, support per class, then the
  macro and weighted averages. One line per class, names clipped to `max_name`."""
  width = min(max([len('weighted avg')] + [len(n) for n in class_names]), max_name)
  digits = len(str(max(len(class_names) - 1, 0)))
  header = (f'{"#":>{digits}}  {"class":<{width}}  {"precision":>9}  {"recall":>6}  '
            f'{"f1":>6}  {"support":>7}')
  rule = '-' * len(header)

  def row(index, name, p, r, f, support):
    return (f'{index:>{digits}}  {_clip(name, width):<{width}}  {p:>9.4f}  {r:>6.4f}  '
            f'{f:>6.4f}  {support:>7d}')

  lines = [header, rule]
  for i, name in enumerate(class_names):
    lines.append(row(i, name, result['precision'][i], result['recall'][i], result['f1'][i],
                     int(result['support'][i])))
  lines.append(rule)
  total = int(np.sum(result['support']))
  for average in ('macro', 'weighted'):
    values = result[average]
    lines.append(row('', f'{average} avg', values['precision'], values['recall'], values['f1'],
                     total))
  return '\n'.join(lines)


def confusion_table(confusion: np.ndarray) -> str:
  """The confusion matrix as a fixed-width grid: rows true, columns predicted, both by
  class index (the per-class table's '#')."""
  confusion = np.asarray(confusion)
  k = confusion.shape[0]
  cell = max(len(str(k - 1)), len(str(int(confusion.max()))) if confusion.size else 1)
  corner = 'true\\pred'
  lines = [corner + ''.join(f' {j:>{cell}}' for j in range(k))]
  for i in range(k):
    lines.append(f'{i:>{len(corner)}}' + ''.join(f' {int(c):>{cell}}' for c in confusion[i]))
  return '\n'.join(lines)
