"""Kinetics-400/600/700: the official CSVs and the downloaded clips.

One loader serves all three sizes: they share the CSV columns and the clip
naming, and differ only in their classes.
"""
from __future__ import annotations

import csv
import os

from vidjax.data.layouts.common import VideoDataset, collect

_KINETICS_CSV_NAMES = {'train': ('train',), 'val': ('val', 'validate'),
                       'test': ('test',)}


def _kinetics_csv(notes: str, split: str) -> str | None:
  for name in _KINETICS_CSV_NAMES[split]:
    path = os.path.join(notes, f'{name}.csv')
    if os.path.exists(path):
      return path
  return None


def _read_kinetics_csv(path: str) -> list[dict[str, str]]:
  with open(path, newline='') as f:
    rows = list(csv.DictReader(f))
  needed = {'label', 'youtube_id', 'time_start', 'time_end'}
  if rows and not needed <= set(rows[0]):
    raise ValueError(f'{path} lacks the columns '
                     f'{sorted(needed - set(rows[0]))} (unlabelled test list?)')
  return rows


def load_kinetics(root: str, split: str, *, annotation_dir: str = 'annotations',
                  video_dir: str = '') -> VideoDataset:
  """Kinetics-400/600/700: the official CSVs and the downloaded clips.

  Args:
    root: holds `annotation_dir` and `video_dir`.
    split: 'train', 'val' or 'test'.
    annotation_dir: holds {split}.csv (val.csv or validate.csv for 'val') with
      the columns label,youtube_id,time_start,time_end,split.
    video_dir: holds {split}/{label}/{youtube_id}_{start:06d}_{end:06d}.mp4.
      Also found: label folders with '_' for ' ', and flat {split}/ folders
      (as in the CVDF copies).

  Class names are sorted, the official order, and come from train.csv when
  it exists so that every split shares the indices. `video_id` is the file
  stem; the clips absent on disk are listed in `missing`.
  """
  if split not in _KINETICS_CSV_NAMES:
    raise ValueError(f"Kinetics split must be 'train', 'val' or 'test', "
                     f'got {split!r}')
  notes = os.path.join(root, annotation_dir)
  csv_path = _kinetics_csv(notes, split)
  if csv_path is None:
    raise ValueError(f'Kinetics annotations not found: expected '
                     f'{os.path.join(notes, split + ".csv")}')
  rows = _read_kinetics_csv(csv_path)
  train_csv = _kinetics_csv(notes, 'train')
  names_from = rows if train_csv in (None, csv_path) else _read_kinetics_csv(
      train_csv)
  class_names = sorted({r['label'] for r in names_from})
  lookup = {name: i for i, name in enumerate(class_names)}
  split_dir = os.path.join(root, video_dir, split)
  entries = []
  for r in rows:
    if r['label'] not in lookup:
      raise ValueError(f'label {r["label"]!r} in {csv_path} is not a class of '
                       f'{train_csv}')
    stem = (f'{r["youtube_id"]}_{int(float(r["time_start"])):06d}_'
            f'{int(float(r["time_end"])):06d}')
    name = stem + '.mp4'
    candidates = [os.path.join(split_dir, r['label'], name),
                  os.path.join(split_dir, r['label'].replace(' ', '_'), name),
                  os.path.join(split_dir, name)]
    entries.append((candidates, lookup[r['label']], stem))
  return collect(entries, class_names)
