"""What every worker process vidjax starts does first: outlive no parent, leave stop signals to it.

Decode workers (grain's `mp_prefetch`) and the dataset generator's pool are
spawned children, in the run's process group, so a cluster's preemption
notice (SIGTERM to the group) or Ctrl-C (SIGINT to the foreground group)
reaches them too. The main process alone decides what a stop means (finish
the step, save, exit 75), and on many hosts it must still reach the step
every host stops at, which needs its batches: so decode workers ignore
Ctrl-C, keep serving for `SIGTERM_GRACE_S` after a SIGTERM, and are
stopped by grain when the main process is done with them.
Pool workers ignore Ctrl-C only: `Pool.terminate` stops them with SIGTERM.
Either kind exits within `PARENT_POLL_S` of its parent's death, even by
SIGKILL: a thread watches the parent's pid, so no orphan keeps hundreds of
megabytes after a `kill -9` of the run.
"""
from __future__ import annotations

import os
import signal
import threading
import time

PARENT_POLL_S = 0.5
SIGTERM_GRACE_S = 30.0  # How long a decode worker keeps serving after a SIGTERM.


def _exit_with_parent(parent: int) -> None:
  while True:
    time.sleep(PARENT_POLL_S)
    if os.getppid() != parent:  # Re-parented: the process that started us is gone.
      os._exit(1)


def _watch_parent() -> None:
  threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True,
                   name='vidjax-exit-with-parent').start()


def _exit_later(signum, frame) -> None:
  """SIGTERM: keep decoding for the main process a while, then go.

  The main process stops its workers itself when it is done with them (grain
  ends them, or they follow their parent out). The grace period bounds the
  wait of anything that stops a worker with SIGTERM and then joins it, such
  as multiprocessing's own clean-up at exit.
  """
  del signum, frame
  timer = threading.Timer(SIGTERM_GRACE_S, os._exit, args=(0,))
  timer.daemon = True
  timer.start()
  signal.signal(signal.SIGTERM, signal.SIG_IGN)  # One timer is enough.


def init_decode_worker(index: int = 0, count: int = 1) -> None:
  """grain's `worker_init_fn(index, count)` for decode workers."""
  del index, count
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  signal.signal(signal.SIGTERM, _exit_later)
  _watch_parent()


def init_pool_worker() -> None:
  """A multiprocessing.Pool initializer (dataset generation)."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  _watch_parent()
