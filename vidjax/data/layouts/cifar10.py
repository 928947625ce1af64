"""CIFAR-10 as published (the python version), each image a one-frame clip.

  <root>/cifar-10-batches-py/{data_batch_1 .. data_batch_5, test_batch, batches.meta}
  (or those files directly in <root>)

Splits, disjoint and fixed: train = data_batch_1..4 and the first half of
data_batch_5 (45,000 images); val = the second half of data_batch_5
(5,000); test = test_batch (10,000). Class names are batches.meta's
`label_names`, in its order.

The images live inside pickles: b'data' is uint8 [N, 3072], each row the
R, G and B planes of a 32x32 image in turn, row-major. They are written once
as PNG files (lossless) under `cache`, in a folder named by a hash of the
batch files, so a changed copy is written afresh beside the old one; then
they are image records like any other (image_folder.py), read by
vidjax/data/decode_images.py. Writing all 60,000 takes about 20 s, once.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
import pickle

import numpy as np
from PIL import Image

from vidjax.data import staging
from vidjax.data.layouts.common import require
from vidjax.data.layouts.image_folder import ImageDataset, image_record

BATCH_FOLDER = 'cifar-10-batches-py'
TRAIN_BATCHES = tuple(f'data_batch_{k}' for k in range(1, 6))
FILES = (*TRAIN_BATCHES, 'test_batch', 'batches.meta')
FORMAT_VERSION = 'cifar10-png-1'


def batch_images(batch: dict) -> np.ndarray:
  """A batch's b'data' rows [N, 3072] -> uint8 images [N, 32, 32, 3]."""
  data = np.asarray(batch[b'data'])
  if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
    raise ValueError(f'not a CIFAR-10 python batch: b"data" is {data.dtype} {data.shape}, '
                     f'expected uint8 [N, 3072]')
  return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _read(path: pathlib.Path) -> dict:
  with open(path, 'rb') as f:
    return pickle.load(f, encoding='bytes')


def _batch_folder(root: str) -> pathlib.Path:
  folder = pathlib.Path(root)
  if (folder / BATCH_FOLDER).is_dir():
    folder = folder / BATCH_FOLDER
  for name in FILES:
    require(str(folder / name), 'CIFAR-10 file',
            f'{pathlib.Path(root) / BATCH_FOLDER / name} (the python version)')
  return folder


@functools.lru_cache(maxsize=8)
def _fingerprint(folder: pathlib.Path, stamps: tuple) -> str:
  """A hash of the batch files' contents; `stamps` (sizes, mtimes) only key this memo."""
  del stamps
  digest = hashlib.blake2b(FORMAT_VERSION.encode(), digest_size=8)
  for name in FILES:
    with open(folder / name, 'rb') as f:
      for chunk in iter(lambda: f.read(1 << 20), b''):
        digest.update(chunk)
  return digest.hexdigest()


def _split_rows(batch: str, count: int) -> dict[str, range]:
  """Which rows of `batch` each split takes: val is the second half of data_batch_5."""
  if batch == 'test_batch':
    return {'test': range(count)}
  if batch == TRAIN_BATCHES[-1]:
    return {'train': range(count // 2), 'val': range(count // 2, count)}
  return {'train': range(count)}


def _write(folder: pathlib.Path, target: pathlib.Path) -> None:
  """Every image as target/<split>/<batch>_<row>.png, and target/index.json written last."""
  names = [n.decode() for n in _read(folder / 'batches.meta')[b'label_names']]
  index = {'class_names': names, 'train': [], 'val': [], 'test': []}
  for batch in (*TRAIN_BATCHES, 'test_batch'):
    content = _read(folder / batch)
    images, labels = batch_images(content), content[b'labels']
    for split, rows in _split_rows(batch, len(images)).items():
      (target / split).mkdir(parents=True, exist_ok=True)
      for row in rows:
        name = f'{batch}_{row:05d}.png'
        Image.fromarray(images[row]).save(target / split / name, compress_level=1)
        index[split].append([name, int(labels[row])])
  (target / 'index.json').write_text(json.dumps(index) + '\n')


def materialise(root: str, cache: str) -> pathlib.Path:
  """The folder of PNGs of the copy at `root`, written on first use."""
  folder = _batch_folder(root)
  stamps = tuple((os.stat(folder / n).st_size, os.stat(folder / n).st_mtime_ns) for n in FILES)
  target = pathlib.Path(cache).expanduser() / _fingerprint(folder.resolve(), stamps)
  if not (target / 'index.json').is_file():
    staged = staging.staging_dir(target)
    _write(folder, staged)
    staging.publish(staged, target, lambda: (target / 'index.json').is_file())
  return target


def load_cifar10(root: str, split: str, cache: str) -> ImageDataset:
  """The images of `split` of the CIFAR-10 copy at `root`, written as PNGs under `cache` once."""
  if split not in ('train', 'val', 'test'):
    raise ValueError(f"cifar10 split must be 'train', 'val' or 'test', got {split!r}")
  target = materialise(root, cache)
  index = json.loads((target / 'index.json').read_text())
  records = [image_record(str(target / split / name), label, f'{split}/{name[:-4]}')
             for name, label in index[split]]
  return ImageDataset(records, index['class_names'])
