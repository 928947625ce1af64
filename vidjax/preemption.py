"""Stopping cleanly when the machine is taken away.

SIGTERM (a preemption notice) or SIGINT (Ctrl-C) does not kill the run: the
loop finishes its current step, saves a checkpoint and exits with
`PREEMPTED_EXIT_CODE`, so a scheduler or a wrapper script can tell "run the
same command again" from a failure. With many processes every host must
save the same step; JAX's preemption sync point (the coordination service
handles SIGTERM there) decides which.
"""
from __future__ import annotations

import signal
import threading

import jax
from jax.experimental import multihost_utils

# EX_TEMPFAIL from sysexits.h: a temporary failure, to be retried.
PREEMPTED_EXIT_CODE = 75


class Preempted(Exception):
  """Raised after the checkpoint of a preempted run is written."""

  def __init__(self, step: int, workdir: str):
    super().__init__(f'preempted: saved step {step} to {workdir}; run the same command to resume')
    self.step = step


class PreemptionGuard:
  """Turns SIGTERM / SIGINT into a request to stop after the current step."""

  def __init__(self):
    self.signal_name = ''
    self._previous = {}
    self._multi_process = jax.process_count() > 1
    if threading.current_thread() is not threading.main_thread():
      return  # Signals can only be caught in the main thread.
    # With several processes SIGTERM is the coordination service's, and a
    # signal caught on one host alone would make the hosts disagree.
    signals = () if self._multi_process else (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
      self._previous[sig] = signal.signal(sig, self._handle)

  def _handle(self, signum, frame):
    del frame
    self.signal_name = signal.Signals(signum).name

  def should_stop(self, step: int) -> bool:
    """True once a stop was asked for; on many hosts, at the same step on all."""
    if self._multi_process:
      return multihost_utils.reached_preemption_sync_point(step)
    return bool(self.signal_name)

  def close(self) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous = {}
