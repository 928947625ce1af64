"""What a localization run leaves behind, and `--mode predict` on a long video.

The workdir gets results.json (mAP per tIoU, per-class AP, segmentation
metrics), `predictions_<split>.json` in ActivityNet's results format (score
it with the official tools if you like), `per_class_ap_test.txt`, the
training curves and a timeline of a few test videos: ground truth above the
prediction, one colour per class.
"""
from __future__ import annotations

import json
import pathlib

import jax
import numpy as np

from vidjax import report
from vidjax.data import decode, registry
from vidjax.errors import UserError
from vidjax.metrics import localization as tad_metrics
from vidjax.tasks import predict_failures as failures

CURVE_PANELS = {'loss': ('train/loss', 'train/class_loss', 'train/offset_loss',
                         'train/segment_loss'),
                'mAP': ('eval/average_map', 'eval/map_0.5', 'eval/f1_50'),
                'learning rate': ('train/learning_rate',)}
TIMELINE_VIDEOS = 4
SHOWN_SCORE = 0.3  # Timelines draw predictions at least this confident.


def describe(result: dict) -> str:
  line = (f"mAP {result['average_map']:.4f} (" +
          ' '.join(f'{t:g}:{m:.3f}' for t, m in zip(result['tious'], result['map'])) + ')')
  if 'segmentation' in result:
    seg = result['segmentation']
    line += f", frames: acc {seg['accuracy']:.3f} edit {seg['edit']:.3f} F1@50 {seg['f1@50']:.3f}"
  return line + f" ({result['num_videos']} videos, {result['num_failed']} left out)"


def split_fields(result: dict) -> dict:
  return {'average_map': result['average_map'],
          'map': {f'{t:g}': m for t, m in zip(result['tious'], result['map'])},
          'per_class_ap': result['per_class_ap'],
          'segmentation': result.get('segmentation'),
          'num_videos': result['num_videos'], 'num_failed': result['num_failed']}


def write_report(workdir: pathlib.Path, final: dict, task, history_path: pathlib.Path):
  """(results.json fields, console rows, files written)."""
  files = {'curves': workdir / 'training_curves.png'}
  report.plot_curves(report.read_history(history_path), files['curves'], CURVE_PANELS)
  for split, result in final.items():
    files[f'predictions_{split}'] = workdir / f'predictions_{split}.json'
    files[f'predictions_{split}'].write_text(json.dumps(
        tad_metrics.activitynet_results(result['predictions'], task.class_names)))
  files['per_class'] = workdir / 'per_class_ap_test.txt'
  files['per_class'].write_text(tad_metrics.per_class_table(final['test']) + '\n')
  files['timeline'] = workdir / 'timeline_test.png'
  test = final['test']
  shown = test['ground_truth_videos'][:TIMELINE_VIDEOS]
  plot_timelines(files['timeline'], shown, test['predictions'], test['ground_truth'],
                 task.class_names, f"{task.config.model.name}: test, mAP {test['average_map']:.3f}")
  failed = len(task.train_failures.failed) if task.train_failures is not None else 0
  results = {'tious': final['test']['tious'], 'train_failed_videos': failed,
             **{split: split_fields(r) for split, r in final.items()}}
  rows = [(f'{split} mAP', describe(r)) for split, r in final.items()]
  return results, rows, files


def evaluate_rows(results: dict, split_names: dict) -> list:
  return [(f'{split_names[split]} mAP', describe(r)) for split, r in results.items()]


def evaluation_fields(results: dict, split_names: dict) -> dict:
  return {split: {'split': split_names[split], **split_fields(r)} for split, r in results.items()}


def plot_timelines(path, videos, predictions, ground_truth, class_names, title: str) -> None:
  """One row pair per video: ground truth (top) and predictions >= SHOWN_SCORE (bottom).

  `videos` is [(video_id, duration)]; a prediction's bar is shaded by its score.
  """
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  colours = plt.get_cmap('tab10' if len(class_names) <= 10 else 'tab20')
  fig, axes = plt.subplots(len(videos), 1, figsize=(12, 1.2 * len(videos) + 0.8), squeeze=False)
  for ax, (video_id, duration) in zip(axes[:, 0], videos):
    for row, items, y in (('truth', ground_truth, 1), ('predicted', predictions, 0)):
      for item in items:
        if item['video_id'] != video_id or item.get('score', 1.0) < SHOWN_SCORE:
          continue
        t0, t1 = item['segment']
        ax.barh(y, t1 - t0, left=t0, height=0.8, color=colours(item['label'] % colours.N),
                alpha=float(item.get('score', 1.0)), edgecolor='black', linewidth=0.3)
    ax.set_yticks([0, 1], ['predicted', 'truth'], fontsize=7)
    ax.set_xlim(0, duration)
    ax.set_title(video_id, fontsize=8, loc='left')
  axes[-1, 0].set_xlabel('seconds')
  handles = [matplotlib.patches.Patch(color=colours(i % colours.N), label=n)
             for i, n in enumerate(class_names)]
  fig.legend(handles=handles, loc='upper right', fontsize=7, ncol=min(len(class_names), 5))
  fig.suptitle(title, fontsize=9, x=0.01, ha='left')
  fig.tight_layout(rect=(0, 0, 1, 0.93))
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _known_truth(task, video_id: str):
  """The annotated segments of `video_id` if any split of the dataset has it, else None."""
  for split in ('test', 'eval', 'train'):
    try:
      found = registry.load_split(task.config.data, task.split_names[split], task.config.seed)
    except (UserError, ValueError):
      continue
    for record in found.records:
      if record.video_id == video_id:
        return record.annotation
  return None


