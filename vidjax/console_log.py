"""`workdir/console.log`: everything a run prints, appended across resumes.

A Python-level tee would miss most of what goes wrong: the video decoders'
C++ messages, grain's decode workers (child processes) and the resource
tracker all write to file descriptors 1 and 2 directly. So `tee` points
those descriptors at pipes, and a thread copies each pipe to the terminal
and to the log, the way `tee` does in a shell.

The copying thread must never stop: a process writing into a full pipe with
no reader would hang. Any error writing the log (a full disk, a removed
workdir) therefore ends the logging only, with one line on the terminal,
while the terminal keeps getting everything.

Progress bars redraw a line with carriage returns many times a second; the
log keeps only each line's last state. Each invocation starts with a header
line naming the command, so a resumed run's log reads as one history.
Process 0 writes `console.log`, process i of a multi-host run `console.process<i>.log`.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import pathlib
import shlex
import sys
import threading
import time
from typing import Iterator


def log_path(workdir: str | os.PathLike, process_index: int) -> pathlib.Path:
  name = 'console.log' if process_index <= 0 else f'console.process{process_index}.log'
  return pathlib.Path(workdir) / name


class _LineLog:
  """The log file, written a line at a time from several copying threads."""

  def __init__(self, path: pathlib.Path, terminal_fd: int):
    self.path = path
    self._file = path.open('a', encoding='utf-8', errors='replace')
    self._lock = threading.Lock()
    self._terminal_fd = terminal_fd

  def write_line(self, line: str) -> None:
    with self._lock:
      if self._file is None:
        return
      try:
        self._file.write(line)
        self._file.flush()
      except OSError as e:  # Full disk, gone workdir: stop logging, keep running.
        self._file = None
        os.write(self._terminal_fd, f'warning: {self.path} is no longer written: {e}\n'.encode())

  def close(self) -> None:
    with self._lock:
      if self._file is not None:
        with contextlib.suppress(OSError):
          self._file.close()
        self._file = None
      os.close(self._terminal_fd)


def _last_state(pending: str) -> str:
  """A line's text after its last carriage return (a progress bar's final redraw)."""
  return pending.rsplit('\r', 1)[-1]


def _copy(read_fd: int, terminal_fd: int, log: _LineLog) -> None:
  """Pipe -> terminal (as is) and log (whole lines, redraws collapsed), until EOF."""
  pending = ''
  while True:
    try:
      chunk = os.read(read_fd, 65536)
    except OSError:
      break
    if not chunk:
      break
    with contextlib.suppress(OSError):  # A closed terminal must not stop the copying.
      os.write(terminal_fd, chunk)
    pending += chunk.decode('utf-8', errors='replace')
    *lines, pending = pending.split('\n')
    for line in lines:
      log.write_line(_last_state(line) + '\n')
    pending = _last_state(pending)
  if pending:
    log.write_line(pending + '\n')
  os.close(read_fd)


@contextlib.contextmanager
def tee(workdir: str | None, process_index: int = 0, argv: list[str] | None = None
        ) -> Iterator[pathlib.Path | None]:
  """Copies fds 1 and 2 (this process's and its children's) into the workdir's log.

  Yields the log's path, or None when there is no workdir to write to (then
  nothing changes). Descriptors are restored on exit, after the copying threads
  have drained what was written before it.
  """
  path = None
  if workdir:
    try:
      pathlib.Path(workdir).mkdir(parents=True, exist_ok=True)
      path = log_path(workdir, process_index)
      log = _LineLog(path, terminal_fd=os.dup(2))
    except OSError as e:
      print(f'warning: no console log in {workdir}: {e}', file=sys.stderr)
      path = None
  if path is None:
    yield None
    return
  command = shlex.join(argv if argv is not None else sys.orig_argv)  # As typed: -m kept.
  stamp = datetime.datetime.now().astimezone().isoformat(timespec='seconds')
  log.write_line(f'=== {stamp} {command}\n')
  sys.stdout.flush()
  sys.stderr.flush()
  saved, threads = {}, []
  for fd in (1, 2):
    read_fd, write_fd = os.pipe()
    saved[fd] = os.dup(fd)
    os.dup2(write_fd, fd)
    os.close(write_fd)
    thread = threading.Thread(target=_copy, args=(read_fd, saved[fd], log),
                              name=f'vidjax-console-log-{fd}', daemon=True)
    thread.start()
    threads.append(thread)
  try:
    yield path
  finally:
    sys.stdout.flush()
    sys.stderr.flush()
    for fd in (1, 2):
      os.dup2(saved[fd], fd)  # Closes our end of the pipe: the thread reads to EOF.
    # A child still holding the pipe (a decode worker that exits after us) keeps it
    # open: wait briefly for what is already in it, then leave the daemon thread to
    # copy the rest to the terminal rather than hang (its descriptors stay open).
    deadline = time.monotonic() + 1.0
    for thread in threads:
      thread.join(timeout=max(0.0, deadline - time.monotonic()))
    if not any(thread.is_alive() for thread in threads):
      log.close()
      for fd in (1, 2):
        os.close(saved[fd])
