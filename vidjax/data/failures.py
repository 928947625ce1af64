"""Videos that fail to decode: counted, logged once each, and a stop past a fraction.

Real datasets hold a few broken files (a truncated download, a codec decord
cannot read); a run should skip them, say so, and stop only when so many
fail that the numbers would mean nothing.
"""
from __future__ import annotations

import logging
import re
import signal

from vidjax.errors import UserError

log = logging.getLogger(__name__)


class DataError(UserError):
  """Too much of a dataset failed to decode; the message is one line."""


class FailureCounter:
  """Counts videos that failed to decode; stops the run past a fraction.

  `epoch_size`, when set (train_dataset sets it), makes it log a summary
  at the end of an epoch (of a fresh run) when videos failed since the last
  one, and otherwise at epochs 1, 2, 4, 8, ...: a small dataset goes round
  hundreds of times, and a line per epoch would bury the training log.
  """

  def __init__(self, split: str, max_fraction: float, min_seen: int = 20):
    self.split = split
    self.max_fraction = max_fraction
    self.min_seen = min_seen
    self.seen = 0
    self.epoch_size = 0
    self.failed: dict[str, str] = {}
    self._failed_at_summary = 0

  def keep(self, element: dict) -> bool:
    """A grain filter: False for a failed video, which is logged and counted."""
    self.seen += 1
    ok = 'error' not in element
    if not ok:
      if element['path'] not in self.failed:
        log.warning('skipping unreadable video %s: %s', element['path'], element['error'])
      self.failed[element['path']] = element['error']
    if self.seen >= self.min_seen:
      self.check()
    if self.epoch_size and self.seen % self.epoch_size == 0:
      epoch = self.seen // self.epoch_size
      if len(self.failed) > self._failed_at_summary or epoch & (epoch - 1) == 0:
        log.info('%s (epoch %d)', self.summary(), epoch)
        self._failed_at_summary = len(self.failed)
    return ok

  def check(self) -> None:
    fraction = len(self.failed) / max(self.seen, 1)
    if fraction > self.max_fraction:
      worst = ', '.join(f'{p} ({r})' for p, r in list(self.failed.items())[:3])
      raise DataError(f'{len(self.failed)} of {self.seen} {self.split} videos failed to decode '
                      f'({fraction:.0%} > data.max_failed_fraction={self.max_fraction}); '
                      f'first: {worst}')

  def summary(self) -> str:
    return f'{self.split}: {len(self.failed)} unreadable video(s) skipped of {self.seen} read'


class DecodeWorkerDied(DataError):
  """A decode worker process ended under the pipeline (a signal, the OOM killer, a crash)."""


_GRAIN_WORKER_DIED = re.compile(r'Worker process was terminated unexpectedly with exit code (-?\d+)')


def as_worker_death(error: BaseException) -> DecodeWorkerDied | None:
  """grain's error for a dead worker process -> one line naming what ended it; else None."""
  match = _GRAIN_WORKER_DIED.search(str(error))
  if match is None:
    return None
  code = int(match.group(1))
  if code < 0:
    name = signal.Signals(-code).name if -code in signal.valid_signals() else f'signal {-code}'
    how = f'killed by {name}' + (' (the out-of-memory killer sends it)' if -code == 9 else '')
  else:
    how = f'exited with code {code} (a crash in the decoder?)'
  return DecodeWorkerDied(f'a decode worker process was {how}')
