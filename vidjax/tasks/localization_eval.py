"""Evaluating a temporal detector: whole videos in, segments and frame labels out, scored.

Every video of a split is padded to one length (a multiple of the training
window that holds the longest), so the evaluation step compiles once. The
network's outputs are gathered from all processes, as classification's
probabilities are, and every process decodes them the same way:

  points     sigmoid class scores [P, K] and offsets [P, 2] at every pyramid point
  decode     candidates above `pre_nms_threshold`, the `pre_nms_topk` best, each a
             segment (point - start offset, point + end offset) -> seconds
  NMS        class-wise Soft-NMS (or hard NMS) and score voting (localization_nms.py)
  frames     the kept detections painted onto the frames, most confident on top
             (segmentation_from='detections': fewer, cleaner segments than the
             frame-wise head, whose argmax flickers), or the segmentation head's
             argmax per snippet, spread to the frames ('head')

then scored by ActivityNet's detection mAP and MS-TCN's segmentation metrics.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
from jax.experimental import multihost_utils

from vidjax import parallel, progress
from vidjax.data import pipeline
from vidjax.data.layouts import snippet_features
from vidjax.metrics import localization as tad_metrics
from vidjax.metrics import segmentation as seg_metrics
from vidjax.models.temporal_detector import point_positions
from vidjax.tasks import localization_nms
from vidjax.tasks.localization_targets import SnippetGrid


@dataclasses.dataclass(frozen=True)
class Video:
  """One untrimmed video ready for evaluation: its features, timing and ground truth.

  `segments` are in seconds; `frame_labels` [F] (0 = background, class + 1)
  are the dataset's own when it has them (segmentation layouts), else drawn
  from the segments at `grid.fps`.
  """
  video_id: str
  features_path: str
  num_snippets: int
  grid: SnippetGrid
  duration: float
  segments: np.ndarray  # [N, 2] seconds
  labels: np.ndarray  # [N]
  frame_labels: np.ndarray  # [F]


def frame_labels_from_segments(segments, labels, num_frames: int, fps: float) -> np.ndarray:
  """int32 [F]: the class + 1 of the segment holding each frame's centre, else 0."""
  centre = (np.arange(num_frames) + 0.5) / fps
  out = np.zeros((num_frames,), np.int32)
  segments = np.asarray(segments, np.float64).reshape(-1, 2)
  for i in np.argsort(-(segments[:, 1] - segments[:, 0]), kind='stable'):
    out[(centre >= segments[i, 0]) & (centre < segments[i, 1])] = int(labels[i]) + 1
  return out


def snippets_to_frames(snippet_labels: np.ndarray, num_frames: int, grid: SnippetGrid) -> np.ndarray:
  """Each frame takes the label of the snippet whose centre is nearest to it."""
  index = np.rint((np.arange(num_frames) + 0.5 - 0.5 * grid.window) / grid.stride)
  return snippet_labels[np.clip(index.astype(int), 0, len(snippet_labels) - 1)]


def frames_from_detections(detections: dict, num_frames: int, fps: float,
                           threshold: float) -> np.ndarray:
  """int32 [F]: each frame takes the class + 1 of the most confident detection holding its
  centre, among those scoring at least `threshold`; 0 where none does."""
  out = np.zeros((num_frames,), np.int32)
  centre = (np.arange(num_frames) + 0.5) / fps
  order = np.argsort(detections['scores'], kind='stable')  # Most confident painted last.
  for i in order:
    if detections['scores'][i] >= threshold:
      t0, t1 = detections['segments'][i]
      out[(centre >= t0) & (centre < t1)] = int(detections['labels'][i]) + 1
  return out


def bucket_length(num_snippets: int, window: int) -> int:
  """The padded length of a split: the smallest multiple of the training window that holds it."""
  return max(window, window * math.ceil(num_snippets / window))


def decode_video(scores, offsets, *, num_steps: int, levels: int, valid_steps: int,
                 grid: SnippetGrid, duration: float, config) -> dict:
  """One video's point outputs -> {'segments' [M, 2] s, 'scores' [M], 'labels' [M]}."""
  position, stride = point_positions(num_steps, levels)
  keep = position < valid_steps
  scores, offsets, position, stride = scores[keep], offsets[keep], position[keep], stride[keep]
  flat = scores.reshape(-1)
  candidates = np.flatnonzero(flat > config.pre_nms_threshold)
  if len(candidates) > config.pre_nms_topk:
    candidates = candidates[np.argsort(-flat[candidates], kind='stable')[:config.pre_nms_topk]]
  point, label = np.divmod(candidates, scores.shape[1])
  start = position[point] - offsets[point, 0] * stride[point]
  end = position[point] + offsets[point, 1] * stride[point]
  seconds = np.stack([grid.to_seconds(start), grid.to_seconds(end)], -1)
  if duration > 0:
    seconds = np.clip(seconds, 0.0, duration)
  long_enough = seconds[:, 1] - seconds[:, 0] > config.min_duration_s
  segments, kept_scores, labels = localization_nms.postprocess(
      seconds[long_enough], flat[candidates][long_enough], label[long_enough],
      method=config.nms_method, iou_threshold=config.nms_iou_threshold,
      sigma=config.nms_sigma, min_score=config.min_score,
      max_segments=config.max_segments_per_video, voting_threshold=config.voting_threshold)
  return {'segments': segments, 'scores': kept_scores, 'labels': labels}


