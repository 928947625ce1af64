"""The YOLO (Ultralytics) layout: a data YAML, images/<split>/ and labels/<split>/*.txt.

data.yaml names the dataset root ("path"), each split's images ("train",
"val", "test": a folder, a .txt list of images, or a list of either) and the
classes ("names": a list, or {id: name}). Each image has a label file at the
same place under labels/ instead of images/, one line per box,
"class cx cy w h", normalised to [0, 1] by the image's width and height.
"""
from __future__ import annotations

import os

import numpy as np
import yaml
from PIL import Image

from vidjax.data.layouts.boxes import (DetectionDataset, Problems, box_annotation,
                                       check_boxes, cxcywh_to_xyxy, finish)
from vidjax.data.layouts.common import require
from vidjax.data.layouts.untrimmed import malformed
from vidjax.data.records import Record

# Ultralytics' image formats that PIL reads.
IMAGE_EXTENSIONS = ('.bmp', '.dng', '.jpeg', '.jpg', '.mpo', '.png', '.tif', '.tiff', '.webp')
_FORMAT = ('expected "path: <root>", "train: images/train", "val: images/val", '
           '"names: [person, car]" (or {0: person, 1: car})')


def _read_yaml(path: str) -> dict:
  require(path, 'YOLO data YAML', path)
  with open(path) as f:
    text = f.read()
  if not text.strip():
    raise malformed(path, None, 'the file is empty', _FORMAT)
  try:
    data = yaml.safe_load(text)
  except yaml.YAMLError as e:
    mark = getattr(e, 'problem_mark', None)
    problem = getattr(e, 'problem', None) or 'cannot be parsed'
    raise malformed(path, mark.line + 1 if mark else None, f'invalid YAML ({problem})',
                    'repair the file') from None
  if not isinstance(data, dict):
    raise malformed(path, None, 'not a mapping of keys to values', _FORMAT)
  return data


def _classes(path: str, data: dict) -> tuple[list[str], dict[int, int]]:
  """(class names, YOLO class id -> 0-based label) from "names" (and "nc" if given)."""
  names = data.get('names')
  if isinstance(names, list) and names:
    numbered = dict(enumerate(names))
  elif isinstance(names, dict) and names and all(
      isinstance(k, int) or (isinstance(k, str) and k.isdigit()) for k in names):
    numbered = {int(k): v for k, v in names.items()}
  else:
    raise malformed(path, None, f'"names" is {names!r:.60}, not a list or {{id: name}}', _FORMAT)
  if 'nc' in data and data['nc'] != len(numbered):
    raise malformed(path, None, f'"nc" is {data["nc"]} but "names" has {len(numbered)} classes',
                    'make "nc" the number of names, or remove it')
  ids = sorted(numbered)
  return [str(numbered[i]) for i in ids], {class_id: i for i, class_id in enumerate(ids)}


def _base(path: str, data: dict) -> str:
  """The dataset root: "path" (relative to the YAML) when it is a folder, else the YAML's folder.

  Downloaded YAMLs often name their author's own folder; this one is here.
  """
  folder = os.path.dirname(os.path.abspath(path))
  named = os.path.join(folder, str(data['path'])) if data.get('path') else folder
  return named if os.path.isdir(named) else folder


def _images(path: str, data: dict, base: str, split: str) -> list[str]:
  """The split's image paths: its folders listed recursively, its .txt lists read."""
  splits = [k for k in ('train', 'val', 'test') if data.get(k)]
  if not data.get(split):
    raise ValueError(f'{path} names no {split!r} split; it has {", ".join(splits) or "none"}')
  entries = data[split] if isinstance(data[split], list) else [data[split]]
  images = []
  for entry in entries:
    where = os.path.join(base, str(entry))
    if not os.path.exists(where) and str(entry).startswith('../'):
      where = os.path.join(base, str(entry)[3:])  # As Ultralytics resolves Roboflow's YAMLs.
    if os.path.isdir(where):
      images += sorted(os.path.join(folder, name) for folder, _, names in os.walk(where)
                       for name in names if name.lower().endswith(IMAGE_EXTENSIONS))
    elif os.path.isfile(where) and where.endswith('.txt'):
      with open(where) as f:
        listed = [line.strip() for line in f if line.strip()]
      parent = os.path.dirname(where)
      images += [os.path.join(parent, p[2:]) if p.startswith('./') else os.path.join(base, p)
                 for p in listed]
    else:
      raise ValueError(f'YOLO {split} images not found: {where} (from "{split}: {entry}" '
                       f'in {path}); expected a folder of images or a .txt list of them')
  return images


