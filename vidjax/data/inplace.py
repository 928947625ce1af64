"""In-place float work for the numpy augmentations (`transforms`), kept fast.

Three things make numpy slow on a clip [T, H, W, 3] at the same arithmetic:
fresh clip-sized temporaries (a page fault per 4 KiB whenever the allocator
has given the memory back, as happens between clips), loops whose innermost
axis is the 3 channels, and copies between memory layouts. These helpers
avoid them. Layouts matter beyond speed: BLAS rounds `x @ grey` differently
for differently laid out x, so `transforms` keeps numpy's own layouts, and
`memory_order` and `scratch(order=...)` let it.
"""
from __future__ import annotations

import math
import threading

import numpy as np

# Per-thread buffers, reused from clip to clip; never handed to a caller.
_BUFFERS = threading.local()


def scratch(slot: int, shape, dtype, order=None) -> np.ndarray:
  """This thread's buffer `slot` as an uninitialised array of `shape`.

  `order` lists the axes from outermost to innermost in memory (C order when
  None), so an array can take another's layout. A slot's contents are
  overwritten by the next call that names it.
  """
  order = list(range(len(shape))) if order is None else list(order)
  dtype = np.dtype(dtype)
  size = math.prod(shape) * dtype.itemsize
  buffers = _BUFFERS.__dict__.setdefault('buffers', {})
  if slot not in buffers or buffers[slot].size < size:
    buffers[slot] = np.empty(max(size, 1), np.uint8)
  memory = buffers[slot][:size].view(dtype).reshape([shape[a] for a in order])
  return memory.transpose(np.argsort(order))


def memory_order(x: np.ndarray) -> list[int]:
  """x's axes from outermost to innermost in memory, as numpy's order='K'."""
  return sorted(range(x.ndim), key=lambda axis: -abs(x.strides[axis]))


def gathered_layout(clip: np.ndarray, height: int, width: int) -> np.ndarray:
  """An empty [T, height, width, C] array laid out as numpy's gathers left it.

  `transforms.resize` first gathered rows, then columns, by fancy indexing,
  which puts the gathered axis outermost in memory: columns, then rows, then
  T and C in the input's order.
  """
  num_frames, _, _, channels = clip.shape
  if abs(clip.strides[0]) >= abs(clip.strides[3]):
    return np.empty((width, height, num_frames, channels),
                    clip.dtype).transpose(2, 1, 0, 3)
  return np.empty((width, height, channels, num_frames),
                  clip.dtype).transpose(3, 1, 0, 2)


def store(out: np.ndarray, x: np.ndarray) -> None:
  """Writes float `x` [..., C] into `out`, rounding and saturating for uint8.

  Saturates `x` in place (the caller's scratch), then rounds straight into
  `out`: clip(rint(x)) == rint(clip(x)) for whole-number bounds, in one pass
  fewer. One channel at a time: `out` may be laid out otherwise, and numpy
  would loop over 3 values.
  """
  if out.dtype == np.uint8:
    np.clip(x, 0, 255, out=x)
    for channel in range(x.shape[-1]):
      np.rint(x[..., channel], out=out[..., channel], casting='unsafe')
    return
  for channel in range(x.shape[-1]):
    np.copyto(out[..., channel], x[..., channel], casting='unsafe')


def add_per_frame(x: np.ndarray, offset: np.ndarray) -> None:
  """x[t] += offset[t] in place, in long runs whatever x's layout.

  Where frames interleave in memory (`transforms.resize`'s layout), a plain
  broadcast makes numpy loop over 3 values at a time: add a small [T, ...]
  block to each run instead.
  """
  order = memory_order(x)
  memory = x.transpose(order)
  if order[0] == 0 or not memory.flags.c_contiguous:
    x += offset.reshape((-1,) + (1,) * (x.ndim - 1))
    return
  inner = memory.shape[order.index(0):]  # T and the axes inside it.
  block = np.broadcast_to(offset.reshape((-1,) + (1,) * (len(inner) - 1)), inner)
  memory.reshape(-1, block.size)[...] += block.reshape(-1)
