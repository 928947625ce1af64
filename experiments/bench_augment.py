"""Training augmentation per clip on the host: the first numpy version vs now.

  nice -n 5 python experiments/bench_augment.py   # 16x128x170 and 16x256x341 -> 16x112x112
  python experiments/bench_augment.py --quick     # tiny clips, 1 repeat (tests/test_bench_augment.py)

Writes bench_augment.md and bench_augment.json to --out (default
experiments/results/) and prints the markdown.

What is timed is `TrainClip`'s augmentation of a decoded uint8 clip
[T, H, W, 3] (vidjax/data/clips.py): `random_resized_crop` to 112x112
(scale 0.08-1, ratio 3/4-4/3), a horizontal flip with probability 1/2, and
`color_jitter(brightness=contrast=saturation=0.4)`; once with
tests/transforms_reference.py (the first version, verbatim: 'old') and once
with vidjax/data/transforms.py ('new'), on the same clip with the same seed,
alternating which goes first, clip after clip, so that load from other
programs falls on both alike. Every new output is checked equal to the old
one, bit for bit. The input clips are uniform random pixels (the arithmetic
does not depend on them), decoding is not timed.

A repeat is --clips clips; its ms per clip is the mean over them, per stage
too. The table gives the median, min and max over --repeats repeats, and the
speed-up old / new per repeat (median, min - max), both measured in this run.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shlex
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from experiments import reproduction  # noqa: E402
from tests import transforms_reference as old_transforms  # noqa: E402
from vidjax.data import transforms as new_transforms  # noqa: E402

RESULTS = REPO / 'experiments' / 'results'
STAGES = ('random_resized_crop', 'horizontal_flip', 'color_jitter')


def augment(module, clip: np.ndarray, seed: int, size: int) -> tuple[np.ndarray, list[float]]:
  """TrainClip's augmentation with `module`'s functions: (clip, seconds per stage)."""
  rng = np.random.default_rng(seed)
  begin = time.perf_counter()
  clip = module.random_resized_crop(clip, rng, (size, size), (0.08, 1.0), (3 / 4, 4 / 3))
  cropped = time.perf_counter()
  if rng.random() < 0.5:
    clip = module.horizontal_flip(clip)
  flipped = time.perf_counter()
  clip = module.color_jitter(clip, rng, brightness=0.4, contrast=0.4, saturation=0.4)
  end = time.perf_counter()
  return clip, [cropped - begin, flipped - cropped, end - flipped]


def _spread(values) -> dict:
  return {'median': float(np.median(values)), 'min': float(np.min(values)),
          'max': float(np.max(values))}


def run_size(frames: int, short_side: int, size: int, clips: int, repeats: int) -> dict:
  """Old vs new on clips [frames, short_side, 4/3 short_side, 3]: one table row."""
  shape = (frames, short_side, int(short_side * 4 / 3), 3)
  pool = [np.random.default_rng(i).integers(0, 256, shape, dtype=np.uint8) for i in range(8)]
  for module in (old_transforms, new_transforms):  # Warm-up, untimed.
    augment(module, pool[0], 0, size)
  per_repeat = []  # {'old': [total, *stages], 'new': [...]} in ms per clip.
  for repeat in range(repeats):
    sums = {'old': np.zeros(4), 'new': np.zeros(4)}
    for i in range(clips):
      seed = repeat * clips + i
      order = (('old', old_transforms), ('new', new_transforms))
      outputs = {}
      for name, module in order if i % 2 == 0 else order[::-1]:
        outputs[name], seconds = augment(module, pool[i % len(pool)], seed, size)
        sums[name] += 1000 * np.array([sum(seconds), *seconds])
      if not np.array_equal(outputs['new'], outputs['old']):
        raise AssertionError(f'new != old at {shape}, seed {seed}')
    per_repeat.append({name: s / clips for name, s in sums.items()})
  ratios = [r['old'][0] / r['new'][0] for r in per_repeat]
  return {
      'input': 'x'.join(map(str, shape)), 'output': f'{frames}x{size}x{size}x3',
      'clips_per_repeat': clips, 'repeats': repeats, 'outputs_equal': True,
      'old_ms': _spread([r['old'][0] for r in per_repeat]),
      'new_ms': _spread([r['new'][0] for r in per_repeat]),
      'speedup': _spread(ratios),
      'stages_ms': {stage: {name: _spread([r[name][1 + k] for r in per_repeat])
                            for name in ('old', 'new')}
                    for k, stage in enumerate(STAGES)},
  }


def machine() -> str:
  cpu = reproduction.cpu_model()
  cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
  return f'{cpu}, {cores} cores, numpy {np.__version__}, Python {platform.python_version()}'


def report_markdown(result: dict) -> str:
  ms = lambda s: f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})"  # noqa: E731
  lines = ['# Training augmentation per clip: first numpy version (old) vs now (new)', '',
           f"`{result['command']}`", '',
           f"{result['machine']}; load average {result['load'][0]:.2f} before, "
           f"{result['load'][1]:.2f} after (shared with other jobs). Median (min-max) "
           'over repeats; a repeat is the mean over its clips, old and new interleaved '
           'on the same clips and seeds; every new output equals the old one bit for bit.',
           '', '| input | output | clips x repeats | old ms/clip | new ms/clip | speed-up |',
           '|---|---|---|---:|---:|---:|']
  for r in result['rows']:
    lines.append(f"| {r['input']} | {r['output']} | {r['clips_per_repeat']} x {r['repeats']} | "
                 f"{ms(r['old_ms'])} | {ms(r['new_ms'])} | "
                 f"{r['speedup']['median']:.2f}x ({r['speedup']['min']:.2f}-"
                 f"{r['speedup']['max']:.2f}) |")
  lines += ['', 'Per stage, ms per clip, median over repeats (the flip runs on half the '
            'clips; its figure is over all of them):', '',
            '| input | stage | old | new | old / new |', '|---|---|---:|---:|---:|']
  for r in result['rows']:
    for stage, s in r['stages_ms'].items():
      old, new = s['old']['median'], s['new']['median']
      lines.append(f"| {r['input']} | {stage} | {old:.2f} | {new:.2f} | {old / new:.1f}x |")
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--short-sides', default='128,256',
                      help='comma list of decoded short sides (long side 4/3 of it)')
  parser.add_argument('--frames', type=int, default=16)
  parser.add_argument('--size', type=int, default=112, help='crop side')
  parser.add_argument('--clips', type=int, default=60, help='clips per repeat')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--quick', action='store_true', help='4x24x32 -> 16x16, 4 clips, 1 repeat')
  parser.add_argument('--out', default='',
                      help='output folder (default experiments/results; --quick: its quick/)')
  args = parser.parse_args()
  if args.quick:
    args.short_sides, args.frames, args.size, args.clips, args.repeats = '24', 4, 16, 4, 1
  load_before, begin = os.getloadavg()[0], time.perf_counter()
  rows = [run_size(args.frames, int(side), args.size, args.clips, args.repeats)
          for side in args.short_sides.split(',')]
  result = {'command': shlex.join(['python', 'experiments/bench_augment.py', *sys.argv[1:]]),
            'machine': machine(), 'numpy': np.__version__, 'quick': args.quick,
            'load': [load_before, os.getloadavg()[0]], 'total_s': time.perf_counter() - begin,
            'rows': rows}
  markdown = report_markdown(result)
  out_dir = pathlib.Path(args.out or (RESULTS / 'quick' if args.quick else RESULTS))
  out_dir.mkdir(parents=True, exist_ok=True)
  (out_dir / 'bench_augment.json').write_text(json.dumps(result, indent=1))
  (out_dir / 'bench_augment.md').write_text(markdown + '\n')
  print(markdown)
  print(f"wrote {out_dir / 'bench_augment.json'}, {out_dir / 'bench_augment.md'}")


if __name__ == '__main__':
  main()
