"""Small fake videos and dataset layouts, for tests and examples.

Everything here writes real files that the real loaders and decoders read, so
a test exercises the same code as a training run, only on 8 frames of 32x32.
Each frame has its own grey level (`frame_levels`), so a test can tell which
frame a decoder returned from the frame's mean.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from typing import Iterable, Sequence

import numpy as np


def frame_levels(num_frames: int) -> np.ndarray:
  """Grey level of each frame of `fake_frames`: evenly spaced in [16, 235]."""
  return np.round(np.linspace(16, 235, num_frames)).astype(np.int64)


def fake_frames(num_frames: int = 8, height: int = 32, width: int = 32, *,
                noise_seed: int | None = None) -> np.ndarray:
  """A clip [T, H, W, 3] uint8 whose frame t has mean `frame_levels(T)[t]`.

  Plain grey frames compress to a few bytes each. With `noise_seed`, a fixed
  random texture moving one pixel per frame is added (zero-mean, so the level
  still shows in the mean): the file then has kilobytes per frame, which a
  test that damages bytes in the middle of the stream needs.
  """
  levels = frame_levels(num_frames).astype(np.float32)
  frames = np.broadcast_to(levels[:, None, None, None],
                           (num_frames, height, width, 3)).copy()
  if noise_seed is not None:
    rng = np.random.default_rng(noise_seed)
    texture = rng.uniform(-12, 12, size=(height, width, 3)).astype(np.float32)
    for t in range(num_frames):
      frames[t] += np.roll(texture, t, axis=1)
  return np.clip(np.round(frames), 0, 255).astype(np.uint8)


def nearest_frames(frames: np.ndarray, num_frames: int) -> np.ndarray:
  """Which frame of a `fake_frames(num_frames)` clip each decoded frame is."""
  means = frames.reshape(len(frames), -1).mean(axis=1)  # [N]
  levels = frame_levels(num_frames)
  return np.abs(means[:, None] - levels[None, :]).argmin(axis=1)


def write_video(path: str, frames: np.ndarray, codec: str = 'libx264',
                fps: int = 8, options: dict[str, str] | None = None,
                container_options: dict[str, str] | None = None) -> str:
  """Encodes uint8 frames [T, H, W, 3] (H and W even) with PyAV; returns path.

  The container comes from the file extension. Encoders run single-threaded
  so the bytes, and the tests that damage them, are the same on every run.
  """
  import av
  frames = np.asarray(frames, dtype=np.uint8)
  _, height, width, _ = frames.shape
  if height % 2 or width % 2:
    raise ValueError(f'yuv420p needs an even frame size, got {height}x{width}')
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with av.open(path, 'w', options=container_options or {}) as container:
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
    stream.thread_count = 1
    if options:
      stream.options = options
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, 'rgb24')):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  return path


def packet_spans(path: str) -> list[tuple[int, int]]:
  """(byte offset, size) in the file of each video packet, in decode order.

  Lets a test damage exactly one frame's data, or its framing.
  """
  import av
  with av.open(path) as container:
    stream = container.streams.video[0]
    return [(p.pos, p.size) for p in container.demux(stream) if p.size]


def can_encode(codec: str) -> bool:
  """Whether this PyAV build has the encoder (e.g. 'libsvtav1')."""
  import av
  try:
    av.codec.Codec(codec, 'w')
  except Exception:
    return False
  return True


def av1_encoder() -> str | None:
  """The first AV1 encoder this PyAV build has, or None."""
  for codec in ('libsvtav1', 'libaom-av1', 'librav1e'):
    if can_encode(codec):
      return codec
  return None


def _copies(template: str, paths: Iterable[str]) -> None:
  """Copies one encoded video to many paths: layouts need files, not content."""
  for path in paths:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shutil.copyfile(template, path)


def make_ucf101(root: str, class_names: Sequence[str] = (
    'ApplyEyeMakeup', 'Archery', 'HandstandPushups'),
                groups: int = 4) -> None:
  """Writes a UCF-101 layout: ucfTrainTestlist/ and UCF-101/Class/v_*.avi.

  One clip per (class, group). Fold k tests on group k and trains on the rest,
  like the official lists (which use groups 1-7 and 8-25). The lists use
  Windows line ends as the official ones do, and "HandstandPushups" clips are
  named v_HandStandPushups_* (the official spelling clash between folder and
  file names).
  """
  template = write_video(os.path.join(root, 'template.avi'), fake_frames(),
                         codec='mpeg4')
  notes = os.path.join(root, 'ucfTrainTestlist')
  os.makedirs(notes, exist_ok=True)
  with open(os.path.join(notes, 'classInd.txt'), 'w', newline='') as f:
    for i, name in enumerate(class_names):
      f.write(f'{i + 1} {name}\r\n')
  videos = []
  for name in class_names:
    stem = 'HandStandPushups' if name == 'HandstandPushups' else name
    for g in range(1, groups + 1):
      videos.append((name, g, f'{name}/v_{stem}_g{g:02d}_c01.avi'))
  for fold in (1, 2, 3):
    with open(os.path.join(notes, f'trainlist0{fold}.txt'), 'w',
              newline='') as f:
      for name, g, rel in videos:
        if g != fold:
          f.write(f'{rel} {class_names.index(name) + 1}\r\n')
    with open(os.path.join(notes, f'testlist0{fold}.txt'), 'w',
              newline='') as f:
      for name, g, rel in videos:
        if g == fold:
          f.write(f'{rel}\r\n')
  _copies(template, [os.path.join(root, 'UCF-101', rel)
                     for _, _, rel in videos])
  os.remove(template)


def kinetics_rows(class_names: Sequence[str], per_class: int,
                  split: str) -> list[dict[str, str]]:
  """Rows of an official Kinetics CSV, `per_class` for each class.

  Columns: label, youtube_id, time_start, time_end, split.
  """
  rows = []
  for c, name in enumerate(class_names):
    for k in range(per_class):
      start = 10 * k
      rows.append(dict(label=name, youtube_id=f'{split[:2]}{c:03d}{k:03d}xyz',
                       time_start=str(start), time_end=str(start + 10),
                       split=split))
  return rows


def make_kinetics(root: str, split: str, rows: Sequence[dict[str, str]],
                  missing: Iterable[int] = ()) -> list[str]:
  """Writes annotations/{split}.csv and the clips it lists.

  Clips go to {split}/{label}/{youtube_id}_{start:06d}_{end:06d}.mp4.

  The rows at positions `missing` get no file, as in real copies where some
  YouTube videos could not be downloaded. Returns the paths left missing.
  """
  notes = os.path.join(root, 'annotations')
  os.makedirs(notes, exist_ok=True)
  with open(os.path.join(notes, f'{split}.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(
        f, ['label', 'youtube_id', 'time_start', 'time_end', 'split'])
    writer.writeheader()
    writer.writerows(rows)
  paths = [os.path.join(
      root, split, r['label'],
      f'{r["youtube_id"]}_{int(r["time_start"]):06d}_'
      f'{int(r["time_end"]):06d}.mp4') for r in rows]
  missing = set(missing)
  template = write_video(os.path.join(root, 'template.mp4'), fake_frames())
  _copies(template, [p for i, p in enumerate(paths) if i not in missing])
  os.remove(template)
  return [p for i, p in enumerate(paths) if i in missing]


SSV2_CLASSES = (
    'Pushing [something] from left to right',
    'Pushing [something] from right to left',
    'Putting [something] on a surface',
    'Turning the camera left while filming [something]',
    'Turning the camera right while filming [something]',
)


def make_ssv2(root: str, templates: Sequence[str] = SSV2_CLASSES,
              per_class: int = 2) -> dict[str, list[dict]]:
  """Writes labels/{labels,train,validation}.json and {id}.webm videos.

  Videos go to 20bn-something-something-v2/, encoded as VP9 when this PyAV
  build has libvpx-vp9, else H.264 under the .webm name (decoders go by the
  content, not the extension). Returns the train and validation entries.
  """
  notes = os.path.join(root, 'labels')
  os.makedirs(notes, exist_ok=True)
  names = [t.replace('[', '').replace(']', '') for t in templates]
  with open(os.path.join(notes, 'labels.json'), 'w') as f:
    json.dump({n: str(i) for i, n in enumerate(names)}, f)
  entries = {'train': [], 'validation': []}
  next_id = 1
  for split in entries:
    for template in templates:
      for _ in range(per_class):
        filled = template.replace('[something]', 'a cup')
        entries[split].append(dict(
            id=str(next_id), label=filled.lower(), template=template,
            placeholders=['a cup'] * template.count('[something]')))
        next_id += 1
    with open(os.path.join(notes, f'{split}.json'), 'w') as f:
      json.dump(entries[split], f)
  codec = 'libvpx-vp9' if can_encode('libvpx-vp9') else 'libx264'
  template = write_video(os.path.join(root, 'template.webm'), fake_frames(),
                         codec=codec)
  video_dir = os.path.join(root, '20bn-something-something-v2')
  _copies(template, [os.path.join(video_dir, f'{e["id"]}.webm')
                     for split in entries for e in entries[split]])
  os.remove(template)
  return entries


def make_csv_list(root: str, rows: Sequence[tuple[str, str]], *,
                  name: str = 'train.csv', delimiter: str = ',',
                  class_names: Sequence[str] | None = None,
                  missing: Iterable[int] = ()) -> None:
  """Writes a `path<delimiter>label` list with a header, and the videos.

  `class_names`, when given, goes to classes.txt, one name a line. Rows at
  positions `missing` get no file.
  """
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, name), 'w', newline='') as f:
    writer = csv.writer(f, delimiter=delimiter)
    writer.writerow(['path', 'label'])
    writer.writerows(rows)
  if class_names is not None:
    with open(os.path.join(root, 'classes.txt'), 'w') as f:
      f.write(''.join(f'{n}\n' for n in class_names))
  missing = set(missing)
  template = write_video(os.path.join(root, 'template.mp4'), fake_frames())
  _copies(template, [os.path.join(root, p) for i, (p, _) in enumerate(rows)
                     if i not in missing])
  os.remove(template)
