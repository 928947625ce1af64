"""Video datasets as lists of (path, label) read from the layouts people have.

Each loader reads one layout as it is distributed (UCF-101, Kinetics, Something-
Something-v2, or a plain CSV list) and returns the same `VideoDataset`, so the
input pipeline never needs to know which dataset it reads. Loaders only list
files: they never open a video, so loading Kinetics' 240k entries takes
seconds. A video listed in the annotations but absent on disk is not an error
(real Kinetics copies miss 5-10% of YouTube videos): it is left out of
`records`, kept in `missing`, and reported in one log line.

Use `load_dataset(kind, root, split, **options)`; the per-layout functions are
public for their docstrings, which say exactly which files they expect.
"""
from __future__ import annotations

import csv
import dataclasses
import difflib
import inspect
import json
import logging
import os
import re
from typing import Callable, Sequence


@dataclasses.dataclass(frozen=True)
class VideoRecord:
  """One labelled video. `video_id` is unique within its dataset."""
  path: str
  label: int
  video_id: str


@dataclasses.dataclass(frozen=True)
class VideoDataset:
  """The videos found on disk, the class names, and the listed-but-absent paths.

  `class_names[record.label]` is the name of a record's class.
  """
  records: list[VideoRecord]
  class_names: list[str]
  missing: list[str]

  def __len__(self) -> int:
    return len(self.records)

  def summary(self) -> str:
    """One line: videos, classes, and how many listed videos are missing."""
    listed = len(self.records) + len(self.missing)
    line = (f'{len(self.records)} videos, {len(self.class_names)} classes')
    if self.missing:
      line += (f', {len(self.missing)} of {listed} listed missing '
               f'({100 * len(self.missing) / listed:.1f}%), '
               f'e.g. {self.missing[0]}')
    return line


class _Listing:
  """Answers "does this file exist?" by listing each directory once.

  One `listdir` per class folder instead of one `stat` per video: much faster
  on network file systems, where Kinetics usually lives.
  """

  def __init__(self):
    self._names: dict[str, set[str]] = {}

  def exists(self, path: str) -> bool:
    folder, name = os.path.split(path)
    names = self._names.get(folder)
    if names is None:
      try:
        names = set(os.listdir(folder))
      except OSError:
        names = set()
      self._names[folder] = names
    return name in names


def _require(path: str, what: str, expected: str) -> None:
  if not os.path.exists(path):
    raise ValueError(f'{what} not found: expected {expected}')


def _collect(entries: Sequence[tuple[Sequence[str], int, str]],
             class_names: list[str]) -> VideoDataset:
  """Keeps the entries whose file exists; entries are (candidates, label, id).

  The first candidate that exists is used; a missing entry is reported under
  its first candidate, the layout's canonical path.
  """
  listing = _Listing()
  records, missing = [], []
  for paths, label, video_id in entries:
    found = next((p for p in paths if listing.exists(p)), None)
    if found is None:
      missing.append(paths[0])
    else:
      records.append(VideoRecord(found, label, video_id))
  return VideoDataset(records, class_names, missing)


# ------------------------------------------------------------------------- CSV

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
  _require(list_path, 'CSV list', f'{list_path} with a "path,label" header')
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
  return _collect(entries, class_names)


# --------------------------------------------------------------------- UCF-101

