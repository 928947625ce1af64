"""Step time and memory of space_only, joint and divided attention vs T and resolution.

TimeSformer's cost argument (Bertasius et al. 2021, section 3): with N patches
per frame and T frames, joint space-time attention compares all T*N tokens
with each other, O((T*N)^2) per block, while divided attention compares each
token with the N of its frame and the T at its position, O(T*N*(T + N)).
Space-only is O(T*N^2), linear in T. The three models here are the same
4-block, width-192 transformer (the bench shape of the table, `tubelet_size=1`
for all three so they see the same tokens), differing only in `attention`.

Points: T in (8, 16, 32, 64) at 112x112 (N = 49), then 160 and 224 at T=8
(N = 100, 196), batch 2. Each point compiles the train step once (XLA's
memory plan comes from that); then all points are timed in rounds (one
step each per round). The time is bounded three ways, and the JSON says
which points were cut: a point whose steps exceed the per-point budget gets
fewer of them (at least 2); a point whose compiled temporaries exceed
`max_temp_gib` is not run; once half the section's budget is spent
compiling, the remaining points (the resolution sweep, then the longest
clips) are skipped. Like the table, the points start from `host_state`.
"""
from __future__ import annotations

import concurrent.futures
import math
import time

import numpy as np

from experiments import bench_step

PATTERNS = ('space_only', 'joint', 'divided')
FRAMES = (8, 16, 32, 64)
SIZES = (112, 160, 224)
BATCH = 2
_STA = 'model.space_time_attention.'


def base_overrides(width: int = 192, layers: int = 4, heads: int = 3, patch: int = 16) -> tuple:
  return (f'{_STA}hidden_size={width}', f'{_STA}num_layers={layers}', f'{_STA}num_heads={heads}',
          f'{_STA}mlp_dim={4 * width}', f'{_STA}patch_size={patch}', f'{_STA}tubelet_size=1',
          f'{_STA}stem=patch')


def case(pattern: str, frames: int, size: int, batch: int = BATCH, model=None) -> bench_step.Case:
  model = base_overrides() if model is None else model
  return bench_step.Case(
      f'{pattern} T={frames} {size}x{size}', f'configs/space_time_attention.py:{pattern}',
      model + (f'data.num_frames={frames}', f'data.height={size}', f'data.width={size}'),
      batch_size=batch, shape=f'{frames}x{size}x{size}')


