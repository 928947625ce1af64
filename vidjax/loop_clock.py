"""Where a training run's wall time goes, measured by the loop itself on every run.

The loop wraps each of its parts in `clock.part(name)`; the rest of the wall
time is `other`. No profiler and no extra device sync: jax dispatch is
asynchronous, so the device's compute shows up where the host waits for it
-- the progress bar's wait for the previous step, the metrics fetched every
`log_every` steps -- as 'waiting on the steps', and 'dispatching steps' is
the host's own cost of launching them (the first launch, which compiles, is
apart). 'waiting for input' is the time the loop blocks on the next batch
beyond what the decode workers had ready (on 2 cores the workers and the
step also share the CPUs, which no host timer can apportion).

The totals go to results.json (`time_seconds`) and one console line;
'other' is the rest (logging, TensorBoard, the final report's plots).
"""
from __future__ import annotations

import collections
import contextlib
import time

PARTS = {  # name -> its short label on the console.
    'setup': 'setup', 'compiling the step': 'compile', 'dispatching steps': 'dispatch',
    'waiting on the steps': 'steps', 'waiting for input': 'input', 'evaluation': 'eval',
    'checkpoints': 'checkpoints'}


class LoopClock:
  """Seconds per part of a run, from `start` (a `time.perf_counter()` value) on."""

  def __init__(self, start: float):
    self.start = start
    self.seconds: dict[str, float] = collections.defaultdict(float)

  @contextlib.contextmanager
  def part(self, name: str):
    if name not in PARTS:
      raise ValueError(f"unknown part '{name}'; one of {', '.join(PARTS)}")
    begin = time.perf_counter()
    try:
      yield
    finally:
      self.seconds[name] += time.perf_counter() - begin

  def mark(self, name: str) -> None:
    """Everything from the start not yet counted goes to `name` (the set-up, before the loop)."""
    self.seconds[name] += max(0.0, self.elapsed() - sum(self.seconds.values()))

  def elapsed(self) -> float:
    return time.perf_counter() - self.start

  def totals(self) -> dict[str, float]:
    """{part: seconds} in PARTS order, parts never entered left out, and 'other' and 'total'."""
    total = self.elapsed()
    out = {name: round(self.seconds[name], 2) for name in PARTS if name in self.seconds}
    out['other'] = round(max(0.0, total - sum(self.seconds.values())), 2)
    out['total'] = round(total, 2)
    return out

  def line(self) -> str:
    """'setup 31, compile 12, ... (s)' for the console summary."""
    totals = self.totals()
    del totals['total']
    return ', '.join(f'{PARTS.get(name, name)} {seconds:.0f}'
                     for name, seconds in totals.items()) + ' (s)'