def load_ucf101(root: str, split: str, *, fold: int = 1,
                annotation_dir: str = 'ucfTrainTestlist',
                video_dir: str = 'UCF-101') -> VideoDataset:
  """UCF-101 as distributed: the official lists and the extracted videos.

  Args:
    root: holds `annotation_dir` and `video_dir` (both may be absolute).
    split: 'train' (trainlist0{fold}.txt) or 'test' (testlist0{fold}.txt).
    fold: the official train/test split, 1, 2 or 3.
    annotation_dir: with classInd.txt ("1 ApplyEyeMakeup"), the train lists
      ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1") and the test lists
      (path only; the label comes from the folder name).
    video_dir: holds ClassName/v_ClassName_gXX_cYY.avi.

  Labels are the classInd numbers minus one. Folder names are matched to class
  names ignoring case, because the official files spell "HandstandPushups"
  and "HandStandPushups" both ways.
  """
  if split not in ('train', 'test'):
    raise ValueError(f"UCF-101 split must be 'train' or 'test', got {split!r}")
  if fold not in (1, 2, 3):
    raise ValueError(f'UCF-101 fold must be 1, 2 or 3, got {fold!r}')
  notes = os.path.join(root, annotation_dir)
  class_file = os.path.join(notes, 'classInd.txt')
  _require(class_file, 'UCF-101 annotations', class_file)
  list_file = os.path.join(notes, f'{split}list0{fold}.txt')
  _require(list_file, 'UCF-101 split list', list_file)
  videos = os.path.join(root, video_dir)

  numbered = []
  with open(class_file) as f:
    for line in f:
      if line.strip():
        number, name = line.split()
        numbered.append((int(number), name))
  class_names = [name for _, name in sorted(numbered)]
  by_folder = {name.lower(): i for i, name in enumerate(class_names)}

  entries = []
  with open(list_file) as f:
    for line in f:
      parts = line.split()
      if not parts:
        continue
      rel = parts[0].replace('\\', '/')
      if len(parts) > 1:
        label = int(parts[1]) - 1
      else:
        folder = rel.split('/')[0].lower()
        if folder not in by_folder:
          raise ValueError(f'folder of {rel!r} in {list_file} is not a class '
                           f'in {class_file}')
        label = by_folder[folder]
      entries.append(([os.path.join(videos, rel)], label,
                      os.path.splitext(os.path.basename(rel))[0]))
  return _collect(entries, class_names)


# -------------------------------------------------------------------- Kinetics

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
  return _collect(entries, class_names)


# ---------------------------------------------------------- Something-Something

_SSV2_FILES = {'train': 'train.json', 'val': 'validation.json',
               'validation': 'validation.json'}


def ssv2_class_name(template: str) -> str:
  """'Putting [something] on [something]' -> 'Putting something on something'.

  The rule of the SSv2 release: "[something]" reads as "something", and other
  bracketed placeholders lose their brackets.
  """
  return template.replace('[something]', 'something').replace(
      '[', '').replace(']', '')


def load_ssv2(root: str, split: str, *, annotation_dir: str = 'labels',
              video_dir: str = '20bn-something-something-v2') -> VideoDataset:
  """Something-Something-v2 as distributed by 20BN / Qualcomm.

  Args:
    root: holds `annotation_dir` and `video_dir`.
    split: 'train' (train.json) or 'val' (validation.json); the test list has
      no labels.
    annotation_dir: holds labels.json ({"class name": "index"}) and the split
      lists ([{"id", "label", "template", "placeholders"}]).
    video_dir: holds {id}.webm.

  A video's label is its template with "[something]" read as "something" and
  other brackets dropped, looked up in labels.json. (The "label" field of a
  list entry is the filled-in sentence, "Putting a cup on a table", not a
  class.)
  """
  if split not in _SSV2_FILES:
    raise ValueError(f"Something-Something-v2 split must be 'train' or 'val', "
                     f'got {split!r}')
  notes = os.path.join(root, annotation_dir)
  labels_path = os.path.join(notes, 'labels.json')
  _require(labels_path, 'Something-Something-v2 annotations', labels_path)
  list_path = os.path.join(notes, _SSV2_FILES[split])
  _require(list_path, 'Something-Something-v2 split list', list_path)
  with open(labels_path) as f:
    indices = {name: int(i) for name, i in json.load(f).items()}
  class_names = [name for name, _ in sorted(indices.items(),
                                            key=lambda kv: kv[1])]
  with open(list_path) as f:
    items = json.load(f)
  videos = os.path.join(root, video_dir)
  entries = []
  for item in items:
    name = ssv2_class_name(item['template'])
    if name not in indices:
      raise ValueError(f'template {item["template"]!r} of video {item["id"]} '
                       f'is not in {labels_path}')
    entries.append(([os.path.join(videos, f'{item["id"]}.webm')],
                    indices[name], str(item['id'])))
  return _collect(entries, class_names)


