"""Huge pages for XLA:CPU's per-step buffers: one re-exec at start-up, before anything else runs.

XLA:CPU allocates each execution's temporaries in one block (106 MB for the
demo LRCN step) and frees it afterwards. A block that large is beyond glibc
malloc's mmap threshold (32 MB at most), so every step maps fresh memory and
page-faults all of it in again: 36,000 faults per step, about a fifth of the
step's time on 2 cores, most of the "system time" a run shows. glibc >= 2.35's
`glibc.malloc.hugetlb=1` tunable makes malloc ask for transparent huge pages
(madvise), which map 2 MB at a time: the demo step then faults 600 times and
runs 1.2x faster end to end, with bit-identical results (README: Performance).

glibc reads tunables only when a process starts, so `main` re-executes the
same command once with the tunable added (same PID, same arguments and
streams). Only to train: short, compile-bound processes came out slower with
it (the test suite's `python -m vidjax.main` runs by about a quarter, so
tests/conftest.py turns it off). Nothing happens where it cannot help
either: not Linux/glibc, glibc older than 2.35, transparent huge pages set to
'never', the tunable already given, or VIDJAX_HUGEPAGES=0.
"""
from __future__ import annotations

import os
import platform
import sys

TUNABLE = 'glibc.malloc.hugetlb=1'
_THP = '/sys/kernel/mm/transparent_hugepage/enabled'


def _glibc_at_least(major: int, minor: int) -> bool:
  libc, version = platform.libc_ver()
  if libc != 'glibc':
    return False
  try:
    found = tuple(int(part) for part in version.split('.')[:2])
  except ValueError:
    return False
  return found >= (major, minor)


def _transparent_huge_pages() -> bool:
  try:
    with open(_THP) as f:
      return '[never]' not in f.read()
  except OSError:
    return False


def environment_with_huge_pages(environ=None) -> dict[str, str] | None:
  """The environment to re-execute with, or None when there is nothing to gain."""
  environ = dict(os.environ if environ is None else environ)
  tunables = environ.get('GLIBC_TUNABLES', '')
  if (environ.get('VIDJAX_HUGEPAGES', '1') == '0' or 'glibc.malloc.hugetlb' in tunables
      or not sys.platform.startswith('linux') or not _glibc_at_least(2, 35)
      or not _transparent_huge_pages()):
    return None
  environ['GLIBC_TUNABLES'] = ':'.join(filter(None, [tunables, TUNABLE]))
  return environ


def trains(argv: list[str]) -> bool:
  """Whether main's arguments ask for --mode train (the default)."""
  mode = 'train'
  for i, arg in enumerate(argv):
    if arg.startswith('--mode='):
      mode = arg[len('--mode='):]
    elif arg == '--mode' and i + 1 < len(argv):
      mode = argv[i + 1]
  return mode == 'train'


def reexec_with_huge_pages() -> None:
  """Replaces this process by the same command with the tunable set, when it trains; returns
  where it does not."""
  environ = environment_with_huge_pages()
  if environ is None or not trains(sys.argv[1:]):
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
