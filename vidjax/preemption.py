"""Stopping cleanly when the machine is taken away, whatever the run is doing.

SIGTERM (a preemption notice) or SIGINT (Ctrl-C) does not kill the run. While
a step computes or a checkpoint is written, the signal only asks to stop:
the loop finishes the step, saves and exits with `PREEMPTED_EXIT_CODE`.
While the run waits -- for a batch, for an evaluation, while it generates
its dataset or starts up -- nothing useful would finish soon (the decode
workers may have died of the same signal), so the signal interrupts the
wait at once (`PreemptionGuard.interruptible`) and the loop saves the last
finished step, or says that nothing needed saving. A scheduler or a wrapper
script can tell "run the same command again" (75) from a failure. With
many processes every host must save the same step; JAX's preemption sync
point (the coordination service handles SIGTERM there) decides which.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading

import jax
from jax.experimental import multihost_utils

# EX_TEMPFAIL from sysexits.h: a temporary failure, to be retried.
PREEMPTED_EXIT_CODE = 75


class Preempted(Exception):
  """Raised after the checkpoint of a stopped run is written."""

  def __init__(self, step: int, workdir: str, reason: str = 'preempted'):
    super().__init__(f'{reason}: saved step {step} to {workdir}; run the same command to resume')
    self.step = step


class NothingToSave(Preempted):
  """Stopped before this run finished a step: the workdir is as it was."""

  def __init__(self, step: int, workdir: str, when: str = 'before the first step'):
    newest = f' (its newest checkpoint is step {step})' if step else ''
    Exception.__init__(self, f'preempted {when}: nothing needed saving, {workdir} is as it '
                             f'was{newest}; run the same command again')
    self.step = step


class StopRequested(Exception):
  """A stop signal arrived while the run was waiting (see `PreemptionGuard.interruptible`)."""


def _forward_as_sigterm(signum, frame):
  del signum, frame
  os.kill(os.getpid(), signal.SIGTERM)


class PreemptionGuard:
  """Turns SIGTERM / SIGINT into a request to stop: after the step, or at once while waiting."""

  def __init__(self):
    self.signal_name = ''
    self._previous = {}
    self._waiting = 0
    self._multi_process = jax.process_count() > 1
    if threading.current_thread() is not threading.main_thread():
      return  # Signals can only be caught in the main thread.
    # With several processes SIGTERM is the coordination service's (a signal
    # caught on one host alone would make the hosts disagree): Ctrl-C is
    # handed to it as a SIGTERM, so every host stops at the same step.
    if self._multi_process:
      self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, _forward_as_sigterm)
      return
    for sig in (signal.SIGTERM, signal.SIGINT):
      self._previous[sig] = signal.signal(sig, self._handle)

  def _handle(self, signum, frame):
    del frame
    self.signal_name = signal.Signals(signum).name
    if self._waiting:
      raise StopRequested(self.signal_name)

  @contextlib.contextmanager
  def interruptible(self):
    """Within this block a stop signal raises `StopRequested` at once (also one already caught)."""
    if self.signal_name and not self._multi_process:
      raise StopRequested(self.signal_name)
    self._waiting += 1
    try:
      yield
    finally:
      self._waiting -= 1

  def should_stop(self, step: int) -> bool:
    """True once a stop was asked for; on many hosts, at the same step on all."""
    if self._multi_process:
      return multihost_utils.reached_preemption_sync_point(step)
    return bool(self.signal_name)

  def close(self) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous = {}