# ----------------------------------------------------------------- entry point

_LOADERS: dict[str, Callable[..., VideoDataset]] = {
    'csv': load_csv_list,
    'ucf101': load_ucf101,
    'kinetics400': load_kinetics,
    'kinetics600': load_kinetics,
    'kinetics700': load_kinetics,
    'ssv2': load_ssv2,
}


def load_dataset(kind: str, root: str, split: str, **options) -> VideoDataset:
  """Reads a dataset layout; `kind` is one of the keys of `_LOADERS`.

  `options` are the keyword arguments of that kind's loader. Problems with
  the arguments or the layout are one-line `ValueError`s; videos listed but
  absent are reported in the log and in the result's `missing`.
  """
  if kind not in _LOADERS:
    close = difflib.get_close_matches(kind, _LOADERS, n=1)
    hint = f' (did you mean {close[0]!r}?)' if close else ''
    raise ValueError(f'unknown dataset kind {kind!r}{hint}; '
                     f'known: {", ".join(_LOADERS)}')
  loader = _LOADERS[kind]
  allowed = [p for p in inspect.signature(loader).parameters
             if p not in ('root', 'split')]
  for key in options:
    if key not in allowed:
      close = difflib.get_close_matches(key, allowed, n=1)
      hint = f' (did you mean {close[0]!r}?)' if close else ''
      raise ValueError(f'unknown option {key!r} for {kind}{hint}; '
                       f'known: {", ".join(allowed)}')
  if not os.path.isdir(root):
    raise ValueError(f'{kind} root not found: {root}')
  dataset = loader(root, split, **options)
  if dataset.missing:
    logging.getLogger(__name__).warning('%s %s: %s', kind, split,
                                        dataset.summary())
  return dataset


# ------------------------------------------------------------------ flip labels

# Words a mirror turns into each other. Not letter-bounded, so snake_case names
# (move_left) match too; the hyphenated forms come first so they win over "clockwise".
_MIRRORED = {'left': 'right', 'right': 'left', 'cw': 'ccw', 'ccw': 'cw',
             'counter-clockwise': 'clockwise', 'anti-clockwise': 'clockwise',
             'counterclockwise': 'clockwise', 'anticlockwise': 'clockwise',
             'clockwise': 'counterclockwise'}
_SIDE = re.compile(r'(?<![A-Za-z])(' + '|'.join(sorted(_MIRRORED, key=len, reverse=True)) +
                   r')(wards)?(?![A-Za-z])', re.IGNORECASE)


def _mirror_word(match: re.Match) -> str:
  word = match.group(1)
  other = _MIRRORED[word.lower()]
  if word.isupper():
    other = other.upper()
  elif word[0].isupper():
    other = other.capitalize()
  return other + (match.group(2) or '')


def flip_label_map(class_names: Sequence[str]) -> dict[int, int]:
  """Label changes under a horizontal flip, for direction and rotation classes.

  "Pushing something from left to right" becomes "... from right to left" in
  a mirrored video. Returns {index: mirrored index} for the classes whose
  name, with left and right swapped, is another class; the other classes keep
  their label when flipped. Without such pairs (Kinetics, UCF-101) it is {}.
  """
  lookup = {name: i for i, name in enumerate(class_names)}
  mapping = {}
  for i, name in enumerate(class_names):
    mirrored = _SIDE.sub(_mirror_word, name)
    j = lookup.get(mirrored)
    if j is None:  # "clockwise" mirrors to whichever of counter- / anti-clockwise exists.
      j = lookup.get(mirrored.replace('counterclockwise', 'anticlockwise'))
    if j is not None and j != i:
      mapping[i] = j
  return mapping
