"""Synthetic Untrimmed: long videos with action instances at random times, for localization.

One MNIST digit (real handwriting, `sa.load_digits`, disjoint instances per
split) is on screen for the whole video, over a smooth texture that pans with
a drift of its own (`synthetic_untrimmed_render`). Its centre, scale, angle and
opacity are continuous throughout. When idle, the centre drifts in a slow
random walk (under 0.5 px/frame, pulled gently to the middle) and scale
(+-2%), angle (+-2.5 degrees) and opacity wobble. An action instance changes
the state purposefully from wherever it is while the rest keeps idling:

  0 move_right 1 move_left 2 move_down 3 move_up   1.2-2.5 px/frame, ink kept inside
  4 grow       5 shrink                            scale x / 1.5-2.0, in 0.6-1.7 of base
  6 rotate_cw  7 rotate_ccw                        3-7 degrees/frame

Instances last 16-96 frames (2-12 s at 8 fps; moves mostly 16-30, as the
frame has room for 13-50 px of travel; grows and shrinks at most 48); the
gap before one is 1-120 idle frames, or 0 for a third of them, which then follow the previous instance
with another class. Classes are drawn among those the state allows, weighted
to come out about equally often. About 10% of videos hold no action. Lengths
are log-uniform over 0.3-2.4x `mean_frames`, stratified per split. The digit
may change, abruptly, only in idle time at least 8 frames from any action.

How hard, and why: nothing marks a boundary but the change from idle wobble
to purposeful motion: no cut, fade or colour change; the background pans
all the time and turns at moments of its own; the idle sprite drifts back
towards the middle after a move, and a digit change is an abrupt idle event
that is no boundary. Slow moves (1.2 px/frame) and grows (1.5x over 6 s)
stand out from idling only when integrated over many frames, and
back-to-back instances must be split where one motion turns into another.
No single frame tells; a model must compare motion across frames.

On disk (`generate`, `ensure_dataset`), in published layouts:
  videos/{vid}.mp4          H.264 yuv420p, crf 14, 8 fps, 64x64; vid = untrimmed_train_0003
  annotations.json          ActivityNet-1.3: database[vid] = {subset (training|validation|
                            testing), duration, fps, num_frames, annotations [{segment
                            [a/fps, b/fps] in s, label, label_id}]}, frames [a, b)
  classes.txt               the 8 class names, index order
  groundTruth/{vid}.txt     MS-TCN per-frame label names, 'background' when idle
  mapping.txt               MS-TCN `index name`: 0 background, then the 8
  clips/{split}/{vid}_{start:05d}.mp4, clips/{split}.csv (`path,label`, relative to clips/),
  clips/classes.txt
                            16-frame clips cut from the rendered videos: 1-2 inside each
                            instance, and as many idle ones ('background') as a class has
  DONE                      (ensure_dataset) JSON of the parameters
The defaults (80 / 16 / 40 videos, 82k frames, 1,250 clips, 29 MB) take 30 s
with two workers on two shared CPU cores (57 s of CPU).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import pathlib

import numpy as np

from vidjax import progress as progress_lib
from vidjax.data import staging as staging_lib
from vidjax.data import synthetic_actions as sa
from vidjax.data import workers as worker_setup
from vidjax.data.synthetic_untrimmed_render import (SCALE_WOBBLE, Sprite, VideoParams, render_video,
                                                     sample_backdrop)

CLASS_NAMES: tuple[str, ...] = ('move_right', 'move_left', 'move_down', 'move_up',
                                'grow', 'shrink', 'rotate_cw', 'rotate_ccw')
BACKGROUND = 'background'
FPS = sa.FPS
SPLITS = sa.SPLITS
SUBSETS = {'train': 'training', 'val': 'validation', 'test': 'testing'}
# Bump when sampling or rendering changes, so `ensure_dataset` regenerates cached copies.
FORMAT_VERSION = 'synthetic_untrimmed-4'  # 4: deterministic encoding.
DEFAULT_VIDEOS = {'train': 80, 'val': 16, 'test': 40}

ACTION_FRAMES = (16, 96)
MAX_GAP = 120
BACK_TO_BACK = 1 / 3
EMPTY_FRACTION = 0.1
LENGTH_RATIO = 8.0  # Longest / shortest video of a split.
MOVE_SPEED = (1.2, 2.5)  # px / frame at 64 px.
SCALE_FACTOR = (1.5, 2.0)
SCALE_BOUNDS = (0.6, 1.7)  # Of the video's base scale.
SCALE_FRAMES = 48  # Longest grow or shrink.
TURN_SPEED = (3.0, 7.0)  # Degrees / frame.
SWAP_EVERY, SWAP_GUARD = 250, 8  # Idle frames per digit change; frames kept from actions.
CLIP_FRAMES = 16
# Idle clips per frame: the action clips per frame (about 0.0139) over the 8 classes.
BACKGROUND_CLIPS_PER_FRAME = 0.0139 / len(CLASS_NAMES)
# Offset how often the state rules a class out (a grow needs headroom and room,
# a turn never waits), so that classes come out about equally often.
CLASS_WEIGHTS = (1.1, 1.1, 1.1, 1.1, 2.0, 1.6, 1.0, 1.0)
_MOVES = {'move_right': (0, 1.0), 'move_left': (0, -1.0),
          'move_down': (1, 1.0), 'move_up': (1, -1.0)}


def _plan(rng, name: str, sprite: Sprite, frames: int):
  """(frames, step kwargs) for one instance of `name` from the sprite's state, or None."""
  u = sprite.unit
  if name in _MOVES:
    axis, sign = _MOVES[name]
    m = sprite.margin()
    room = sprite.size - m - sprite.pos[axis] if sign > 0 else sprite.pos[axis] - m
    slowest = MOVE_SPEED[0] * u
    if room < slowest * ACTION_FRAMES[0] + 0.1:
      return None
    # Half the moves keep their drawn length where the room allows (slow ones), half
    # a speed drawn over the whole range (short ones); at least 16 frames either way.
    fastest = MOVE_SPEED[1] * u
    if rng.uniform() < 0.5:
      fastest = max(slowest, min(fastest, room / frames))
    speed = min(rng.uniform(slowest, fastest), room / ACTION_FRAMES[0])
    return min(frames, int(room / speed + 1e-6)), {'move': (axis, sign * speed)}
  if name in ('grow', 'shrink'):
    low, high = np.log(SCALE_BOUNDS[0]) + SCALE_WOBBLE, np.log(SCALE_BOUNDS[1]) - SCALE_WOBBLE
    if name == 'grow':
      edge = min(sprite.pos.min(), sprite.size - sprite.pos.max())
      headroom = min(high - sprite.log_set, np.log(edge / sprite.margin()))
    else:
      headroom = sprite.log_set - low
    top = min(np.log(SCALE_FACTOR[1]), headroom)
    if top < np.log(SCALE_FACTOR[0]):
      return None
    change = rng.uniform(np.log(SCALE_FACTOR[0]), top)
    frames = min(frames, SCALE_FRAMES)  # At least ~0.9% a frame: visible within a snippet.
    return frames, {'log_rate': (1 if name == 'grow' else -1) * change / frames}
  speed = rng.uniform(*TURN_SPEED)  # Positive angles turn clockwise on screen.
  return frames, {'turn': speed if name == 'rotate_cw' else -speed}