def label_path(image: str) -> str:
  """Ultralytics' rule: the last /images/ of the path becomes /labels/, the extension .txt."""
  images, labels = f'{os.sep}images{os.sep}', f'{os.sep}labels{os.sep}'
  return os.path.splitext(labels.join(image.rsplit(images, 1)))[0] + '.txt'


def _read_labels(path: str) -> tuple[list[int], np.ndarray]:
  """A label file -> (class ids, [N, 4] normalised cx, cy, w, h)."""
  classes, boxes = [], []
  with open(path) as f:
    for n, line in enumerate(f, 1):
      parts = line.split()
      if not parts:
        continue
      if len(parts) != 5:
        raise malformed(path, n, f'expected "class cx cy w h", got {len(parts)} fields',
                        'write one box per line, normalised to [0, 1] (polygon labels '
                        'need converting to boxes)')
      try:
        values = [float(p) for p in parts]
      except ValueError:
        raise malformed(path, n, f'{line.strip()!r} is not five numbers',
                        'write "class cx cy w h"') from None
      if not values[0].is_integer():
        raise malformed(path, n, f'class {parts[0]!r} is not an integer id',
                        'write the index of the class in the YAML\'s "names"')
      classes.append(int(values[0]))
      boxes.append(values[1:])
  return classes, np.asarray(boxes, np.float64).reshape(-1, 4)


def _image_size(path: str) -> tuple[int, int] | None:
  """(width, height) from the file's header (PIL does not decode on open), None if unreadable."""
  try:
    with Image.open(path) as image:
      return image.size
  except (OSError, ValueError, Image.DecompressionBombError):
    return None


def load_yolo(root: str, split: str, *, data_yaml: str = 'data.yaml') -> DetectionDataset:
  """A YOLO dataset: each image a one-frame record of its label file's boxes.

  Args:
    root: holds `data_yaml` (which may be absolute).
    split: 'train', 'val' or 'test', a key of the YAML.
    data_yaml: the data YAML; see `_base` for where its paths start.

  An image without a label file, or with an empty one, has no objects (counted,
  as Ultralytics does, not an error). An image PIL cannot read is left out
  and counted; one listed in a .txt list but absent goes to `missing` (a
  list's lines starting with ./ are relative to the list's folder, the
  others to the dataset root).
  Sizes are the stored ones: EXIF rotation is not applied, as the decoder
  does not apply it either.
  """
  path = os.path.join(root, data_yaml)
  data = _read_yaml(path)
  class_names, label_of = _classes(path, data)
  base = _base(path, data)
  problems = Problems(f'YOLO {split}')
  records, missing = [], []
  for image in _images(path, data, base, split):
    if not os.path.exists(image):
      missing.append(image)
      continue
    size = _image_size(image)
    if size is None:
      problems.add('unreadable_image', 1, [f'{image}: PIL cannot read it; left out'])
      continue
    width, height = size
    labels = label_path(image)
    video_id = os.path.splitext(os.path.relpath(image, base))[0]
    if os.path.exists(labels):
      classes, boxes = _read_labels(labels)
      if not classes:
        problems.add('empty_label_file', 1, [f'{labels} is empty: no objects'])
    else:
      classes, boxes = [], np.zeros((0, 4))
      problems.add('no_label_file', 1, [f'{image} has no {labels}: no objects'])
    checked = check_boxes(video_id, cxcywh_to_xyxy(boxes, width, height), classes,
                          [0] * len(classes), None, label_of=label_of, frame_index={0: 0},
                          width=width, height=height, problems=problems)
    records.append(Record(image, box_annotation(checked, width=width, height=height,
                                                num_frames=1, frame_files=[image]), video_id))
  return finish(records, class_names, missing, problems)
