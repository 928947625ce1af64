"""Step time and memory of space_only, joint and divided attention vs T and resolution.

TimeSformer's cost argument (Bertasius et al. 2021, section 3): with N patches
per frame and T frames, joint space-time attention compares all T*N tokens
with each other, O((T*N)^2) per block, while divided attention compares each
token with the N of its frame and the T at its position, O(T*N*(T + N)).
Space-only is O(T*N^2), linear in T. The three models here are the same
4-block, width-192 transformer (the bench shape of the table, `tubelet_size=1`
for all three so they see the same tokens), differing only in `attention`.

Points: T in (8, 16, 32, 64) at 112x112 (N = 49), then 112, 160, 224 at T=8
(N = 49, 100, 196), batch 2. Each point compiles the train step once (XLA's
memory plan comes from that) and times it; a point whose warm-up step says
its timed steps would exceed the per-point budget times fewer of them (at
least 3), and a point whose compiled temporaries exceed `max_temp_gib` is
not run at all (the JSON says which).
"""
from __future__ import annotations

import math

import numpy as np

from experiments import bench_step

PATTERNS = ('space_only', 'joint', 'divided')
FRAMES = (8, 16, 32, 64)
SIZES = (112, 160, 224)
BATCH = 2
_STA = 'model.space_time_attention.'


def base_overrides(width: int = 192, layers: int = 4, heads: int = 3, patch: int = 16) -> tuple:
  return (f'{_STA}hidden_size={width}', f'{_STA}num_layers={layers}', f'{_STA}num_heads={heads}',
          f'{_STA}mlp_dim={4 * width}', f'{_STA}patch_size={patch}', f'{_STA}tubelet_size=1')


def case(pattern: str, frames: int, size: int, batch: int = BATCH, model=None) -> bench_step.Case:
  model = base_overrides() if model is None else model
  return bench_step.Case(
      f'{pattern} T={frames} {size}x{size}', f'configs/space_time_attention.py:{pattern}',
      model + (f'data.num_frames={frames}', f'data.height={size}', f'data.width={size}'),
      batch_size=batch, shape=f'{frames}x{size}x{size}')


def run(peak, *, frames=FRAMES, sizes=SIZES, batch: int = BATCH, model=None, steps: int = 5,
        budget_s: float = 15.0, max_temp_gib: float = 8.0, log=print) -> list[dict]:
  """Every (pattern, T, size) point: step time, FLOPs, memory; skipped ones say why."""
  grid = [(t, sizes[0]) for t in frames] + [(frames[0], s) for s in sizes[1:]]
  points = []
  for pattern in PATTERNS:
    for t, size in grid:
      c = case(pattern, t, size, batch, model)
      point = {'pattern': pattern, 'frames': t, 'size': size, 'batch': batch}
      try:
        step = bench_step.build(c).compile()
        mem = bench_step.memory(step)
        point.update(compile_s=step.compile_s, train_flops=bench_step.train_step_flops(step),
                     temp_bytes=mem.get('temp_bytes'), peak_bytes=mem['peak_bytes'],
                     memory_source=mem['source'])
        if (mem.get('temp_bytes') or 0) > max_temp_gib * 2 ** 30:
          point['skipped'] = f'compiled temporaries over {max_temp_gib} GiB'
        else:
          timing = bench_step.time_steps(step, peak, steps, warmup=1, budget_s=budget_s)
          times = np.asarray(timing['step_times_s'])
          point.update(step_s=float(np.median(times)), steps=timing['steps'],
                       mfu=float(np.median(point['train_flops'] / times /
                                           np.asarray(timing['peak_samples']))))
          if timing['steps'] < steps:
            point['note'] = f'{timing["steps"]} timed steps (budget {budget_s:.0f} s)'
        del step
      except Exception as e:  # One failed point (e.g. out of memory) must not end the run.
        point['skipped'] = f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'
      points.append(point)
      log(f"  scaling {pattern:10s} T={t:2d} {size}x{size}: " + (
          f"{point['step_s'] * 1e3:8.1f} ms/step, {point['peak_bytes'] / 2 ** 20:7.0f} MiB"
          if 'step_s' in point else f"skipped ({point['skipped']})"))
  return points


def growth(points: list[dict], pattern: str, size: int) -> float:
  """Step time at the largest T over step time at the smallest, at one size."""
  pts = sorted((p for p in points if p['pattern'] == pattern and p['size'] == size
                and 'step_s' in p), key=lambda p: p['frames'])
  if len(pts) < 2:
    return math.nan
  return pts[-1]['step_s'] / pts[0]['step_s']


def plot(points: list[dict], path, title: str = '') -> None:
  """2x2 figure: step time and memory, vs frames and vs frame size."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  frames_size = min(p['size'] for p in points)
  frames0 = min(p['frames'] for p in points)
  fig, axes = plt.subplots(2, 2, figsize=(11, 8))
  markers = {'space_only': 's', 'joint': 'o', 'divided': '^'}
  for pattern in PATTERNS:
    by_t = sorted((p for p in points if p['pattern'] == pattern and p['size'] == frames_size),
                  key=lambda p: p['frames'])
    by_s = sorted((p for p in points if p['pattern'] == pattern and p['frames'] == frames0),
                  key=lambda p: p['size'])
    for col, pts, key in ((0, by_t, 'frames'), (1, by_s, 'size')):
      timed = [p for p in pts if 'step_s' in p]
      axes[0, col].plot([p[key] for p in timed], [p['step_s'] for p in timed],
                        marker=markers[pattern], label=pattern)
      sized = [p for p in pts if p.get('peak_bytes')]
      axes[1, col].plot([p[key] for p in sized], [p['peak_bytes'] / 2 ** 20 for p in sized],
                        marker=markers[pattern], label=pattern)
  for row, ylabel in ((0, 'train step time (s)'), (1, 'step memory (MiB)')):
    axes[row, 0].set_xlabel(f'frames T (at {frames_size}x{frames_size})')
    axes[row, 1].set_xlabel(f'frame size (at T={frames0})')
    for col in (0, 1):
      ax = axes[row, col]
      ax.set_xscale('log', base=2)
      ax.set_yscale('log')
      ax.set_ylabel(ylabel)
      ax.grid(True, which='both', alpha=0.3)
      ax.legend()
  fig.suptitle(title or 'Attention patterns: cost vs frames and resolution')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
