"""Something-Something-v2 as distributed by 20BN / Qualcomm."""
from __future__ import annotations

import json
import os

from vidjax.data.layouts.common import VideoDataset, collect, require

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
  require(labels_path, 'Something-Something-v2 annotations', labels_path)
  list_path = os.path.join(notes, _SSV2_FILES[split])
  require(list_path, 'Something-Something-v2 split list', list_path)
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
  return collect(entries, class_names)
