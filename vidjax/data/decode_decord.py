"""decord, the first decoder tried, and the two quirks it needs handled.

decord seeks to the wanted frames and scales in ffmpeg, which is what makes
clip sampling from long videos cheap. decode.py falls back to decode_pyav.py
when it fails. `decord.DECORDError` is not a `RuntimeError`, hence the broad
`except Exception` around every decord call here and in decode.py.

Memory: a VideoReader keeps decoding ahead after a seek, and long-lived
readers have been reported to grow without bound (dmlc/decord#157, #208).
Every reader lives for one call only: it is rewound with `seek(0)` (the
workaround reported in those issues) and `del`-ed before returning. With
that, 120 reads of 16 frames from a 256x340 H.264 video left the resident
size flat (about 60 MiB) with or without the `seek(0)`, which costs nothing
measurable; it stays as cheap insurance for long videos.

Frame sizes: decord's own scaler fails for some output widths (with this
build, e.g. 16, 24, 48 or 72 pixels wide: "DECORDArrayCopyFromTo: The size
must exactly match"). When a scaled read fails, decode.py reads the frames at
full size and scales them with ffmpeg's swscale through PyAV instead, and
adds the size to `CANNOT_SCALE` so later reads skip the failing attempt.

Files decord cannot open (garbage, a cut mp4, AV1): decord and ffmpeg print
two lines of C++ messages on each attempt, and decode.py then asks PyAV,
which reads the file or says why it cannot, silently. The file is added to
`CANNOT_OPEN`, by path, size and modification time, so later reads in this
process go straight to PyAV: a bad file's messages print once per decode
process, not every epoch, and a replaced file is tried afresh.
"""
from __future__ import annotations

import os

import numpy as np

from vidjax.data.decode_checks import check_indices

# (height, width) pairs decord's scaler failed on in this process; see above.
CANNOT_SCALE: set[tuple[int, int]] = set()


# (path, size, mtime) of files decord failed to open in this process; see above.
CANNOT_OPEN: set[tuple[str, int, int]] = set()


class NotOpened(Exception):
  """decord failed to open this file before, in this process."""


def _identity(path: str) -> tuple[str, int, int] | None:
  try:
    stat = os.stat(path)
  except OSError:
    return None
  return os.path.abspath(path), stat.st_size, stat.st_mtime_ns


def open_reader(path: str, height: int | None, width: int | None,
                num_threads: int):
  """A decord VideoReader scaling to (height, width), native size for None."""
  import decord  # Imported lazily: worker processes pay for it only once used.
  identity = _identity(path)
  if identity in CANNOT_OPEN:
    raise NotOpened(path)
  try:
    return decord.VideoReader(path, width=width or -1, height=height or -1,
                              num_threads=num_threads)
  except Exception:
    if identity is not None:
      CANNOT_OPEN.add(identity)
    raise


def release(reader) -> None:
  """Stops decoding ahead; see the module docstring."""
  try:
    reader.seek(0)
  except Exception:
    pass


def read_batch(path: str, indices: np.ndarray, height: int | None,
               width: int | None, num_threads: int) -> np.ndarray:
  """Opens, reads `indices` and releases: [N, H, W, 3] uint8."""
  reader = open_reader(path, height, width, num_threads)
  try:
    check_indices(path, indices, len(reader))
    return reader.get_batch(indices).asnumpy()  # [N, H, W, 3] uint8
  finally:
    release(reader)
    del reader
