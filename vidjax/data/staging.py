"""Putting a generated dataset in place in one step, so no reader ever sees half of one.

Every embedded set is written into a staging folder beside its root, its
completion marker last, then renamed onto the root: an interrupted
generation leaves nothing that looks complete, and two processes generating
at once both end with one whole dataset.
"""
from __future__ import annotations

import os
import pathlib
import shutil
from typing import Callable


def staging_dir(root: pathlib.Path) -> pathlib.Path:
  """An empty folder beside `root`, private to this process, to generate into."""
  root.parent.mkdir(parents=True, exist_ok=True)
  staging = root.parent / f'.{root.name}.tmp-{os.getpid()}'
  shutil.rmtree(staging, ignore_errors=True)
  return staging


def publish(staging: pathlib.Path, root: pathlib.Path, is_ours: Callable[[], bool]) -> None:
  """Renames the finished `staging` onto `root`, replacing what was there.

  When another process put the wanted dataset there first (`is_ours()`), its
  copy is kept and ours dropped: its readers may already be reading it (two
  test workers generating the same set). Otherwise the rename's error stands.
  """
  if root.exists() and is_ours():
    shutil.rmtree(staging, ignore_errors=True)
    return
  stale = root.parent / f'.{root.name}.old-{os.getpid()}'
  if root.exists():
    os.rename(root, stale)  # A rename cannot replace a non-empty directory.
  try:
    os.rename(staging, root)
  except OSError:
    shutil.rmtree(staging, ignore_errors=True)
    if not is_ours():
      raise
  shutil.rmtree(stale, ignore_errors=True)