def _idle_spans(segments, num_frames: int) -> list[tuple[int, int]]:
  """[(start, stop)] of the idle stretches between `segments`, empty ones left out."""
  edges = [0] + [e for a, b, _ in segments for e in (a, b)] + [num_frames]
  return [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b > a]


def sample_video(rng: np.random.Generator, num_frames: int, *, num_instances: int,
                 size: int = 64, empty_fraction: float = EMPTY_FRACTION
                 ) -> tuple[VideoParams, list[tuple[int, int, int]]]:
  """(VideoParams, [(start_frame, end_frame exclusive, class_index)]) of one video.

  Pure in `rng`; `num_instances` is how many instances of each digit there are
  to draw from (`load_digits(split).shape[1]`).
  """
  unit = size / 64
  middle, colour = sa.sample_colours(rng)
  backdrop = sample_backdrop(rng, num_frames, size, middle, colour)
  sprite = Sprite(rng, num_frames, size, base=rng.uniform(0.75, 0.95) * unit)
  has_actions = rng.uniform() >= empty_fraction
  segments, previous, gap = [], None, int(rng.integers(0, MAX_GAP + 1))
  while True:
    sprite.step(min(gap, num_frames - sprite.t))
    left = num_frames - sprite.t
    if not has_actions or left < ACTION_FRAMES[0]:
      break
    frames = min(left, int(round(np.exp(rng.uniform(*np.log(ACTION_FRAMES))))))
    options = [(c, plan) for c, name in enumerate(CLASS_NAMES)
               if not (gap == 0 and c == previous)
               and (plan := _plan(rng, name, sprite, frames)) is not None]
    weights = np.array([CLASS_WEIGHTS[c] for c, _ in options])
    class_index, (frames, kwargs) = options[rng.choice(len(options), p=weights / weights.sum())]
    segments.append((sprite.t, sprite.t + frames, class_index))
    sprite.step(frames, **kwargs)
    previous = class_index
    gap = 0 if rng.uniform() < BACK_TO_BACK else int(rng.integers(1, MAX_GAP + 1))
  sprite.step(num_frames - sprite.t)

  labels = np.full(num_frames, rng.integers(10))
  instances = np.full(num_frames, rng.integers(num_instances))
  for a, b in _idle_spans(segments, num_frames):
    if b - a > 2 * SWAP_GUARD:
      for t in np.sort(rng.integers(a + SWAP_GUARD, b - SWAP_GUARD,
                                    size=rng.poisson((b - a) / SWAP_EVERY))):
        labels[t:] = (labels[t] + rng.integers(1, 10)) % 10  # Another digit from t on.
        instances[t:] = rng.integers(num_instances)
  return VideoParams(sprite.params(rng, middle, colour, labels, instances), backdrop), segments


