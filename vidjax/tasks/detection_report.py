"""What a detection run leaves behind, and `--mode predict` on a video.

The workdir gets results.json (COCO mAP, AP50, AP75, AR100, per-class AP and
AP50, and mAP / AP50 with every box in one class;
HOTA, MOTA and IDF1 of the tracks; per split), `predictions_<split>.json`
(COCO results, with the (video, frame) of each image id), per_class_ap_test.txt
and the training curves. `--mode predict --video v.mp4` writes, under
predictions/, v_tracks.mp4 (boxes, class names and track ids drawn),
v_mot.txt (MOTChallenge results) and v_coco.json (COCO results, image id =
0-based frame, category_id = the class's 0-based position in classes.json,
not the dataset's own category id), and prints how many tracks and boxes
of each class it found.
"""
from __future__ import annotations

import json
import pathlib

import jax
import numpy as np

from vidjax import report
from vidjax.data import decode
from vidjax.tasks import predict_failures as failures

SCALARS = ('mAP', 'AP50', 'AP75', 'AR100', 'HOTA', 'MOTA', 'IDF1')
FIELDS = SCALARS + ('per_class_AP', 'per_class_AP50', 'agnostic_mAP', 'agnostic_AP50',
                    'box_label_mAP', 'box_label_AP50', 'DetA', 'AssA', 'IDSW', 'num_videos',
                    'num_frames', 'num_tracked_videos', 'num_failed')
CURVE_PANELS = {'loss': ('train/loss', 'train/box', 'train/obj', 'train/cls'),
                'eval': ('eval/mAP', 'eval/AP50', 'eval/HOTA', 'eval/IDF1'),
                'learning rate': ('train/learning_rate',)}


def _number(value, digits: int = 3) -> str:
  return 'n/a' if value is None else f'{value:.{digits}f}'


def describe(result: dict) -> str:
  line = (f"mAP {_number(result['mAP'], 4)} AP50 {_number(result['AP50'])} "
          f"AP75 {_number(result['AP75'])} AR100 {_number(result['AR100'])}")
  if result.get('box_label_mAP') is not None:  # mAP above is label_mode's.
    line += (f" (each box its own best class: mAP {_number(result['box_label_mAP'], 4)} "
             f"AP50 {_number(result['box_label_AP50'])})")
  if result.get('HOTA') is not None:
    line += (f"; HOTA {_number(result['HOTA'])} MOTA {_number(result['MOTA'])} "
             f"IDF1 {_number(result['IDF1'])}")
  return line + (f" ({result['num_videos']} videos, {result['num_frames']} frames, "
                 f"{result['num_failed']} unreadable)")


def split_fields(result: dict) -> dict:
  return {k: result.get(k) for k in FIELDS}


def per_class_table(result: dict) -> str:
  """AP@[.5:.95] and AP50 per class, then of all boxes as one class (what naming costs)."""
  rows = [f"{'class':<24s} {'AP':>6s} {'AP50':>6s} {'boxes':>7s}"]
  ap50, counts = result['per_class_AP50'], result['num_ground_truth']
  for name, ap in result['per_class_AP'].items():
    rows.append(f"{name:<24s} {_number(ap):>6s} {_number(ap50[name]):>6s} {counts[name]:>7d}")
  rows.append(f"{'(any class)':<24s} {_number(result['agnostic_mAP']):>6s} "
              f"{_number(result['agnostic_AP50']):>6s} {sum(counts.values()):>7d}")
  return '\n'.join(rows)


def write_report(workdir: pathlib.Path, final: dict, task, history_path: pathlib.Path):
  """(results.json fields, console rows, files written)."""
  files = {'curves': workdir / 'training_curves.png'}
  report.plot_curves(report.read_history(history_path), files['curves'], CURVE_PANELS)
  for split, result in final.items():
    path = files[f'predictions_{split}'] = workdir / f'predictions_{split}.json'
    path.write_text(json.dumps({'images': [{'id': i, 'video_id': v, 'frame': f}
                                           for i, (v, f) in enumerate(result['images'])],
                                'categories': [{'id': k, 'name': n}
                                               for k, n in enumerate(task.class_names)],
                                'results': result['predictions']}))
  files['per_class'] = workdir / 'per_class_ap_test.txt'
  files['per_class'].write_text(per_class_table(final['test']) + '\n')
  failed = len(task.train_failures.failed) if task.train_failures is not None else 0
  results = {'train_failed_videos': failed,
             **{split: split_fields(r) for split, r in final.items()}}
  rows = [(f'{split} boxes / tracks', describe(r)) for split, r in final.items()]
  return results, rows, files


