"""Video datasets as lists of (path, label) read from the layouts people have.

Each loader reads one layout as it is distributed (UCF-101, Kinetics, Something-
Something-v2, or a plain CSV list; one module each under layouts/) and returns
the same `VideoDataset`, so the input pipeline never needs to know which
dataset it reads. Loaders only list files: they never open a video. A video
listed in the annotations but absent on disk is not an error: it is left out
of `records`, kept in `missing`, and reported in one log line.

Use `load_dataset(kind, root, split, **options)`, where `kind` is a dataset of
the one registry (vidjax/data/registry.py) with a published layout; the
per-layout functions are public for their docstrings, which say exactly which
files they expect.
`flip_label_map` (flip_labels.py) is re-exported here, where callers look.
"""
from __future__ import annotations

from vidjax.data.flip_labels import flip_label_map
from vidjax.data.layouts.csv_list import load_csv_list
from vidjax.data.layouts.kinetics import load_kinetics
from vidjax.data.layouts.common import VideoDataset, VideoRecord
from vidjax.data.layouts.ssv2 import load_ssv2, ssv2_class_name
from vidjax.data.layouts.ucf101 import load_ucf101

__all__ = ['VideoDataset', 'VideoRecord', 'flip_label_map', 'load_csv_list',
           'load_dataset', 'load_kinetics', 'load_ssv2', 'load_ucf101',
           'ssv2_class_name']


def load_dataset(kind: str, root: str, split: str, **options) -> VideoDataset:
  """Reads the published layout of registry dataset `kind` (see `registry.read_layout`)."""
  from vidjax.data import registry  # The registry imports the layouts, not this module.
  return registry.read_layout(kind, root, split, **options)