def _read_features(path: str, feature_dim: int | None) -> np.ndarray:
  """float32 [T, C] snippet features from a .npy, or Unreadable saying why not."""
  features = failures.load_npy(path)
  if features.ndim != 2 or not len(features) or (feature_dim and features.shape[1] != feature_dim):
    raise failures.Unreadable(path, f'has shape {list(features.shape)}; expected [T, '
                              f"{feature_dim or 'C'}] snippet features, T >= 1")
  return features.astype(np.float32)


def predict(task, paths: list[str], restore, workdir: pathlib.Path) -> list:
  """Finds the actions in each readable video (or .npy of its snippet features); prints and
  writes them. Unreadable files are skipped and listed (vidjax/tasks/predict_failures.py)."""
  from vidjax import config as config_lib
  from vidjax import extract
  from vidjax.tasks import localization_eval as evaluation
  from vidjax.tasks import localization as localization_task
  from vidjax.tasks.localization_targets import SnippetGrid
  loc = task.config.localization
  out = workdir / 'predictions'
  skipped = failures.Skipped(paths)
  existing = skipped.existing(paths)
  if not existing:
    raise skipped.nothing_read(out)
  needs_backbone = any(not p.endswith('.npy') for p in existing)
  if needs_backbone and not (loc.backbone_config and loc.backbone_workdir):
    raise UserError('--mode predict on a video needs the classifier that made the features: set '
                    '--config.localization.backbone_config and backbone_workdir (or pass .npy features)')
  model, params, what = restore()
  params = jax.device_put(params, jax.devices()[0])
  predict_fn = jax.jit(lambda p, b: localization_task.eval_step(p, b, model=model))
  extractor = None
  if needs_backbone:
    extractor = extract.Extractor(config_lib.load(loc.backbone_config), loc.backbone_workdir)
  out.mkdir(parents=True, exist_ok=True)
  found_all = []
  for path in existing:
    video_id = pathlib.Path(path).stem
    try:
      if path.endswith('.npy'):
        features = _read_features(path, task.feature_dim)
        grid = SnippetGrid(loc.feature_stride, loc.feature_window, loc.feature_fps or 30.0)
      else:
        features, _ = extractor(path)
        grid = SnippetGrid(extractor.stride, extractor.window, extract.video_fps(path))
    except failures.Unreadable as e:
      skipped.add(path, e.reason)
      continue
    except decode.DecodeError as e:
      skipped.add(path, f'cannot be decoded: {e.reason}')
      continue
    except ValueError as e:  # A video shorter than one snippet.
      skipped.add(path, f'cannot be used: {e}')
      continue
    num_steps = evaluation.bucket_length(len(features), loc.max_seq_len)
    batch = {'features': np.zeros((1, num_steps, features.shape[1]), np.float32),
             'mask': np.zeros((1, num_steps), bool)}
    batch['features'][0, :len(features)], batch['mask'][0, :len(features)] = features, True
    outputs = jax.tree.map(lambda x: np.asarray(x)[0], predict_fn(params, batch))
    duration = float(grid.to_seconds(len(features) - 1) + 0.5 * grid.window / grid.fps)
    found = evaluation.decode_video(
        outputs['scores'], outputs['offsets'], num_steps=num_steps,
        levels=task.config.model.temporal_detector.levels, valid_steps=len(features), grid=grid,
        duration=duration, config=loc)
    predictions = [{'video_id': video_id, 'segment': tuple(map(float, s)), 'label': int(l),
                    'score': float(c)}
                   for s, c, l in zip(found['segments'], found['scores'], found['labels'])]
    shown = [p for p in predictions if p['score'] >= SHOWN_SCORE] or predictions[:5]
    print(f'{path} ({duration:.1f} s, {what}): {len(shown)} segments, score >= {SHOWN_SCORE} '
          f'(all {len(predictions)} in the JSON)')
    for p in sorted(shown, key=lambda p: p['segment'][0]):  # In time order.
      print(f"  {p['segment'][0]:8.2f} s  {p['segment'][1]:8.2f} s  "
            f"{task.class_names[p['label']]:<20s} {p['score']:.3f}")
    truth = _known_truth(task, video_id)
    ground_truth = [] if truth is None else [
        {'video_id': video_id, 'segment': tuple(map(float, s)), 'label': int(l)}
        for s, l in zip(truth.get('segments', []), truth.get('labels', []))]
    (out / f'{video_id}_activitynet.json').write_text(json.dumps(
        tad_metrics.activitynet_results(predictions, task.class_names), indent=1))
    plot_timelines(out / f'{video_id}_timeline.png', [(video_id, duration)], predictions,
                   ground_truth, task.class_names,
                   f'{video_id}: ' + ('ground truth and prediction' if truth is not None
                                      else 'prediction (no ground truth known)'))
    print(f"  written: {out / f'{video_id}_activitynet.json'}, {out / f'{video_id}_timeline.png'}")
    found_all.append(predictions)
  skipped.finish(out, f'{workdir} {what}')
  return found_all
