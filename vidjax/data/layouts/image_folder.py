"""Images as one-frame clips, and the class-folder layout of CINIC-10 and ImageNet.

  <root>/<split>/<class>/*.png | *.jpg | *.jpeg   (any case: ImageNet's .JPEG)

`split` is train, val or test; CINIC-10's `valid` folder answers for val.
The classes are the sorted folder names of train, and every split maps a
name to the same index, so a class folder in val or test that train lacks
is a one-line ValueError: its images would have no label. ImageNet's val
must be in class folders too (the usual valprep.sh rearrangement).

An image is a record whose annotation lists it as its only frame
({'label': k, 'frame_files': [path]}, `image_record`), read by
vidjax/data/decode_images.py like the frames of a detection layout, so the
pipeline, the models and the loop treat it as a video of one frame: with
data.num_frames=1 a clip is [1, H, W, 3]; with more, every sampled index
is frame 0 and the image repeats. An unreadable image fails like a damaged
video: counted and replaced by the pipeline.
"""
from __future__ import annotations

import dataclasses
import os

from vidjax.data.layouts.frames import image_files
from vidjax.data.records import Record

SPLIT_FOLDERS = {'train': ('train',), 'val': ('val', 'valid'), 'test': ('test',)}


@dataclasses.dataclass(frozen=True)
class ImageDataset:
  """The images found, as one-frame records, and the class names (`class_names[label]`)."""
  records: list[Record]
  class_names: list[str]
  missing: list[str] = dataclasses.field(default_factory=list)

  def __len__(self) -> int:
    return len(self.records)

  def summary(self) -> str:
    return f'{len(self.records)} images, {len(self.class_names)} classes'


def image_record(path: str, label: int, image_id: str) -> Record:
  """One labelled image as a one-frame clip."""
  return Record(path, {'label': int(label), 'frame_files': [path]}, image_id)


def _split_folder(root: str, split: str) -> str:
  if split not in SPLIT_FOLDERS:
    raise ValueError(f"image_folder split must be 'train', 'val' or 'test', got {split!r}")
  for name in SPLIT_FOLDERS[split]:
    if os.path.isdir(os.path.join(root, name)):
      return os.path.join(root, name)
  raise ValueError(f'image_folder {split} split not found: expected '
                   f'{os.path.join(root, SPLIT_FOLDERS[split][0])}/<class>/*.png')


def _class_folders(folder: str) -> list[str]:
  return sorted(n for n in os.listdir(folder)
                if not n.startswith('.') and os.path.isdir(os.path.join(folder, n)))


def load_image_folder(root: str, split: str) -> ImageDataset:
  """The images of `split`, labelled by the index of their folder among train's classes."""
  train = _split_folder(root, 'train')
  class_names = _class_folders(train)
  if not class_names:
    raise ValueError(f'no class folders in {train}: expected {train}/<class>/*.png')
  folder = _split_folder(root, split)
  index = {name: k for k, name in enumerate(class_names)}
  records = []
  for name in _class_folders(folder):
    if name not in index:
      raise ValueError(f'class folder {os.path.join(folder, name)} has no counterpart in '
                       f'{train}; every split must use the classes of train')
    for path in image_files(os.path.join(folder, name)):
      image_id = os.path.splitext(os.path.relpath(path, root))[0]  # <split>/<class>/<stem>
      records.append(image_record(path, index[name], image_id))
  return ImageDataset(records, class_names)
