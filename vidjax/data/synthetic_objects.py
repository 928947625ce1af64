"""Synthetic Objects: moving digits and shapes, exact boxes and track ids, for detection + tracking.

Seven classes that differ in shape, never in colour (each object's colour is
its own, drawn against its video's background):

  1 digit_2  2 digit_3  3 digit_5  4 digit_7  5 circle  6 square  7 triangle

Why these: real handwriting (MNIST via `sa.load_digits`: 350 / 50 / 100
instances of each digit for train / val / test, disjoint; moving_mnist's
split shares one pool between train and val) in two pairs that handwriting
confuses (2/7 share the top stroke, 3/5 the lower bowl), so a class needs
the shape read at 10-28 px; and three geometric shapes, each filled or
outlined at random, so neither fill nor stroke width tells digits from
shapes. 0 is left out (a ring, like an outlined circle) and so is 1 (a
sliver whose box falls under the minimum size); ten digit classes would
make the task a handwriting test with few boxes per class. Every class is
equally likely.

Each video (48-96 frames at 10 fps, 128x128) holds 1-6 annotated objects in
every frame. An object moves at 0.4-2 px/frame along a slowly turning
heading, grows or shrinks by up to 0.8%/frame within 10-28 px, and digits
tilt and shapes spin slowly. Objects are placed at a random frame anywhere
in the image (40% of them over another object) and their paths run both
ways from there, so many enter and leave through the borders, and crossing
paths occlude one another in a fixed depth order per object (painter's
order): about 10% of the boxes clear of the border are at least 10%
hidden. The background (two textures, coarse and stroke-fine, on two
colour axes) pans slowly, and Gaussian noise (sigma 3) is added to every
pixel; object colours are far from every background colour in RGB, but
half of them lie inside its brightness range, so a threshold on brightness
finds neither the objects nor their classes.

Boxes are exact (`synthetic_objects_render`): the tight box of the pixels
that the rendered object covers at least half, occluded ones included,
within the image. A box narrower or shorter than `MIN_SIDE` px (an object
mostly outside) is dropped; the frames an object is annotated in are
consecutive (objects whose would not be are redrawn). `visibility` is the
share of the object's whole mask that is seen, neither behind nearer
objects nor outside the image; under `IGNORE_BELOW` (more than 70% hidden)
the box is kept, with iscrowd 1, so a COCO-style metric ignores detections
there and the track stays unbroken.

On disk (`generate`, `ensure`), MMTracking's CocoVID layout:
  videos/{split}_{i:04d}.mp4   H.264 yuv420p, crf 14 (`sa.write_mp4`)
  annotations/{split}.json     "videos" [{id, name}], "images" [{id, file_name
                               "{video}/{frame:06d}.jpg", video_id, frame_id (0-based),
                               width, height}] (one per frame of the mp4; MMTracking's
                               names, but no jpg is written),
                               "annotations" [{id, image_id, category_id, instance_id,
                               bbox [x, y, w, h] px, area (w * h), iscrowd, visibility}],
                               "categories" [{id, name}]; every id 1-based, instance_id
                               unique within the split file
  manifest.json                format_version, params, classes, counts; written last
Read it with `layouts.coco.load_cocovid(root, split, video_dir='videos')`.
The defaults (384 / 8 / 16 videos; 27,476 / 576 / 1,211 frames; 1,576 /
37 / 74 tracks) take 2.4 min in one process on a loaded 2-core machine and
write 159 MB. Training reads many videos because a detector learns each
object it sees: with 48 training videos (about 200 objects) it knew the
training objects and called the test set's circles squares (val mAP 0.06
after 1,000 steps, against 0.16 with 384 videos and colour jitter).
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib

import numpy as np

from vidjax import progress as progress_lib
from vidjax.data import staging as staging_lib
from vidjax.data import synthetic_actions as sa
from vidjax.data import synthetic_objects_render as sr

CLASS_NAMES: tuple[str, ...] = ('digit_2', 'digit_3', 'digit_5', 'digit_7',
                                'circle', 'square', 'triangle')
DIGITS = {'digit_2': 2, 'digit_3': 3, 'digit_5': 5, 'digit_7': 7}
SPLITS = ('train', 'val', 'test')
# Bump when sampling or rendering changes, so `ensure` regenerates cached copies.
FORMAT_VERSION = 'synthetic_objects-1'

SIZE = (10.0, 28.0)  # px, a digit's ink height or a shape's extent / 0.9.
GROWTH = 0.008  # Largest change of log size per frame.
SPEED = (0.4, 2.0)  # px / frame.
TURN = 0.012  # Largest change of heading, radians / frame.
DIGIT_TILT, DIGIT_SPIN, MAX_TILT = 15.0, 0.2, 30.0  # Degrees, degrees / frame, degrees.
SHAPE_SPIN = 1.0  # Degrees / frame.
OUTLINED, STROKE = 0.5, (0.12, 0.22)  # Share of outlined shapes; rim width / size.
MAX_OBJECTS = 6  # Annotated boxes in any frame.
# Share of objects whose path is drawn through another's centre at one of its frames
# (give or take CROSSING_SPREAD px), so that paths cross and hide one another.
CROSSING, CROSSING_SPREAD = 0.4, 4.0
DENSITY = (1.5, 4.0)  # Mean annotated boxes per frame a video aims at.
MIN_SIDE = 4  # px: a box narrower or shorter than this is dropped.
MIN_TRACK = 3  # Frames: an object annotated in fewer is redrawn.
IGNORE_BELOW = 0.3  # Visibility under which a box is iscrowd (ignored).
TRIES = 200


@dataclasses.dataclass(frozen=True, eq=False)
class Scene:
  """Everything one video shows; `render` draws it, `frame_boxes` annotates it."""
  num_frames: int
  size: int
  background: sr.Background
  tracks: list[sr.Track]
  classes: list[int]  # Index into CLASS_NAMES, per track.
  digits: list[tuple[int, int]]  # (label, instance) in the split's digits, (-1, -1) for a shape.
  noise_seed: int


def annotated(track: sr.Track) -> np.ndarray:
  """bool [n]: which of the track's frames get a box (both sides at least MIN_SIDE)."""
  return (track.boxes[:, 2] >= MIN_SIDE) & (track.boxes[:, 3] >= MIN_SIDE)