def frame_labels(segments, num_frames: int) -> np.ndarray:
  """int [T]: 0 for idle frames, 1 + class index inside an instance (mapping.txt)."""
  labels = np.zeros(num_frames, np.int64)
  for a, b, c in segments:
    labels[a:b] = c + 1
  return labels


def span_records(records) -> list:
  """Training spans for a clip classifier, from the long videos' records (segments in s).

  Each action instance becomes a record {'label': 1 + class, 'frames': (a, b)};
  idle stretches of at least a clip become {'label': 0, 'frames': ...}, every
  k-th of them so that background is about as common as an average class.
  """
  import dataclasses
  actions, idle = [], []
  for r in records:
    fps, n = r.annotation['fps'], int(round(r.annotation['duration'] * r.annotation['fps']))
    frames = [(int(round(t0 * fps)), int(round(t1 * fps)), int(c))
              for (t0, t1), c in zip(r.annotation['segments'], r.annotation['labels'])]
    actions += [dataclasses.replace(r, annotation={'label': c + 1, 'frames': (a, b)})
                for a, b, c in frames]
    idle += [dataclasses.replace(r, annotation={'label': 0, 'frames': (a, b)})
             for a, b in _idle_spans(sorted(frames), n) if b - a >= CLIP_FRAMES]
  every = max(1, round(len(idle) * len(CLASS_NAMES) / max(len(actions), 1)))
  return actions + idle[::every]


def sample_clips(rng, segments, num_frames: int) -> list[tuple[int, int]]:
  """[(start_frame, label)] of trimmed clips; label 0 is background, else 1 + class.

  One or two clips fully inside each instance (two when it is long enough
  and a coin says so); idle clips at `BACKGROUND_CLIPS_PER_FRAME`, fully
  inside idle stretches, so background is about as common as a class.
  """
  clips = []
  for a, b, c in segments:
    count = 2 if b - a >= 2 * CLIP_FRAMES and rng.uniform() < 0.5 else 1
    starts = rng.choice(b - a - CLIP_FRAMES + 1, size=count, replace=False)
    clips += [(a + int(s), c + 1) for s in sorted(starts)]
  idle = [s for a, b in _idle_spans(segments, num_frames) for s in range(a, b - CLIP_FRAMES + 1)]
  wanted = min(len(idle), int(num_frames * BACKGROUND_CLIPS_PER_FRAME + rng.uniform()))
  clips += [(int(s), 0) for s in sorted(rng.choice(idle, size=wanted, replace=False))]
  return sorted(clips)


