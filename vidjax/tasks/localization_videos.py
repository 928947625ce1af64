"""A split of untrimmed videos joined with their snippet features, checked once.

The registry gives records with segments in seconds; the features folder
gives `<video_id>.npy` and, when vidjax extracted them, features.json with
each video's fps and frame count. Here they meet: every video gets its
snippet grid (stride, window, fps), its duration and its ground truth. A
video without features, or with features too short to hold one snippet, is
counted and left out with a one-line reason -- never a stop mid-run, unless
more than data.max_failed_fraction of the split is lost.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import pathlib

import numpy as np

from vidjax.data import pipeline, registry
from vidjax.data.layouts import snippet_features
from vidjax.data.records import Record
from vidjax.errors import UserError
from vidjax.tasks.localization_eval import Video, frame_labels_from_segments
from vidjax.tasks.localization_targets import SnippetGrid

log = logging.getLogger(__name__)


@dataclasses.dataclass
class SplitVideos:
  videos: list[Video]
  class_names: list[str]
  feature_dim: int
  failed: list[str]  # One line per video left out.
  layout: str = 'TC'  # How the files hold [time, channels]: features.json's, else the config's.

  def training_records(self) -> list[Record]:
    """Records for the training stream: features path, segments in snippets."""
    records = []
    for v in self.videos:
      segments = v.grid.to_snippets(v.segments).astype(np.float32).reshape(-1, 2)
      records.append(Record(v.features_path, {'segments': segments,
                                              'labels': np.asarray(v.labels, np.int32)},
                            v.video_id))
    return records


def features_dir(config) -> pathlib.Path:
  loc = config.localization
  if loc.features_dir:
    folder = pathlib.Path(loc.features_dir).expanduser()
  else:
    folder = registry.dataset_root(config.data) / 'features'
  if not folder.is_dir():
    raise UserError(f"features folder '{folder}' not found; set --config.localization.features_dir "
                    '(make features with --mode extract, see the README)')
  return folder


def _feature_file(folder: pathlib.Path, video_id: str) -> pathlib.Path | None:
  for name in (f'{video_id}.npy', f'{video_id}.npz', f'v_{video_id}.npy'):
    if (folder / name).is_file():
      return folder / name
  return None


def load(config, split: str, class_names: list[str] | None = None) -> SplitVideos:
  """The videos of `split` with features, in the task's class order (the train split's)."""
  loc = config.localization
  found = registry.load_split(config.data, split, config.seed)
  if class_names is not None and list(found.class_names) != list(class_names):
    raise UserError(f"split '{split}' has classes {found.class_names[:3]}... but training has "
                    f'{class_names[:3]}...; give every split the same class list')
  folder = features_dir(config)
  index_path = folder / 'features.json'
  index = json.loads(index_path.read_text()) if index_path.is_file() else {}
  stride = float(index.get('stride', loc.feature_stride))
  window = float(index.get('window', loc.feature_window))
  per_video = index.get('videos', {})
  layout = index.get('layout', loc.feature_layout)
  videos, failed, dim = [], [], None
  for record in found.records:
    ann = record.annotation
    path = _feature_file(folder, record.video_id)
    if path is None:
      reason = index.get('skipped', {}).get(record.video_id, 'no features file')
      failed.append(f'{record.video_id}: {reason}')
      continue
    try:
      x = snippet_features.read_features(str(path), layout=layout,
                                         feature_dim=loc.feature_dim or dim)
    except ValueError as e:
      failed.append(f'{record.video_id}: {str(e).splitlines()[0]}')
      continue
    if len(x) < 1:
      failed.append(f'{record.video_id}: features hold no snippet (video shorter than one snippet)')
      continue
    if dim is not None and x.shape[1] != dim:
      failed.append(f'{record.video_id}: {x.shape[1]} feature channels, not {dim}')
      continue
    dim = x.shape[1]
    info = per_video.get(record.video_id, {})
    fps = loc.feature_fps or info.get('fps') or ann.get('fps')
    if not fps:
      raise UserError(f"no fps for video '{record.video_id}'; set --config.localization.feature_fps")
    grid = SnippetGrid(stride, window, float(fps))
    duration = ann.get('duration') or (info.get('num_frames') or
                                       (len(x) - 1) * stride + window) / float(fps)
    segments = np.asarray(ann.get('segments', np.zeros((0, 2))), np.float64).reshape(-1, 2)
    labels = np.asarray(ann.get('labels', np.zeros((0,))), np.int64)
    frames = ann.get('frame_labels')
    if frames is None:
      num_frames = info.get('num_frames') or int(round(duration * fps))
      frames = frame_labels_from_segments(segments, labels, num_frames, fps)
    videos.append(Video(record.video_id, str(path), len(x), grid, float(duration), segments,
                        labels, np.asarray(frames, np.int32)))
  total = len(found.records)
  if failed:
    log.warning("%s: %d of %d videos left out, e.g. %s", split, len(failed), total, failed[0])
  if total and len(failed) > config.data.max_failed_fraction * total:
    raise pipeline.DataError(f"{len(failed)} of {total} videos of split '{split}' have no usable "
                             f'features (e.g. {failed[0]}); run --mode extract or fix '
                             'localization.features_dir')
  no_action = sum(1 for v in videos if not len(v.segments))
  if no_action:
    log.info('%s: %d of %d videos hold no action (kept: they teach what background is)',
             split, no_action, len(videos))
  return SplitVideos(videos, list(found.class_names), int(dim or 0), failed, layout)
