"""Which videos a split holds: `config.data` -> records and class names.

Generated datasets (the embedded action set, the appearance set) are made on
first use and cached under `data.root`, or `$VIDJAX_CACHE`, or `~/.cache/vidjax`.
Real datasets are read from the layout their users already have on disk.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib

from vidjax.data import datasets, synthetic_actions, synthetic_appearance
from vidjax.errors import UserError


# Datasets vidjax renders itself: name -> ensure_dataset(root, clips_per_class=...).
GENERATED = {'synthetic_actions': synthetic_actions.ensure_dataset,
             'synthetic_appearance': synthetic_appearance.ensure_dataset}


@dataclasses.dataclass(frozen=True)
class Split:
  records: list  # [(path, label)] with absolute paths.
  class_names: list[str]
  missing: list[str]


def cache_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get('VIDJAX_CACHE', '~/.cache/vidjax')).expanduser()


def dataset_root(data) -> pathlib.Path:
  if data.root:
    return pathlib.Path(data.root).expanduser()
  if data.dataset in GENERATED:
    return cache_dir() / data.dataset
  raise UserError(f"data.root is empty; set --config.data.root to your {data.dataset} directory")


def _layout(data) -> tuple[str, dict]:
  """The `datasets.load_dataset` kind and options of `data.dataset`."""
  kind = data.dataset
  if kind in GENERATED:
    return 'csv', {}
  if kind == 'kinetics':  # The 400, 600 and 700 releases share one layout.
    return 'kinetics400', {}
  if kind == 'ucf101':
    return kind, {'fold': data.ucf101_fold}
  return kind, {}


def load_split(data, split: str) -> Split:
  """The records of one split; listed-but-absent files are logged by `datasets`."""
  root = dataset_root(data)
  if data.dataset in GENERATED:
    GENERATED[data.dataset](root, clips_per_class=tuple(data.synthetic_clips_per_class))
  kind, options = _layout(data)
  try:
    found = datasets.load_dataset(kind, str(root), split, **options)
  except ValueError as e:  # Layout problems are the user's to fix: one line.
    hint = ''
    if ' split must be ' in str(e):
      hint = ' (set data.train_split, data.eval_split and data.test_split)'
    raise UserError(f'{e}{hint}') from None
  records = [(str(pathlib.Path(r.path)), int(r.label)) for r in found.records]
  return Split(records, list(found.class_names), list(found.missing))