def _sample_sprite(rng, class_index: int, anchor: int, position: np.ndarray, num_frames: int,
                   digits: np.ndarray, background: sr.Background):
  """(Sprite, (digit label, instance)): a random path through `position` (x, y) at `anchor`."""
  t = np.arange(num_frames) - anchor
  low, high = np.log(SIZE)
  sizes = np.exp(np.clip(rng.uniform(low, high) + rng.uniform(-GROWTH, GROWTH) * t, low, high))
  heading = rng.uniform(0, 2 * np.pi) + rng.uniform(-TURN, TURN) * t
  step = rng.uniform(*SPEED) * np.stack([np.cos(heading), np.sin(heading)], axis=1)
  path = np.concatenate([np.zeros((1, 2)), np.cumsum(step[:-1], axis=0)])  # From frame 0.
  centre = position + path - path[anchor]
  name = CLASS_NAMES[class_index]
  if name in DIGITS:
    label, instance = DIGITS[name], int(rng.integers(digits.shape[1]))
    angle = np.clip(rng.uniform(-DIGIT_TILT, DIGIT_TILT)
                    + rng.uniform(-DIGIT_SPIN, DIGIT_SPIN) * t, -MAX_TILT, MAX_TILT)
    kind, image, stroke = 'digit', digits[label, instance], 0.0
  else:
    label = instance = -1
    angle = rng.uniform(0, 360) + rng.uniform(-SHAPE_SPIN, SHAPE_SPIN) * t
    kind, image = name, None
    stroke = rng.uniform(*STROKE) if rng.uniform() < OUTLINED else 0.0
  sprite = sr.Sprite(kind, image, stroke, sr.sample_colour(rng, background), rng.uniform(),
                     centre, sizes, angle)
  return sprite, (label, instance)


