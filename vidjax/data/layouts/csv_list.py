"""A plain `path,label` list: the way in for data without a published layout."""
from __future__ import annotations

import csv
import os
import re

from vidjax.data.layouts.common import VideoDataset, collect, require


def _detect_delimiter(header: str) -> str:
  for delimiter in ('\t', ',', ';', ' '):
    if delimiter in header:
      return delimiter
  raise ValueError(f'cannot tell the delimiter from the header {header!r}; '
                   'pass delimiter=')


def load_csv_list(root: str, split: str, *, list_file: str | None = None,
                  delimiter: str | None = None,
                  video_dir: str | None = None) -> VideoDataset:
  """A `path,label` list with a header line, e.g. ROOT/train.csv.

  Args:
    root: the dataset folder.
    split: names the list, ROOT/{split}.csv, .tsv or .txt, unless `list_file`.
    list_file: the list, relative to root (or absolute).
    delimiter: one character; detected from the header when None (tab, comma,
      semicolon, space, in that order).
    video_dir: the folder the listed paths are relative to; root when None.

  The header names the columns `path` and `label`; with other names the first
  two columns are used. A label is a class name or an integer index. Class
  order: ROOT/classes.txt (one name a line) when present, else sorted names,
  or for integer labels the indices themselves. `video_id` is the listed
  path without its extension.
  """
  if list_file is None:
    options = [f'{split}{ext}' for ext in ('.csv', '.tsv', '.txt')]
    list_file = next((o for o in options
                      if os.path.exists(os.path.join(root, o))), options[0])
  list_path = os.path.join(root, list_file)
  require(list_path, 'CSV list', f'{list_path} with a "path,label" header')
  video_dir = root if video_dir is None else os.path.join(root, video_dir)
  with open(list_path, newline='') as f:
    text = f.read().splitlines()
  if not text:
    raise ValueError(f'empty CSV list: {list_path}')
  delimiter = delimiter or _detect_delimiter(text[0])
  rows = [r for r in csv.reader(text, delimiter=delimiter) if r]
  header = [h.strip().lower() for h in rows[0]]
  path_col, label_col = ((header.index('path'), header.index('label'))
                         if 'path' in header and 'label' in header else (0, 1))
  pairs = [(r[path_col].strip(), r[label_col].strip()) for r in rows[1:]]

  classes_path = os.path.join(root, 'classes.txt')
  given = None
  if os.path.exists(classes_path):
    with open(classes_path) as f:
      given = [line.strip() for line in f if line.strip()]
  labels = [label for _, label in pairs]
  if labels and all(re.fullmatch(r'-?\d+', label) for label in labels):
    indices = [int(label) for label in labels]
    class_names = given or [str(i) for i in range(max(indices) + 1)]
    bad = [i for i in indices if not 0 <= i < len(class_names)]
    if bad:
      raise ValueError(f'label {bad[0]} in {list_path} is outside '
                       f'0..{len(class_names) - 1}')
  else:
    class_names = given or sorted(set(labels))
    lookup = {name: i for i, name in enumerate(class_names)}
    unknown = [label for label in labels if label not in lookup]
    if unknown:
      raise ValueError(f'label {unknown[0]!r} in {list_path} is not in '
                       f'{classes_path}')
    indices = [lookup[label] for label in labels]
  entries = [([os.path.join(video_dir, path)], index,
              os.path.splitext(path)[0])
             for (path, _), index in zip(pairs, indices)]
  return collect(entries, class_names)
