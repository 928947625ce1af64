"""UCF-101 as distributed: the official split lists and the extracted videos."""
from __future__ import annotations

import os

from vidjax.data.layouts.common import VideoDataset, collect, require


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
  require(class_file, 'UCF-101 annotations', class_file)
  list_file = os.path.join(notes, f'{split}list0{fold}.txt')
  require(list_file, 'UCF-101 split list', list_file)
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
  return collect(entries, class_names)
