"""Classification metrics, computed on the host from per-video probabilities.

Multi-view evaluation averages each video's view softmaxes first
(`average_views`), so every metric here is per video, not per clip.
"""
from __future__ import annotations

import numpy as np


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


def classification_metrics(probs: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
  """top-1, top-5, mean per-class accuracy, per-class accuracy and confusion."""
  confusion = confusion_matrix(np.argmax(probs, axis=1), labels, num_classes)
  per_class = per_class_accuracy(confusion)
  return {
      'top1': top_k_accuracy(probs, labels, 1),
      'top5': top_k_accuracy(probs, labels, 5),
      'mean_class_accuracy': float(np.nanmean(per_class)) if np.any(~np.isnan(per_class)) else float('nan'),
      'per_class_accuracy': per_class,
      'confusion': confusion,
      'num_videos': int(len(labels)),
  }
