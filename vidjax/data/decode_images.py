"""Reads a clip out of a list of image files: the frames of COCO, YOLO, MOT and CocoVID records.

Detection layouts store a video as a folder of frames (or one image as a
one-frame video); their records list the images in frame order
('frame_files', vidjax/data/layouts/boxes.py). `read_clip` answers as
`decode.read_clip` does for a video file -- the same `sample` callable,
the same sizes, the same `DecodeError` for what cannot be read -- so the
pipeline treats both alike. Each wanted image is decoded once with PIL and
scaled with the bilinear swscale resize the video path uses.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from PIL import Image

from vidjax.data import decode_pyav
from vidjax.data.decode_checks import DecodeError, call_with_timeout, first_line


def _load(path: str) -> np.ndarray:
  """One image as uint8 [H, W, 3] (grey, palette and RGBA images converted)."""
  try:
    with Image.open(path) as image:
      return np.asarray(image.convert('RGB'))
  except FileNotFoundError:
    raise DecodeError(path, 'file not found') from None
  except Exception as e:  # PIL raises many kinds for damaged files.
    raise DecodeError(path, f'not a readable image: {first_line(e)}') from None


def _size(height: int | None, width: int | None, short_side: int | None,
          native: tuple[int, int]) -> tuple[int, int] | None:
  if short_side:
    from vidjax.data.decode import short_side_size  # decode imports nothing of this module.
    return short_side_size(*native, short_side)
  return None if height is None else (height, width)


def _read(files: Sequence[str], sample, height, width, short_side) -> tuple[np.ndarray, np.ndarray]:
  if not files:
    raise DecodeError('<no frames>', 'the record lists no frame images')
  wanted = np.asarray(sample(len(files)), np.int64)
  if wanted.size == 0 or wanted.min() < 0 or wanted.max() >= len(files):
    raise ValueError(f'sample({len(files)}) gave bad indices {wanted}')
  unique, inverse = np.unique(wanted, return_inverse=True)
  images = [_load(files[i]) for i in unique]
  native = images[0].shape[:2]
  size = _size(height, width, short_side, native)
  if size is None:
    size = native
  out = np.empty((len(images), *size, 3), np.uint8)
  for n, image in enumerate(images):
    if image.shape[:2] != size:
      image = decode_pyav.resize(image[None], *size)[0]
    out[n] = image
  return out[inverse.reshape(-1)].reshape(*wanted.shape, *size, 3), wanted


def read_clip(files: Sequence[str], sample: Callable[[int], np.ndarray], *,
              height: int | None = None, width: int | None = None,
              short_side: int | None = None, num_threads: int = 1,
              timeout_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
  """`decode.read_clip` for frames stored as images: (frames [*indices.shape, H, W, 3], indices).

  `sample` is called with the number of images. Every frame is scaled to
  (height, width), or to `short_side` (aspect kept, from the first wanted
  image), or to the first wanted image's own size.
  `num_threads` is accepted for the same signature; PIL decodes in one.
  """
  del num_threads
  if (height is None) != (width is None):
    raise ValueError(f'give both height and width or neither, got height={height}, width={width}')
  if short_side and height is not None:
    raise ValueError('give height and width, or short_side, not both')
  where = files[0] if len(files) else '<no frames>'
  return call_with_timeout(where, timeout_s, _read, list(files), sample, height, width,
                           short_side)