def video_plan(seed: int, split: str, index: int, count: int,
               mean_frames: int) -> tuple[np.random.Generator, int]:
  """(generator, num_frames) of video `index` of `count` in `split`, whatever process asks.

  Lengths are log-uniform, stratified: a fixed shuffle of the split's
  `count` quantiles gives each video its own, so every split spans the range.
  """
  split_index = SPLITS.index(split)
  rng = np.random.default_rng([seed, split_index, index])
  quantile = np.random.default_rng([seed, split_index, count, 1]).permutation(count)[index]
  u = (quantile + rng.uniform()) / count
  shortest = mean_frames * np.log(LENGTH_RATIO) / (LENGTH_RATIO - 1)  # Mean of the range.
  return rng, int(round(shortest * LENGTH_RATIO**u))


def video_id(split: str, index: int) -> str:
  return f'untrimmed_{split}_{index:04d}'


# Set in each pool worker by `_init_worker`: the digits go once per process.
_worker_digits: dict[str, np.ndarray] = {}


def _init_worker(digits_by_split: dict[str, np.ndarray], pool_worker: bool = False) -> None:
  if pool_worker:
    worker_setup.init_pool_worker()  # Ignore Ctrl-C, exit with the parent.
  _worker_digits.update(digits_by_split)


def _write_video(job: tuple) -> dict:
  """Renders, encodes and cuts clips of one video; returns what the annotations need."""
  root, split, index, count, mean_frames, size, seed = job
  root = pathlib.Path(root)
  digits = _worker_digits[split]
  rng, num_frames = video_plan(seed, split, index, count, mean_frames)
  video, segments = sample_video(rng, num_frames, num_instances=digits.shape[1], size=size)
  frames = render_video(video, digits)
  vid = video_id(split, index)
  sa.write_mp4(root / 'videos' / f'{vid}.mp4', frames, fps=FPS)
  clips = []
  for start, label in sample_clips(rng, segments, num_frames):
    relative = f'clips/{split}/{vid}_{start:05d}.mp4'
    sa.write_mp4(root / relative, frames[start:start + CLIP_FRAMES], fps=FPS)
    clips.append((relative, label))
  return {'id': vid, 'split': split, 'num_frames': num_frames, 'segments': segments,
          'clips': clips}


def _write_annotations(root: pathlib.Path, records: list[dict]) -> None:
  """annotations.json, groundTruth/, mapping.txt, classes, and the clip lists."""
  frame_names = (BACKGROUND,) + CLASS_NAMES
  database = {}
  for r in records:
    database[r['id']] = {
        'subset': SUBSETS[r['split']], 'duration': r['num_frames'] / FPS, 'fps': FPS,
        'num_frames': r['num_frames'], 'url': '',
        'annotations': [{'segment': [a / FPS, b / FPS], 'label': CLASS_NAMES[c],
                         'label_id': c} for a, b, c in r['segments']]}
    labels = frame_labels(r['segments'], r['num_frames'])
    (root / 'groundTruth' / f"{r['id']}.txt").write_text(
        ''.join(f'{frame_names[k]}\n' for k in labels))
  taxonomy = [{'nodeId': k, 'nodeName': name, 'parentId': None, 'parentName': None}
              for k, name in enumerate(CLASS_NAMES)]
  (root / 'annotations.json').write_text(json.dumps(
      {'version': FORMAT_VERSION, 'taxonomy': taxonomy, 'database': database},
      sort_keys=True) + '\n')
  (root / 'classes.txt').write_text('\n'.join(CLASS_NAMES) + '\n')
  (root / 'clips' / 'classes.txt').write_text('\n'.join(frame_names) + '\n')
  (root / 'mapping.txt').write_text(''.join(f'{k} {n}\n' for k, n in enumerate(frame_names)))
  (root / 'splits').mkdir(exist_ok=True)
  for split in SPLITS:
    rows = [f"{path.removeprefix('clips/')},{frame_names[label]}" for r in records
            if r['split'] == split for path, label in r['clips']]
    (root / 'clips' / f'{split}.csv').write_text('\n'.join(['path,label'] + rows) + '\n')
  for split in ('train', 'test'):  # MS-TCN's bundles: the same videos as the JSON's subsets.
    (root / 'splits' / f'{split}.split1.bundle').write_text(
        ''.join(f"{r['id']}.txt\n" for r in records if r['split'] == split))


