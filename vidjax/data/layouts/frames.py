"""Unlabelled videos for restoration tasks (denoising): DAVIS-2017, Set8-style frame folders,
DIV2K images, and any folder or CSV list of video files.

A folder of frames becomes one record whose annotation lists its images in
frame order ({'frame_files': [...]}, read by vidjax/data/decode_images.py);
its `path` is the folder. A video file is a record with an empty
annotation. There are no classes: `class_names` is []. Frames of one
sequence must share one size (the decoder stacks them): `check_frame_sizes`
reads only the image headers, so checking all of DAVIS takes well under a
second, and mixed sizes are a one-line ValueError rather than a failure
deep inside a training run.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import re
from typing import Sequence

from PIL import Image

from vidjax.data.layouts.common import _Listing, require
from vidjax.data.records import Record

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mkv', '.webm', '.mov', '.m4v')


@dataclasses.dataclass(frozen=True)
class FrameDataset:
  """The sequences found, no class names, and the listed-but-absent sequences or videos."""
  records: list[Record]
  class_names: list[str]
  missing: list[str]

  def __len__(self) -> int:
    return len(self.records)

  def summary(self) -> str:
    """One line: sequences, frames (of frame folders), and what is missing."""
    frames = sum(len(r.annotation.get('frame_files', ())) for r in self.records)
    line = f'{len(self.records)} sequences' + (f' ({frames} frames from images)' if frames else '')
    if self.missing:
      listed = len(self.records) + len(self.missing)
      line += (f', {len(self.missing)} of {listed} listed missing '
               f'({100 * len(self.missing) / listed:.1f}%), e.g. {self.missing[0]}')
    return line


def natural_key(name: str) -> list:
  """'frame10.png' sorts after 'frame9.png': digit runs compare as numbers."""
  return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', name)]


def image_files(folder: str) -> list[str]:
  """The images directly in `folder`, in natural name order; [] when it is absent."""
  try:
    names = os.listdir(folder)
  except OSError:
    return []
  names = [n for n in names if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS
           and not n.startswith('.')]
  return [os.path.join(folder, n) for n in sorted(names, key=natural_key)]


def check_frame_sizes(files: Sequence[str]) -> None:
  """Raises a one-line ValueError when the frames of one sequence differ in size.

  Reads headers only (PIL opens lazily). An unreadable image is left to the
  decoder, which reports and counts it like any damaged video.
  """
  first = None
  for path in files:
    try:
      with Image.open(path) as image:
        size = image.size
    except Exception:  # PIL raises many kinds for damaged files.
      continue
    if first is None:
      first = (path, size)
    elif size != first[1]:
      (a, (w, h)), (b, (w2, h2)) = first, (path, size)
      raise ValueError(f'frames of mixed sizes in {os.path.dirname(path)}: '
                       f'{os.path.basename(a)} is {w}x{h}, {os.path.basename(b)} is '
                       f'{w2}x{h2}; resize them to one size')


def _sequence(folder: str, video_id: str) -> Record | None:
  files = image_files(folder)
  if not files:
    return None
  check_frame_sizes(files)
  return Record(folder, {'frame_files': files}, video_id)


def _gather(folders: Sequence[tuple[str, str]]) -> FrameDataset:
  """(folder, video id) pairs -> records; a folder without images goes to `missing`."""
  records, missing = [], []
  for folder, video_id in folders:
    record = _sequence(folder, video_id)
    if record is None:
      missing.append(folder)
    else:
      records.append(record)
  return FrameDataset(records, [], missing)


def load_davis(root: str, split: str, *, resolution: str = '480p') -> FrameDataset:
  """DAVIS-2017: root/JPEGImages/<resolution>/<sequence>/00000.jpg, ...

  The split lists sequence names, one a line, in root/ImageSets/2017/
  {train,val,test-dev}.txt; split 'test' reads test-dev.txt when there is no
  test.txt (the test-dev download is DAVIS's public test set). A listed
  sequence without frames is left out and kept in `missing`.
  """
  lists = os.path.join(root, 'ImageSets', '2017')
  name = split
  if split == 'test' and not os.path.exists(os.path.join(lists, 'test.txt')):
    name = 'test-dev'
  list_path = os.path.join(lists, f'{name}.txt')
  if not os.path.exists(list_path):
    known = sorted(os.path.splitext(f)[0] for f in os.listdir(lists)) if os.path.isdir(lists) else []
    raise ValueError(f'DAVIS split list not found: expected {list_path}'
                     + (f' (DAVIS split must be one of {", ".join(known)})' if known else ''))
  with open(list_path) as f:
    names = [line.strip() for line in f if line.strip()]
  frames = os.path.join(root, 'JPEGImages', resolution)
  return _gather([(os.path.join(frames, n), n) for n in names])


def load_frame_folders(root: str, split: str) -> FrameDataset:
  """Set8-style folders of frames: root/<split>/<sequence>/*.png (or jpg, jpeg, bmp, tif).

  Without a root/<split> folder, the sequences are root/<sequence>/ and
  every split reads all of them (Set8 and most test sets ship that way: use
  them for evaluation only). Frames are ordered by name, digit runs as
  numbers; a sequence folder without images is kept in `missing`.
  """
  split_dir = os.path.join(root, split)
  base = split_dir if os.path.isdir(split_dir) else root
  folders = sorted((d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))
                    and not d.startswith('.')), key=natural_key)
  if not any(image_files(os.path.join(base, d)) for d in folders):
    raise ValueError(f'no frame folders for split {split!r}: expected '
                     f'{os.path.join(split_dir, "<sequence>", "*.png")} or '
                     f'{os.path.join(root, "<sequence>", "*.png")}')
  return _gather([(os.path.join(base, d), d) for d in folders])


def load_div2k(root: str, split: str) -> FrameDataset:
  """DIV2K: root/DIV2K_train_HR/*.png ('train'), root/DIV2K_valid_HR/*.png ('val' or 'test').

  Each image is a one-frame record (DIV2K's test HR images are not
  published, so 'test' reads the validation set, as papers report it).
  """
  folders = {'train': 'DIV2K_train_HR', 'val': 'DIV2K_valid_HR', 'test': 'DIV2K_valid_HR'}
  if split not in folders:
    raise ValueError(f"DIV2K split must be 'train', 'val' or 'test', got {split!r}")
  folder = os.path.join(root, folders[split])
  files = image_files(folder)
  if not files:
    raise ValueError(f'DIV2K {split} images not found: expected {os.path.join(folder, "*.png")}')
  return FrameDataset([Record(f, {'frame_files': [f]}, os.path.splitext(os.path.basename(f))[0])
                       for f in files], [], [])


def _csv_paths(list_path: str) -> list[str]:
  """The `path` column of a comma-separated list with a header line (other columns ignored)."""
  with open(list_path, newline='') as f:
    rows = [r for r in csv.reader(f) if r]
  header = [h.strip().lower() for h in rows[0]] if rows else []
  if 'path' not in header:
    raise ValueError(f'{list_path} has no "path" column; write a header line such as "path"')
  column = header.index('path')
  return [r[column].strip() for r in rows[1:] if len(r) > column and r[column].strip()]


def load_video_folder(root: str, split: str) -> FrameDataset:
  """Video files: the list root/<split>.csv (a `path` column, relative to root), else
  every video under root/<split>/ (mp4, avi, mkv, webm, mov, m4v; subfolders too).

  `video_id` is the path relative to root (or to root/<split>) without its
  extension. Listed videos that are absent are kept in `missing`.
  """
  list_path = os.path.join(root, f'{split}.csv')
  split_dir = os.path.join(root, split)
  if os.path.exists(list_path):
    listing, records, missing = _Listing(), [], []
    for path in _csv_paths(list_path):
      full = os.path.join(root, path)
      if listing.exists(full):
        records.append(Record(full, {}, os.path.splitext(path)[0]))
      else:
        missing.append(full)
    return FrameDataset(records, [], missing)
  require(split_dir, f'{split} videos', f'{list_path} with a "path" column, or {split_dir}/')
  found = []
  for folder, dirs, names in os.walk(split_dir):
    dirs[:] = [d for d in dirs if not d.startswith('.')]
    found += [os.path.join(folder, n) for n in names
              if os.path.splitext(n)[1].lower() in VIDEO_EXTENSIONS and not n.startswith('.')]
  if not found:
    raise ValueError(f'no videos in {split_dir} (looked for {", ".join(VIDEO_EXTENSIONS)})')
  found.sort(key=lambda p: natural_key(os.path.relpath(p, split_dir)))
  return FrameDataset([Record(p, {}, os.path.splitext(os.path.relpath(p, split_dir))[0])
                       for p in found], [], [])