def sample_scene(rng: np.random.Generator, num_frames: int, size: int,
                 digits: np.ndarray) -> Scene:
  """One video, pure in `rng`; `digits` is float [10, N, 28, 28] (`sa.load_digits(split)`).

  Objects are added, each through a random point at a random frame (or,
  for a share `CROSSING`, through another object's place at one of its
  frames), until the video holds its drawn mean number of boxes per frame;
  then one through each frame still empty. An object that would put more than MAX_OBJECTS
  boxes in a frame, or whose annotated frames would not be consecutive or
  number under MIN_TRACK, is redrawn.
  """
  background = sr.sample_background(rng, num_frames, size)
  density = rng.uniform(*DENSITY)
  tracks, classes, chosen = [], [], []
  counts = np.zeros(num_frames, np.int64)
  for _ in range(2 * TRIES):
    empty = np.flatnonzero(counts == 0)
    filling = counts.mean() >= density
    if filling and not empty.size:
      break
    anchor = int(empty[0]) if filling else int(rng.integers(num_frames))
    position = rng.uniform(0, size, size=2)
    if tracks and not filling and rng.uniform() < CROSSING:  # Over another object, now.
      other = tracks[rng.integers(len(tracks))]
      anchor = int(rng.integers(other.start, other.stop))
      position = other.sprite.centre[anchor] + rng.normal(0, CROSSING_SPREAD, size=2)
    class_index = int(rng.integers(len(CLASS_NAMES)))
    sprite, digit = _sample_sprite(rng, class_index, anchor, position, num_frames, digits,
                                   background)
    track = sr.trace(sprite, anchor, size)
    frames = track.start + np.flatnonzero(annotated(track))
    if (len(frames) < MIN_TRACK or frames[-1] - frames[0] + 1 != len(frames)
        or counts[frames].max() >= MAX_OBJECTS or (filling and anchor not in frames)):
      continue
    counts[frames] += 1
    tracks.append(track)
    classes.append(class_index)
    chosen.append(digit)
  return Scene(num_frames, size, background, tracks, classes, chosen,
               int(rng.integers(2**63 - 1)))


def render(scene: Scene, noise: bool = True) -> np.ndarray:
  """uint8 [T, H, W, 3]: the frames as written (`noise=False` leaves the noise out)."""
  return sr.render(scene.tracks, scene.background, scene.num_frames, scene.size,
                   scene.noise_seed if noise else None)


def frame_boxes(scene: Scene) -> list[dict]:
  """Its boxes, frame-major: {frame, track, category (0-based), bbox, visibility, iscrowd}."""
  seen = sr.visibility(scene.tracks, scene.num_frames, scene.size)
  boxes = []
  for k, track in enumerate(scene.tracks):
    for i in np.flatnonzero(annotated(track)):
      t = track.start + int(i)
      visible = round(float(seen[t, k]), 4)
      boxes.append({'frame': t, 'track': k, 'category': scene.classes[k],
                    'bbox': [int(v) for v in track.boxes[i]], 'visibility': visible,
                    'iscrowd': int(visible < IGNORE_BELOW)})
  return sorted(boxes, key=lambda b: (b['frame'], b['track']))


def video_name(split: str, index: int) -> str:
  return f'{split}_{index:04d}'


def video_scene(seed: int, split: str, index: int, frames: tuple[int, int], size: int,
                digits: np.ndarray) -> Scene:
  """Video `index` of `split`, from (seed, split, index) alone; `frames` bounds its length."""
  rng = np.random.default_rng([seed, SPLITS.index(split), index])
  num_frames = int(rng.integers(frames[0], frames[1] + 1))
  return sample_scene(rng, num_frames, size, digits)


def _add_video(coco: dict, name: str, scene: Scene, first_instance: int) -> None:
  """Appends the video, its frames as images and its boxes to the CocoVID dict `coco`."""
  video_id, first_image = len(coco['videos']) + 1, len(coco['images']) + 1
  coco['videos'].append({'id': video_id, 'name': name})
  coco['images'] += [{'id': first_image + t, 'file_name': f'{name}/{t:06d}.jpg',
                      'video_id': video_id, 'frame_id': t, 'width': scene.size,
                      'height': scene.size} for t in range(scene.num_frames)]
  for box in frame_boxes(scene):
    w, h = box['bbox'][2:]
    coco['annotations'].append({
        'id': len(coco['annotations']) + 1, 'image_id': first_image + box['frame'],
        'category_id': box['category'] + 1, 'instance_id': first_instance + box['track'],
        'bbox': box['bbox'], 'area': w * h, 'iscrowd': box['iscrowd'],
        'visibility': box['visibility']})


