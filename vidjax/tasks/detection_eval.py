"""Evaluating a box detector on whole videos: every frame detected, scored, then tracked.

For every frame t of every video of a split, the model sees the clip of
data.num_frames frames ending at t, data.frame_stride apart (the training
clips' spacing; frames before the video's start repeat its first), and the
on-device `postprocess` (detection_nms.py) keeps at most max_detections
boxes. Frames are decoded once per video at the model's size; boxes are
scaled back to the annotation's pixels before scoring, so the numbers are
those of the dataset's own coordinates:

  boxes   COCO AP@[.5:.95], AP50, AP75, AR100 and per-class AP by pycocotools
          (`metrics.detection`); crowd boxes are iscrowd ground truth, so
          detections on them are neither right nor wrong.
  tracks  each video's detections through a fresh ByteTracker, then HOTA,
          MOTA and IDF1 by TrackEval (`metrics.tracking`) against the boxes
          with track ids; tracker boxes matching a crowd box (IoU >= 0.5)
          are dropped first, as MOT Challenge drops those on distractors.
          None where the split has no tracked video (COCO, YOLO images).

The (video, frame) list is the same on every process; each global batch's
rows are split over the processes and the outputs gathered, as
classification's evaluation does.
"""
from __future__ import annotations

import logging
from typing import Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils

from vidjax import parallel, progress
from vidjax.data import decode, decode_images
from vidjax.data.records import Record
from vidjax.tasks import detection_vote
from vidjax.tasks.detection_targets import frame_boxes, scale_boxes
from vidjax.tasks.detection_tracker import box_iou, track_video

log = logging.getLogger(__name__)
# How boxes get their classes for COCO mAP (see `score`); tracks always take one per box.
LABEL_MODES = ('box', 'multi', 'track')
CROWD_IOU = 0.5  # A tracker box this close to a crowd box is not scored.


def clip_indices(frame: int, num_frames: int, stride: int) -> np.ndarray:
  """[num_frames] frame indices of the clip ending at `frame`, clamped at 0 (repeat the first)."""
  return np.maximum(frame - stride * np.arange(num_frames - 1, -1, -1), 0)


def read_video(record: Record, height: int, width: int, timeout_s: float | None = None
               ) -> np.ndarray:
  """Every frame of a record at the model's size: uint8 [F, height, width, 3]."""
  files = record.annotation.get('frame_files')
  if files is not None:
    return decode_images.read_clip(files, np.arange, height=height, width=width,
                                   timeout_s=timeout_s)[0]
  return decode.read_frames(record.path, height=height, width=width, timeout_s=timeout_s)


def tracker_kwargs(config) -> dict:
  det = config.detection
  return dict(track_thresh=det.track_thresh, low_thresh=det.track_low_thresh,
              new_track_thresh=det.track_new_thresh, match_thresh=det.track_match_thresh,
              track_buffer=det.track_buffer, class_aware=det.track_class_aware)