def generate(root: str | os.PathLike, *, videos_per_split: dict[str, int] | None = None,
             mean_frames: int = 600, size: int = 64, seed: int = 0,
             workers: int | None = None, progress: bool = True) -> pathlib.Path:
  """Writes the layout of the module docstring at `root`; overwrites what is there.

  `videos_per_split` defaults to `DEFAULT_VIDEOS`; `workers` (default: the CPU
  count) spawned processes render and encode, 1 renders in this process. The
  files are the same whichever: every video's randomness comes from
  (seed, split, index). Call from under `if __name__ == '__main__':` in a script.
  `progress` shows a bar over the videos written (vidjax/progress.py).
  """
  root = pathlib.Path(root)
  videos_per_split = dict(DEFAULT_VIDEOS if videos_per_split is None else videos_per_split)
  for folder in ['videos', 'groundTruth'] + [f'clips/{s}' for s in SPLITS]:
    (root / folder).mkdir(parents=True, exist_ok=True)
  jobs = [(str(root), split, i, videos_per_split.get(split, 0), mean_frames, size, seed)
          for split in SPLITS for i in range(videos_per_split.get(split, 0))]
  # Longest first, so no worker is left with a long video at the end.
  jobs.sort(key=lambda j: -video_plan(j[6], j[1], j[2], j[3], j[4])[1])
  digits = {split: sa.load_digits(split) for split in SPLITS}
  workers = min(workers or os.cpu_count() or 1, max(len(jobs), 1))
  if workers <= 1:
    _init_worker(digits)
    records = [_write_video(j) for j in progress_lib.track(jobs, 'generate untrimmed', progress)]
  else:
    context = multiprocessing.get_context('spawn')  # Forking a process with JAX threads can hang.
    with context.Pool(workers, initializer=_init_worker, initargs=(digits, True)) as pool:
      records = list(progress_lib.track(pool.imap_unordered(_write_video, jobs),
                                        'generate untrimmed', progress, total=len(jobs)))
  records.sort(key=lambda r: (SPLITS.index(r['split']), r['id']))
  _write_annotations(root, records)
  return root


def _is_complete(root: pathlib.Path, wanted: dict) -> bool:
  try:
    return json.loads((root / 'DONE').read_text()) == wanted
  except (OSError, ValueError):
    return False


def ensure_dataset(root: str | os.PathLike, *, videos_per_split: dict[str, int] | None = None,
                   mean_frames: int = 600, size: int = 64, seed: int = 0,
                   workers: int | None = None, progress: bool = True) -> pathlib.Path:
  """Generates the dataset at `root` once; later calls with equal parameters return at once.

  As `sa.ensure_dataset`: written into a temporary directory beside `root`,
  DONE last, then renamed onto it, so an interrupted run never leaves a
  dataset that looks complete; one with other parameters is replaced.
  """
  root = pathlib.Path(root)
  videos_per_split = dict(DEFAULT_VIDEOS if videos_per_split is None else videos_per_split)
  wanted = {'format_version': FORMAT_VERSION, 'videos_per_split': videos_per_split,
            'mean_frames': mean_frames, 'size': size, 'seed': seed}  # Not `workers`.
  if _is_complete(root, wanted):
    return root
  staging = staging_lib.staging_dir(root)
  generate(staging, videos_per_split=videos_per_split, mean_frames=mean_frames,
           size=size, seed=seed, workers=workers, progress=progress)
  (staging / 'DONE').write_text(json.dumps(wanted, sort_keys=True) + '\n')
  staging_lib.publish(staging, root, lambda: _is_complete(root, wanted))
  return root
