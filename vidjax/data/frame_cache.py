"""Whole decoded videos kept in a decode worker's memory, so later epochs decode nothing.

Why: a small dataset is read many times (the embedded set's 3,000 videos, ten
epochs in the main job), and on a 2-core machine the decode worker competes
with the train step for the same cores. The first time a video is read whole
(all its frames, at the size the clip needs), it is kept; every later clip of
it is an index into those frames. The clip is byte for byte the one decoding
would give (tests/test_frame_cache.py), so seeds, resumes and results do not
change with the cache on or off.

The budget is in bytes per process. A video whose frames would not fit is
read as before, only its sampled frames, and nothing is evicted: once the
budget is full, the cache stops growing. A video that cannot be read whole
(damage past the sampled frames) is remembered and read the old way.

Each worker process holds its own cache: the map function that owns it is
copied into every worker, and a copy starts empty (`__getstate__`).
"""
from __future__ import annotations

from typing import Hashable

import numpy as np


class FrameCache:
  """{key: frames [N, H, W, 3] uint8}, up to `budget_bytes`; never evicts."""

  def __init__(self, budget_bytes: int):
    self.budget_bytes = int(budget_bytes)
    self.used_bytes = 0
    self._videos: dict[Hashable, np.ndarray] = {}
    self._unreadable: set[Hashable] = set()

  def __getstate__(self) -> dict:  # A copy (a worker's) starts empty.
    return {'budget_bytes': self.budget_bytes}

  def __setstate__(self, state: dict) -> None:
    self.__init__(state['budget_bytes'])

  def __len__(self) -> int:
    return len(self._videos)

  def get(self, key: Hashable) -> np.ndarray | None:
    return self._videos.get(key)

  def wants(self, key: Hashable, nbytes: int) -> bool:
    """Whether to read this video whole: it fits, and reading it whole has not failed."""
    return key not in self._unreadable and self.used_bytes + nbytes <= self.budget_bytes

  def put(self, key: Hashable, frames: np.ndarray) -> None:
    if key in self._videos or not self.wants(key, frames.nbytes):
      return
    frames.setflags(write=False)  # A clip is a copy (fancy indexing); the cache is never written.
    self._videos[key] = frames
    self.used_bytes += frames.nbytes

  def unreadable(self, key: Hashable) -> None:
    self._unreadable.add(key)