def _params(videos_per_split, frames, size, fps, seed) -> dict:
  return {'videos_per_split': [int(v) for v in videos_per_split],
          'frames': [int(f) for f in frames], 'size': int(size), 'fps': int(fps),
          'seed': int(seed)}


def generate(root: str | os.PathLike, videos_per_split: tuple[int, int, int] = (384, 8, 16),
             frames: tuple[int, int] = (48, 96), size: int = 128, fps: int = 10,
             seed: int = 0, progress: bool = True) -> dict:
  """Writes the layout of the module docstring at `root` (overwriting); returns the counts.

  `videos_per_split` is (train, val, test); each video's length is drawn
  from `frames` (inclusive). Every video comes from (seed, split, index)
  alone: the JSON is the same byte for byte on every run, and the videos
  show the same frames (x264 itself may not be bit-exact from run to run).
  Counts: {split: {videos, frames, boxes, ignored, tracks}}. `progress`
  shows a bar over the videos written (vidjax/progress.py).
  """
  root = pathlib.Path(root)
  (root / 'videos').mkdir(parents=True, exist_ok=True)
  (root / 'annotations').mkdir(parents=True, exist_ok=True)
  categories = [{'id': c + 1, 'name': name} for c, name in enumerate(CLASS_NAMES)]
  counts = {}
  shown = progress_lib.bar(sum(videos_per_split), 'generate objects', progress, unit='video')
  for split, count in zip(SPLITS, videos_per_split):
    digits = sa.load_digits(split)
    coco = {'videos': [], 'images': [], 'annotations': [], 'categories': categories}
    tracks = 0
    for index in range(count):
      scene = video_scene(seed, split, index, frames, size, digits)
      name = video_name(split, index)
      sa.write_mp4(root / 'videos' / f'{name}.mp4', render(scene), fps=fps)
      _add_video(coco, name, scene, first_instance=tracks + 1)
      tracks += len(scene.tracks)
      shown.update(1)
    (root / 'annotations' / f'{split}.json').write_text(json.dumps(coco) + '\n')
    counts[split] = {'videos': count, 'frames': len(coco['images']),
                     'boxes': len(coco['annotations']), 'tracks': tracks,
                     'ignored': sum(a['iscrowd'] for a in coco['annotations'])}
  shown.close()
  manifest = {'format_version': FORMAT_VERSION,
              'params': _params(videos_per_split, frames, size, fps, seed),
              'classes': list(CLASS_NAMES), 'counts': counts}
  (root / 'manifest.json').write_text(json.dumps(manifest, indent=1, sort_keys=True) + '\n')
  return counts


def _manifest(root: pathlib.Path) -> dict | None:
  try:
    return json.loads((root / 'manifest.json').read_text())
  except (OSError, ValueError):
    return None


def _matches(manifest: dict | None, params: dict) -> bool:
  return (manifest is not None and manifest.get('format_version') == FORMAT_VERSION
          and manifest.get('params') == params)


def ensure(root: str | os.PathLike, videos_per_split: tuple[int, int, int] = (384, 8, 16),
           frames: tuple[int, int] = (48, 96), size: int = 128, fps: int = 10,
           seed: int = 0, progress: bool = True) -> dict:
  """Generates the dataset at `root` once and returns its counts; equal calls later return at once.

  As `synthetic_untrimmed.ensure_dataset`: written into a temporary folder
  beside `root`, manifest.json last, then renamed onto it, so an interrupted
  run never leaves a dataset that looks complete; one written by another
  FORMAT_VERSION or with other parameters is replaced.
  """
  root = pathlib.Path(root)
  params = _params(videos_per_split, frames, size, fps, seed)
  manifest = _manifest(root)
  if _matches(manifest, params):
    return manifest['counts']
  staging = staging_lib.staging_dir(root)
  counts = generate(staging, videos_per_split, frames, size, fps, seed, progress)
  staging_lib.publish(staging, root, lambda: _matches(_manifest(root), params))
  return counts
