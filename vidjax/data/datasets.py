"""Video datasets as lists of (path, label) read from the layouts people have.

Each loader reads one layout as it is distributed (UCF-101, Kinetics, Something-
Something-v2, or a plain CSV list; one module each under layouts/) and returns
the same `VideoDataset`, so the input pipeline never needs to know which
dataset it reads. Loaders only list files: they never open a video. A video
listed in the annotations but absent on disk is not an error: it is left out
of `records`, kept in `missing`, and reported in one log line.

Use `load_dataset(kind, root, split, **options)`; the per-layout functions are
public for their docstrings, which say exactly which files they expect.
`flip_label_map` (flip_labels.py) is re-exported here, where callers look.
"""
from __future__ import annotations

import difflib
import inspect
import logging
import os
from typing import Callable

from vidjax.data.flip_labels import flip_label_map
from vidjax.data.layouts.csv_list import load_csv_list
from vidjax.data.layouts.kinetics import load_kinetics
from vidjax.data.layouts.common import VideoDataset, VideoRecord
from vidjax.data.layouts.ssv2 import load_ssv2, ssv2_class_name
from vidjax.data.layouts.ucf101 import load_ucf101

__all__ = ['VideoDataset', 'VideoRecord', 'flip_label_map', 'load_csv_list',
           'load_dataset', 'load_kinetics', 'load_ssv2', 'load_ucf101',
           'ssv2_class_name']


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