def _run_network(predict_fn, params, records, items, config, mesh, desc: str = 'evaluate'
                 ) -> tuple[dict, set]:
  """Network outputs of every (record, frame) in `items`, in order; and the unreadable records."""
  data = config.data
  global_size = config.eval.batch_size
  local = parallel.per_process_batch_size(global_size, mesh)
  mine = slice(jax.process_index() * local, (jax.process_index() + 1) * local)
  cached, failed = (-1, None), set()
  outputs: dict[str, list] = {}
  shown = progress.bar(-(-len(items) // global_size), desc, config.train.progress_bar, leave=False)
  for first in range(0, len(items), global_size):
    video = np.zeros((local, data.num_frames, data.height, data.width, 3), np.uint8)
    for row, (r, frame) in enumerate(items[first:first + global_size][mine]):
      if cached[0] != r:
        try:
          cached = (r, read_video(records[r], data.height, data.width,
                                  data.decode_timeout_s or None))
        except decode.DecodeError as e:
          cached = (r, None)
          failed.add(r)
          log.warning('%s', e)
      frames = cached[1]
      if frames is not None:
        indices = clip_indices(min(frame, len(frames) - 1), data.num_frames, data.frame_stride)
        video[row] = frames[indices]
    out = predict_fn(params, parallel.global_batch({'video': video}, mesh))
    for k, v in out.items():
      outputs.setdefault(k, []).append(
          np.asarray(multihost_utils.process_allgather(v, tiled=True)))
    shown.update(1)  # This batch's outputs are on the host.
  shown.close()
  unreadable = np.zeros(len(records), np.bool_)
  unreadable[sorted(failed)] = True
  everywhere = np.asarray(multihost_utils.process_allgather(unreadable))
  failed = set(np.flatnonzero(everywhere.reshape(-1, len(records)).any(0)).tolist())
  return {k: np.concatenate(v)[:len(items)] for k, v in outputs.items()}, failed


def _ground_truth(annotation, frame: int) -> dict:
  boxes, labels = frame_boxes(annotation, frame)
  crowd, crowd_labels = frame_boxes(annotation, frame, crowd=True)
  return {'boxes': np.concatenate([boxes, crowd]), 'labels': np.concatenate([labels, crowd_labels]),
          'iscrowd': np.r_[np.zeros(len(boxes)), np.ones(len(crowd))].astype(np.int64)}


def _gt_tracks(annotation) -> dict[int, np.ndarray]:
  """{frame: rows [N, 5] (x0, y0, x1, y1, track id)} of the boxes with a track id."""
  boxes = np.asarray(annotation['boxes'], np.float64).reshape(-1, 4)
  ids, frames = np.asarray(annotation['track_ids']), np.asarray(annotation['box_frames'])
  rows = {t: [] for t in range(annotation['num_frames'])}
  for box, track, t in zip(boxes, ids, frames):
    if track >= 0:
      rows[int(t)].append([*box, track])
  return {t: np.asarray(r, np.float64).reshape(-1, 5) for t, r in rows.items()}


def _without_crowd(rows: np.ndarray, crowd: np.ndarray) -> np.ndarray:
  if not len(rows) or not len(crowd):
    return rows
  return rows[box_iou(rows[:, :4], crowd).max(axis=1) < CROWD_IOU]


def score(records: Sequence[Record], items, detections: list[dict], class_names, *,
          tracker: dict, label_mode: str = 'box', multi_label: list[dict] | None = None) -> dict:
  """COCO box metrics over every (record, frame) of `items` and MOT metrics over the videos.

  `detections[i]` is frame items[i]'s {'boxes' [M, 4] in the annotation's
  pixels, 'scores' [M], 'labels' [M]}, one label per box: these are tracked.
  COCO scores them as they are (`label_mode` 'box'), after track-level voting
  ('track', detection_vote.py), or scores `multi_label`, the same frames'
  (box, class) pairs ('multi'); then 'box_label_mAP' / '_AP50' give the
  first, so what the mode changed is on record.
  """
  from vidjax.metrics import detection as box_metrics  # pycocotools and trackeval: when scoring.
  from vidjax.metrics import tracking
  if label_mode not in LABEL_MODES:
    raise ValueError(f"detection.label_mode must be one of {', '.join(LABEL_MODES)}, "
                     f"got '{label_mode}'")
  if label_mode == 'multi' and multi_label is None:
    raise ValueError("label_mode 'multi' needs the multi-label detections")
  by_video: dict[int, dict[int, int]] = {}
  for i, (r, frame) in enumerate(items):
    by_video.setdefault(r, {})[frame] = i
  scored, gt, pred = list(detections), {}, {}
  for r, frames in by_video.items():
    note = records[r].annotation
    has_tracks = note['num_frames'] >= 2 and np.any(np.asarray(note['track_ids']) >= 0)
    # One frame: a vote over a single detection is that detection's own label.
    if not has_tracks and (label_mode != 'track' or note['num_frames'] < 2):
      continue
    mine = {frame: detections[i] for frame, i in frames.items()}
    matches: dict = {}
    tracks = track_video({f: (d['boxes'], d['scores'], d['labels']) for f, d in mine.items()},
                         matches=matches, **tracker)
    if label_mode == 'track':
      voted, tracks = detection_vote.relabel(mine, tracks, matches)
      for frame, i in frames.items():
        scored[i] = voted[frame]
    if has_tracks:
      name = records[r].video_id or str(r)
      gt[name] = _gt_tracks(note)
      pred[name] = {t: _without_crowd(rows[:, :6], frame_boxes(note, t, crowd=True)[0])
                    for t, rows in tracks.items()}
  truth = [_ground_truth(records[r].annotation, frame) for r, frame in items]
  coco_truth = box_metrics.coco_ground_truth(truth, class_names)
  predictions = box_metrics.coco_results(multi_label if label_mode == 'multi' else scored)
  result = box_metrics.coco_eval(coco_truth, predictions)
  if label_mode != 'box':
    per_box = box_metrics.coco_eval(coco_truth, box_metrics.coco_results(detections))
    result['box_label_mAP'], result['box_label_AP50'] = per_box['mAP'], per_box['AP50']
  agnostic = box_metrics.coco_eval(*box_metrics.class_agnostic(coco_truth, predictions))
  result['agnostic_mAP'], result['agnostic_AP50'] = agnostic['mAP'], agnostic['AP50']
  mot = tracking.mot_metrics(gt, pred) if gt else {}
  result.update({k: mot.get(k) for k in ('HOTA', 'DetA', 'AssA', 'MOTA', 'IDF1', 'IDSW')})
  result['num_tracked_videos'] = len(gt)
  result['predictions'] = predictions
  result['images'] = [(records[r].video_id, int(frame)) for r, frame in items]
  return result


def evaluate_split(predict_fn, params, records: Sequence[Record], class_names, config,
                   mesh, split: str = '') -> dict:
  """The task's evaluation of a split's records (the same list on every process).

  `split` names the progress bar only.
  """
  if not records:
    raise ValueError('the split has no videos')
  items = [(r, t) for r, record in enumerate(records)
           for t in range(int(record.annotation['num_frames']))]
  outputs, failed = _run_network(predict_fn, params, records, items, config, mesh,
                                 f'evaluate {split}'.strip())
  data, kept = config.data, []
  sets = {prefix: [] for prefix in ('', 'multi_label_') if f'{prefix}valid' in outputs}
  for i, (r, frame) in enumerate(items):
    if r in failed:
      continue
    note = records[r].annotation
    for prefix, detections in sets.items():
      valid = outputs[f'{prefix}valid'][i]
      boxes = scale_boxes(outputs[f'{prefix}boxes'][i][valid], (data.height, data.width),
                          (note['height'], note['width']))
      detections.append({'boxes': boxes, 'scores': outputs[f'{prefix}scores'][i][valid],
                         'labels': outputs[f'{prefix}labels'][i][valid]})
    kept.append((r, frame))
  result = score(records, kept, sets[''], class_names, tracker=tracker_kwargs(config),
                 label_mode=config.detection.label_mode, multi_label=sets.get('multi_label_'))
  result.update(num_videos=len(records) - len(failed), num_frames=len(kept),
                num_failed=len(failed))
  return result