def run(peak, *, frames=FRAMES, sizes=SIZES, batch: int = BATCH, model=None, steps: int = 5,
        budget_s: float = 12.0, section_budget_s: float = 300.0, max_temp_gib: float = 8.0,
        workers: int = 2, log=print) -> list[dict]:
  """Every (pattern, T, size) point: step time, FLOPs, memory; skipped ones say why.

  First every point is compiled, `workers` at a time (XLA compiles mostly on
  one thread; nothing is timed meanwhile, and the points' compile times are
  not reported as the table's are): the T sweep, then the resolution sweep,
  each from cheap to dear with the three patterns side by side, so when the
  section's budget runs out it is the largest points of every pattern that
  are skipped. Then the points are timed in rounds, one step of each per
  round, so a burst of load from other programs spreads over all points
  instead of bending one of the curves.
  """
  begin = time.perf_counter()
  # The T sweep (the cost argument) before the resolution sweep, each from cheap to dear.
  grid = ([(t, sizes[0]) for t in sorted(frames)] +
          [(min(frames), s) for s in sorted(sizes)[1:]])
  points = [{'pattern': pattern, 'frames': t, 'size': size, 'batch': batch}
            for t, size in grid for pattern in PATTERNS]
  steps_of = {}

  def prepare(point):  # Build and compile one point; runs `workers` at a time.
    if time.perf_counter() - begin > section_budget_s / 2:  # Keep half for timing.
      raise _Skip(f'the section budget ({section_budget_s:.0f} s) was spent compiling')
    step = bench_step.build(case(point['pattern'], point['frames'], point['size'], batch,
                                 model)).compile()
    mem = bench_step.memory(step)
    point.update(compile_s=step.compile_s, train_flops=bench_step.train_step_flops(step),
                 temp_bytes=mem.get('temp_bytes'), peak_bytes=mem['peak_bytes'],
                 memory_source=mem['source'], compiled_alongside=workers - 1)
    if (mem.get('temp_bytes') or 0) > max_temp_gib * 2 ** 30:
      raise _Skip(f'compiled temporaries over {max_temp_gib} GiB')
    return step

  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    futures = [pool.submit(prepare, p) for p in points]  # In grid order, cheap to dear.
    for point, future in zip(points, futures):
      try:
        steps_of[id(point)] = future.result()
      except Exception as e:  # One failed point (e.g. out of memory) must not end the run.
        point['skipped'] = str(e) if isinstance(e, _Skip) else (
            f'{type(e).__name__}: {str(e).splitlines()[0][:200]}')
        log(f"  scaling {point['pattern']:10s} T={point['frames']:2d} "
            f"{point['size']}x{point['size']}: skipped ({point['skipped']})")

  timed = [p for p in points if id(p) in steps_of]
  times: dict[int, list[float]] = {id(p): [] for p in timed}
  ratios: dict[int, list[float]] = {id(p): [] for p in timed}
  for p in timed:  # Warm-up: one step each, which also says what a step costs.
    t0 = time.perf_counter()
    steps_of[id(p)].run()
    p['warmup_s'] = time.perf_counter() - t0
  for r in range(steps):
    for p in timed:
      over_budget = sum(times[id(p)]) + p['warmup_s'] > budget_s
      if r >= 2 and (over_budget or time.perf_counter() - begin > section_budget_s):
        continue  # At least 2 timed steps per point; more while the budgets allow.
      t0 = time.perf_counter()
      steps_of[id(p)].run()
      times[id(p)].append(time.perf_counter() - t0)
      ratios[id(p)].append(p['train_flops'] / times[id(p)][-1] / peak.sample())
  for p in timed:
    ts = np.asarray(times[id(p)])
    p.update(step_s=float(np.median(ts)), step_s_min=float(ts.min()), steps=len(ts),
             mfu=float(np.median(ratios[id(p)])))
    if len(ts) < steps:
      p['note'] = f'{len(ts)} timed steps (budgets: {budget_s:.0f} s a point, ' \
                  f'{section_budget_s:.0f} s the section)'
    log(f"  scaling {p['pattern']:10s} T={p['frames']:2d} {p['size']}x{p['size']}: "
        f"{p['step_s'] * 1e3:8.1f} ms/step ({len(ts)} steps), "
        f"{p['peak_bytes'] / 2 ** 20:7.0f} MiB, compile {p['compile_s']:.1f} s")
  steps_of.clear()
  return points


class _Skip(Exception):
  """A point left out on purpose; its message goes into the JSON."""


def growth(points: list[dict], pattern: str, size: int, frames: tuple[int, int]) -> float:
  """Step time at frames[1] over step time at frames[0], at one size (nan if missing)."""
  at = {p['frames']: p['step_s'] for p in points
        if p['pattern'] == pattern and p['size'] == size and 'step_s' in p}
  return at[frames[1]] / at[frames[0]] if frames[0] in at and frames[1] in at else math.nan


def common_frames(points: list[dict], size: int) -> tuple[int, int]:
  """The smallest and largest T timed for every pattern at `size`."""
  timed = [{p['frames'] for p in points if p['pattern'] == pattern and p['size'] == size
            and 'step_s' in p} for pattern in PATTERNS]
  common = set.intersection(*timed) if timed else set()
  return (min(common), max(common)) if common else (0, 0)


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
  # Guides through the smallest divided point: linear and quadratic in T.
  base = [p for p in points if p['pattern'] == 'divided' and p['size'] == frames_size
          and p['frames'] == frames0 and 'step_s' in p]
  ts = sorted({p['frames'] for p in points if p['size'] == frames_size})
  if base and len(ts) > 1:
    for power, style in ((1, ':'), (2, '--')):
      axes[0, 0].plot(ts, [base[0]['step_s'] * (t / frames0) ** power for t in ts], style,
                      color='gray', linewidth=1, label=f'~ T^{power}')
  sizes = sorted({p['size'] for p in points if p['frames'] == frames0})
  for row, ylabel in ((0, 'train step time (s)'), (1, 'step memory (MiB)')):
    axes[row, 0].set_xlabel(f'frames T (at {frames_size}x{frames_size})')
    axes[row, 1].set_xlabel(f'frame size in pixels (at T={frames0})')
    for col, ticks in ((0, ts), (1, sizes)):
      ax = axes[row, col]
      ax.set_xscale('log', base=2)
      ax.set_yscale('log')
      ax.set_xticks(ticks, [str(t) for t in ticks])
      ax.minorticks_off()
      ax.set_ylabel(ylabel)
      ax.grid(True, which='major', alpha=0.3)
      ax.legend()
  fig.suptitle(title or 'Attention patterns: cost vs frames and resolution')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