def draw(frames: np.ndarray, tracks: dict, class_names) -> np.ndarray:
  """Frames [F, H, W, 3] with each track's box, class and id drawn, one colour per id."""
  from PIL import Image, ImageDraw
  import matplotlib
  colours = matplotlib.colormaps['tab20']
  out = np.empty_like(frames)
  for t, frame in enumerate(frames):
    image = Image.fromarray(frame)
    pen = ImageDraw.Draw(image)
    for x0, y0, x1, y1, track, _, label in tracks.get(t, np.zeros((0, 7))):
      colour = tuple(int(255 * c) for c in colours(int(track) % 20)[:3])
      pen.rectangle([x0, y0, x1, y1], outline=colour)
      pen.text((x0 + 1, max(y0 - 10, 0)), f'{class_names[int(label)]} {int(track)}', fill=colour)
    out[t] = np.asarray(image)
  return out


def _detect(task, predict_fn, params, small: np.ndarray, native_size) -> list[dict]:
  """Every frame's detections, in the video's own pixels."""
  from vidjax.tasks.detection_eval import clip_indices
  from vidjax.tasks.detection_targets import scale_boxes
  data, batch = task.config.data, task.config.eval.batch_size
  found = []
  for first in range(0, len(small), batch):
    frames = list(range(first, min(first + batch, len(small))))
    video = np.zeros((batch, *task.input_shape), np.uint8)
    for row, t in enumerate(frames):
      video[row] = small[clip_indices(t, data.num_frames, data.frame_stride)]
    out = jax.tree.map(np.asarray, predict_fn(params, {'video': video}))
    for row in range(len(frames)):
      valid = out['valid'][row]
      found.append({'boxes': scale_boxes(out['boxes'][row][valid], (data.height, data.width),
                                         native_size),
                    'scores': out['scores'][row][valid], 'labels': out['labels'][row][valid]})
  return found


def predict(task, paths: list[str], restore, workdir: pathlib.Path) -> list:
  """Detects and tracks the objects of each readable video; prints counts, writes the three
  files. Unreadable videos are skipped and listed (vidjax/tasks/predict_failures.py)."""
  from vidjax import extract
  from vidjax.data import synthetic_actions
  from vidjax.metrics import detection as box_metrics
  from vidjax.metrics import tracking
  from vidjax.tasks.detection_eval import tracker_kwargs
  from vidjax.tasks import detection_vote
  from vidjax.tasks.detection_tracker import track_video
  out = workdir / 'predictions'
  skipped = failures.Skipped(paths)
  existing = skipped.existing(paths)
  if not existing:
    raise skipped.nothing_read(out)
  model, params, what = restore()
  params = jax.device_put(params, jax.devices()[0])
  predict_fn = jax.jit(task.predict_step(model))
  data = task.config.data
  out.mkdir(parents=True, exist_ok=True)
  everything = []
  for path in existing:
    name = pathlib.Path(path).stem
    try:
      frames = decode.read_frames(path)  # [F, H, W, 3], native size: drawn on.
      small = decode.read_frames(path, height=data.height, width=data.width)
    except decode.DecodeError as e:
      skipped.add(path, f'cannot be decoded: {e.reason}')
      continue
    found = _detect(task, predict_fn, params, small, frames.shape[1:3])
    matches: dict = {}
    tracks = track_video([(d['boxes'], d['scores'], d['labels']) for d in found],
                         matches=matches, **tracker_kwargs(task.config))
    if task.config.detection.label_mode == 'track':  # One class per track, drawn and written.
      voted, tracks = detection_vote.relabel(dict(enumerate(found)), tracks, matches)
      found = [voted[t] for t in range(len(found))]
    files = {'tracks': out / f'{name}_tracks.mp4', 'mot': out / f'{name}_mot.txt',
             'coco': out / f'{name}_coco.json'}
    even = frames[:, :frames.shape[1] // 2 * 2, :frames.shape[2] // 2 * 2]  # x264's 4:2:0.
    synthetic_actions.write_mp4(files['tracks'], draw(even, tracks, task.class_names),
                                fps=max(1, round(extract.video_fps(path))))
    tracking.write_mot(files['mot'], {t: rows[:, :6] for t, rows in tracks.items()})
    files['coco'].write_text(json.dumps(box_metrics.coco_results(found)))
    print(f'{path} ({len(frames)} frames, {what}): tracks and boxes (score >= '
          f'{task.config.detection.score_threshold}) per class')
    rows = np.concatenate([r for r in tracks.values()] + [np.zeros((0, 7))])
    for k, class_name in enumerate(task.class_names):
      mine = rows[rows[:, 6] == k]
      boxes = sum(int((d['labels'] == k).sum()) for d in found)
      print(f'  {class_name:<20s} {len(np.unique(mine[:, 4])):4d} tracks {boxes:6d} boxes')
    print(f"  written: {', '.join(str(p) for p in files.values())}")
    everything.append({'detections': found, 'tracks': tracks})
  skipped.finish(out, f'{workdir} {what}')
  return everything
