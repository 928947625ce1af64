"""Progress bars with an ETA for the long loops other than training's.

Evaluation, dataset generation and feature extraction share one look: a
tqdm bar on stderr, redrawn at most twice a second, drawn by process 0
only (every host runs the same loop). A bar counts finished items, never
queued ones: jax dispatch is asynchronous, so a bar that advanced when a
batch was handed to the device would run ahead of it and its ETA would lie.
A loop whose results reach the host anyway (np.asarray) advances after that;
one that keeps device arrays until the end counts them with `Finished`,
which asks whether they are ready without waiting for them.
(train.py keeps its own bar: it also shows the loss and resumes mid-way.)
"""
from __future__ import annotations

import collections
import sys
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar('T')
MIN_INTERVAL_S = 0.5  # At most two redraws a second: the bar costs nothing next to the loop.


def _shown(enabled: bool) -> bool:
  if not enabled:
    return False
  import jax  # Here, not above: dataset generation's spawned workers never need it.
  return jax.process_index() == 0


def bar(total: int, desc: str, enabled: bool = True, *, unit: str = 'batch',
        leave: bool = True) -> tqdm:
  """A bar over `total` items; with `enabled` false, or off process 0, a silent one.

  `leave=False` for a loop inside another (an evaluation during training),
  so that its bar goes away when it ends rather than piling up lines.
  """
  return tqdm(total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr,
              mininterval=MIN_INTERVAL_S, dynamic_ncols=True, disable=not _shown(enabled))


def track(items: Iterable[T], desc: str, enabled: bool = True, *, total: int | None = None,
          unit: str = 'video', leave: bool = True) -> Iterator[T]:
  """`items`, each counted once the loop body that got it ends (it asks for the next).

  `total` is for an iterable without a length, such as a pool's `imap_unordered`.
  """
  shown = bar(len(items) if total is None else total, desc, enabled, unit=unit, leave=leave)
  try:
    for item in items:
      yield item
      shown.update(1)
  finally:
    shown.close()


class Finished:
  """Advances a bar by one for each queued device result that is ready; never waits.

  Results finish in the order they were queued (one device stream), so
  only the oldest is asked. Call `add` after queueing each batch and `close`
  once the caller has read every result (np.asarray): all are finished then.
  """

  def __init__(self, shown: tqdm):
    self.bar = shown
    self.queued: collections.deque = collections.deque()

  def add(self, result) -> None:
    if self.bar.disable:
      return
    self.queued.append(result)
    while self.queued and _ready(self.queued[0]):
      self.queued.popleft()
      self.bar.update(1)

  def close(self) -> None:
    self.bar.update(len(self.queued))
    self.queued.clear()
    self.bar.close()


def _ready(result) -> bool:
  """Whether every array of a pytree of results is computed (host arrays always are)."""
  import jax
  return all(getattr(x, 'is_ready', lambda: True)() for x in jax.tree.leaves(result))
