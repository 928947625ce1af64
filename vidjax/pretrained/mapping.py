"""What a converter did to every parameter, so `python -m vidjax.convert` can print it.

A converter takes the source checkpoint's arrays (`{name: np.ndarray}`, read
without PyTorch) and the target model's parameter shapes, and returns the
target parameters plus one `Entry` per target parameter and per ignored
source array. Every target leaf is accounted for: taken as is (`matched`),
resampled on its grid (`resampled`, e.g. a position embedding to a new patch
count), grown along time (`inflated`), or left at its fresh initialisation
(`new`, e.g. a head of another class count or TimeSformer's temporal parts).
A source array nothing used is `ignored` (e.g. an ImageNet head). A shape that
cannot be mapped is a `MappingError` naming the first such parameter.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Iterable

from vidjax.errors import UserError

ACTIONS = ('matched', 'resampled', 'inflated', 'new', 'ignored')


class MappingError(UserError):
  """A source array that cannot become its target parameter: one line, names both."""


@dataclasses.dataclass(frozen=True)
class Entry:
  target: str  # 'backbone/stage_0/block_0/conv_1/kernel'; '' for an ignored source array.
  action: str  # One of ACTIONS.
  source: str = ''  # The source key(s) it came from; '' for 'new'.
  shape: tuple[int, ...] = ()  # The target's shape (the source's for 'ignored').
  note: str = ''  # How: 'pos-embed 14x14 -> 4x4 bilinear', 'central frame of 2', ...

  def __post_init__(self):
    if self.action not in ACTIONS:
      raise ValueError(f'action must be one of {ACTIONS}, got {self.action!r}')


def counts(entries: Iterable[Entry]) -> dict[str, int]:
  """{action: how many}, every action present, in ACTIONS order."""
  found = collections.Counter(e.action for e in entries)
  return {action: found.get(action, 0) for action in ACTIONS}


def format_table(entries: Iterable[Entry]) -> str:
  """One line per parameter, grouped by action, then the counts: what `vidjax.convert` prints."""
  entries = list(entries)
  lines = []
  for action in ACTIONS:
    for e in (e for e in entries if e.action == action):
      name = e.target or e.source
      origin = f' <- {e.source}' if e.source and e.target else ''
      note = f'  ({e.note})' if e.note else ''
      lines.append(f'{action:9s} {name} {tuple(e.shape)}{origin}{note}')
  total = ', '.join(f'{n} {a}' for a, n in counts(entries).items())
  lines.append(f'{len(entries)} entries: {total}')
  return '\n'.join(lines)