def score(videos, detections, frame_predictions, class_names, tious) -> dict:
  """Detection mAP and segmentation metrics of decoded predictions, by video."""
  ground_truth = [{'video_id': v.video_id, 'segment': tuple(map(float, s)), 'label': int(l)}
                  for v in videos for s, l in zip(v.segments, v.labels)]
  predictions = [{'video_id': v.video_id, 'segment': tuple(map(float, s)), 'label': int(l),
                  'score': float(c)}
                 for v, d in zip(videos, detections)
                 for s, c, l in zip(d['segments'], d['scores'], d['labels'])]
  result = tad_metrics.detection_map(ground_truth, predictions, class_names, tious)
  if frame_predictions is not None:
    pairs = [(p, v.frame_labels) for v, p in zip(videos, frame_predictions)]
    result['segmentation'] = seg_metrics.segmentation_scores(pairs, background=(0,))
  result['predictions'] = predictions
  result['ground_truth'] = ground_truth
  result['ground_truth_videos'] = [(v.video_id, v.duration) for v in videos]
  result['num_videos'] = len(videos)
  return result


def evaluate_videos(predict_fn, params, videos, class_names, *, config, mesh, feature_layout,
                    feature_dim, failed: int = 0, split: str = '') -> dict:
  """The task's evaluation of `videos` (the same list on every process).

  `split` names the progress bar only.
  """
  loc = config.localization
  if not videos:
    raise pipeline.DataError('no video of the split has features to evaluate')
  num_steps = bucket_length(max(v.num_snippets for v in videos), loc.max_seq_len)
  local_batch = parallel.per_process_batch_size(config.eval.batch_size, mesh)
  mine = pipeline.shard_for_process(list(range(len(videos))), jax.process_index(),
                                    jax.process_count())
  longest = -(-len(videos) // jax.process_count())
  outputs = {'scores': [], 'offsets': [], 'segment_probs': [], 'index': []}
  shown = progress.bar(-(-max(longest, 1) // local_batch), f'evaluate {split}'.strip(),
                       config.train.progress_bar, leave=False)
  for first in range(0, max(longest, 1), local_batch):
    rows = mine[first:first + local_batch]
    features, mask, index = None, np.zeros((local_batch, num_steps), bool), np.full(local_batch, -1)
    for r, i in enumerate(rows):
      x = snippet_features.read_features(videos[i].features_path, layout=feature_layout,
                                         feature_dim=feature_dim)[:num_steps]
      if features is None:
        features = np.zeros((local_batch, num_steps, x.shape[1]), np.float32)
      features[r, :len(x)], mask[r, :len(x)], index[r] = x, True, i
    if features is None:  # This process has no video left; it still joins the step.
      dim = snippet_features.read_features(videos[0].features_path, layout=feature_layout,
                                           feature_dim=feature_dim).shape[1]
      features = np.zeros((local_batch, num_steps, dim), np.float32)
    batch = parallel.global_batch({'features': features, 'mask': mask}, mesh)
    out = predict_fn(params, batch)
    for key in ('scores', 'offsets', 'segment_probs'):
      outputs[key].append(np.asarray(multihost_utils.process_allgather(out[key], tiled=True)))
    outputs['index'].append(np.asarray(multihost_utils.process_allgather(index, tiled=True)))
    shown.update(1)  # This batch's outputs are on the host.
  shown.close()
  index = np.concatenate(outputs['index'])
  gathered = {k: np.concatenate(v) for k, v in outputs.items() if k != 'index'}
  detections, frames = [None] * len(videos), [None] * len(videos)
  for row in np.flatnonzero(index >= 0):
    v = videos[index[row]]
    valid = min(v.num_snippets, num_steps)
    detections[index[row]] = decode_video(
        gathered['scores'][row], gathered['offsets'][row], num_steps=num_steps,
        levels=config.model.temporal_detector.levels, valid_steps=valid, grid=v.grid,
        duration=v.duration, config=loc)
    if loc.segmentation_from == 'detections':
      frames[index[row]] = frames_from_detections(detections[index[row]], len(v.frame_labels),
                                                  v.grid.fps, loc.segmentation_threshold)
    else:
      snippet_labels = gathered['segment_probs'][row][:valid].argmax(-1)
      frames[index[row]] = snippets_to_frames(snippet_labels, len(v.frame_labels), v.grid)
  result = score(videos, detections, frames, class_names, tuple(loc.tious))
  result['num_failed'] = failed
  return result
