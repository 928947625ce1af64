"""`DecodeError` and the checks every decoder call goes through.

Both decoders (decode_decord.py, decode_pyav.py) raise the same error, and
every public read in decode.py checks the file first and may run under a
timeout, so these live apart from either decoder.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, TypeVar

import numpy as np

_T = TypeVar('_T')


class DecodeError(Exception):
  """A video that cannot be read; `reason` is one short line."""

  def __init__(self, path: str, reason: str):
    super().__init__(f'{path}: {reason}')
    self.path = path
    self.reason = reason

  def __reduce__(self):
    # Exceptions pickle as cls(*self.args); ours has two arguments, not one.
    # Needed to send a DecodeError from a grain worker back to the main process.
    return (DecodeError, (self.path, self.reason))


def first_line(e: BaseException) -> str:
  """The first line of a decoder's message, short enough for a log line."""
  strerror = getattr(e, 'strerror', None)  # PyAV: without errno and path.
  lines = str(strerror or e).strip().splitlines()
  return (lines[0] if lines else type(e).__name__)[:200]


def mp4_without_moov(path: str) -> bool:
  """True for an ISO-BMFF (mp4/mov) file whose top-level boxes hold no moov.

  The usual shape of a half-downloaded mp4: the frame data (mdat) comes first
  and the index (moov) that is written last never arrived.
  """
  size = os.path.getsize(path)
  with open(path, 'rb') as f:
    head = f.read(12)
    if head[4:8] != b'ftyp':
      return False
    offset = 0
    while offset + 8 <= size:
      f.seek(offset)
      box = f.read(16)
      box_size, box_type = int.from_bytes(box[:4], 'big'), box[4:8]
      if box_type == b'moov':
        return False
      if box_size == 1:  # 64-bit size follows the type.
        box_size = int.from_bytes(box[8:16], 'big')
      if box_size < 8:  # 0 means "to the end of the file".
        break
      offset += box_size
  return True


def check_file(path: str) -> None:
  """Missing or empty files fail here, more clearly than in a decoder."""
  if not os.path.exists(path):
    raise DecodeError(path, 'file not found')
  if os.path.getsize(path) == 0:
    raise DecodeError(path, 'empty file')


def check_indices(path: str, indices: np.ndarray, num_frames: int) -> None:
  """A wanted frame past the end is a DecodeError, not a decoder error."""
  if num_frames <= 0:
    raise DecodeError(path, 'no frames')
  if indices.size and indices.max() >= num_frames:
    raise DecodeError(
        path, f'frame {int(indices.max())} past decodable end '
        f'({num_frames} frames)')


def call_with_timeout(path: str, timeout_s: float | None,
                      fn: Callable[..., _T], *args) -> _T:
  """Runs `fn(*args)`, giving up waiting after `timeout_s` seconds.

  The call runs in a daemon thread and the caller stops waiting for it. A
  decoder stuck inside C code cannot be interrupted from Python (neither by a
  thread nor by `signal.alarm`, whose handler only runs between bytecodes), so
  on timeout the thread lingers until the decoder returns, holding its memory
  and one core; being a daemon, it never blocks the process from exiting. This
  works in any thread of any process, grain workers included. A worker that
  times out often should be recycled.
  """
  if timeout_s is None:
    return fn(*args)
  result = {}

  def target():
    try:
      result['value'] = fn(*args)
    except BaseException as e:  # Re-raised in the caller's thread below.
      result['error'] = e

  thread = threading.Thread(target=target, name='vidjax-decode', daemon=True)
  thread.start()
  thread.join(timeout_s)
  if thread.is_alive():
    raise DecodeError(path, f'timed out after {timeout_s:g}s')
  if 'error' in result:
    raise result['error']
  return result['value']
