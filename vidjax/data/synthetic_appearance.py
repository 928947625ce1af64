"""Synthetic Appearance: the label is the digit, and motion is noise.

Ten classes, `digit_0` ... `digit_9`. A clip shows one large MNIST digit of
its class drifting slowly in a random direction near the frame's centre while
it turns and changes size a little, in a random colour over a random
background.

Why this design: it is the appearance counterpart of synthetic_actions, where
frame order decides the class. Here every random choice is drawn the same way
whatever the class (`sample_params` draws the same numbers for every class;
the class only picks which digit is drawn), so the motion carries no class
information and any single frame holds all the evidence -- the role Kinetics
plays against Something-Something in the papers' tables. Rotation stays within
+-40 degrees, so a 6 never becomes a 9.

Everything else is synthetic_actions' by import: the real MNIST digits and
their disjoint train / val / test instances (`load_digits`), the per-frame
renderer (`render_from_params`), the per-clip generators (`clip_rng`), the
H.264 encoding and the on-disk layout (`generate`, `ensure_dataset`):
  root/videos/{split}/digit_{d}_{i:04d}.mp4, root/{train,val,test}.csv
  (`path,label`), root/classes.txt, root/DONE
which the CSV loader reads (`data.dataset='synthetic_appearance'` with
`data.root` set to the generated folder):

  python -m vidjax.data.synthetic_appearance ROOT [--clips_per_class 250 25 25]
"""
from __future__ import annotations

import argparse
import functools
import os
import pathlib

import numpy as np

from vidjax.data import synthetic_actions as sa

CLASS_NAMES: tuple[str, ...] = tuple(f'digit_{d}' for d in range(10))
# Bump when rendering changes, so `ensure_dataset` regenerates cached copies.
FORMAT_VERSION = 'synthetic_appearance-2'  # 2: deterministic encoding.
MAX_TURN = 40.0  # Degrees either way from upright, over the whole clip.


def sample_params(class_index: int, rng: np.random.Generator, *, num_instances: int,
                  num_frames: int = 16, size: int = 64) -> sa.ClipParams:
  """A clip of digit `class_index`; the same `rng` state gives the same motion for every class."""
  if not 0 <= class_index < len(CLASS_NAMES):
    raise ValueError(f'class_index must be in 0..9, got {class_index}')
  t = np.arange(num_frames, dtype=np.float64)
  ramp = t / max(num_frames - 1, 1)  # [T] 0 -> 1
  unit = size / 64  # Ranges below are stated for a 64x64 frame.
  background, colour = sa.sample_colours(rng)
  instance = rng.integers(num_instances)
  # Large digits, as MNIST's are in their frame: a patch-based model from scratch learns a
  # 10-way digit from a few thousand clips only when the digit spans several patches.
  start_scale = rng.uniform(1.4, 1.7)  # Ink 28-34 px wide ...
  scale = start_scale * (1 + (rng.uniform(0.9, 1.1) - 1) * ramp) * unit  # ... +-10% by the end.
  turn_rate = rng.uniform(-1.5, 1.5)  # Degrees / frame.
  start_angle = rng.uniform(-15, 15)
  angle = np.clip(start_angle + turn_rate * t, -MAX_TURN, MAX_TURN)

  # A slow straight line in a random direction, through a point near the frame's centre. The
  # digit stays within a patch or so of the centre, as MNIST's digits do: a patch-based model
  # from scratch learns the digits in the few thousand steps a CPU affords only then (divided
  # attention at 32x32, 3,000 steps: 70% test top-1; 26% with the same large digits anywhere in
  # the frame; chance with synthetic_actions' smaller ones).
  margin = sa.INK_HALF_EXTENT * scale.max()
  half_room = max(size / 2 - margin, 0.0)  # How far the centre may stray from the middle.
  direction = rng.uniform(0, 2 * np.pi)
  velocity = rng.uniform(0.3, 0.8) * unit * np.array([np.cos(direction), np.sin(direction)])
  half_travel = np.abs(velocity) * (num_frames - 1) / 2  # [2] (x, y)
  velocity *= min(1.0, half_room / max(half_travel.max(), 1e-9))
  slack = half_room - np.abs(velocity) * (num_frames - 1) / 2
  offset = rng.uniform(-1, 1, size=2) * np.minimum(slack, 3 * unit)  # [2]
  centre = size / 2 + offset + velocity * (t - (num_frames - 1) / 2)[:, None]  # [T, 2]

  return sa.ClipParams(
      class_index=class_index, size=size, background=background, colour=colour,
      digit_label=np.full(num_frames, class_index), digit_instance=np.full(num_frames, instance),
      centre=centre, scale=scale, angle=angle, alpha=np.ones(num_frames))


def render_clip(class_index: int, rng: np.random.Generator, digits: np.ndarray, *,
                num_frames: int = 16, size: int = 64) -> np.ndarray:
  """uint8 [T, H, W, 3]: one random clip of digit `class_index` drawn with `digits`."""
  params = sample_params(class_index, rng, num_instances=digits.shape[1],
                         num_frames=num_frames, size=size)
  return sa.render_from_params(params, digits)


# synthetic_actions' writers, drawing this dataset's classes.
generate = functools.partial(sa.generate, class_names=CLASS_NAMES, render=render_clip)
ensure_dataset = functools.partial(sa.ensure_dataset, class_names=CLASS_NAMES,
                                   render=render_clip, format_version=FORMAT_VERSION)


def main() -> None:
  parser = argparse.ArgumentParser(description='Generates the appearance dataset once.')
  parser.add_argument('root', type=pathlib.Path)
  parser.add_argument('--clips_per_class', type=int, nargs=3, default=(250, 25, 25),
                      metavar=('TRAIN', 'VAL', 'TEST'))
  parser.add_argument('--num_processes', type=int, default=os.cpu_count() or 1)
  args = parser.parse_args()
  root = ensure_dataset(args.root, clips_per_class=tuple(args.clips_per_class),
                        num_processes=args.num_processes)
  print(f'{root}: {len(CLASS_NAMES)} classes, {tuple(args.clips_per_class)} clips per class')


if __name__ == '__main__':
  main()
