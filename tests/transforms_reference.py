"""The numpy augmentations as they were before they were made faster.

A verbatim copy of vidjax/data/transforms.py at commit df88d99 (the functions
that changed and the ones they call), for tests/test_transforms.py and
experiments/bench_augment.py to compare against: same inputs, same seeds,
and the outputs must be equal bit for bit. Do not edit, except to follow a
deliberate change of the arithmetic.
"""
from __future__ import annotations

import math

import numpy as np

_GREY = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma.


def _size_pair(size: int | tuple[int, int]) -> tuple[int, int]:
  return (size, size) if isinstance(size, (int, np.integer)) else tuple(size)


def _like(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
  """Casts a float result back to `dtype`, rounding and saturating for uint8."""
  if dtype == np.uint8:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
  return x.astype(dtype, copy=False)


def _max_value(dtype: np.dtype) -> float:
  """255 for uint8 clips; float clips are taken to lie in [0, 1]."""
  return 255.0 if dtype == np.uint8 else 1.0


def _bilinear_taps(in_size: int, out_size: int):
  """Source indices and weights of a half-pixel-centred bilinear resize."""
  pos = (np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size)
  pos = np.clip(pos - 0.5, 0, in_size - 1)
  lo = np.floor(pos).astype(np.intp)
  hi = np.minimum(lo + 1, in_size - 1)
  return lo, hi, (pos - lo).astype(np.float32)


def resize(clip: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bilinear resize of every frame: [T, H, W, C] -> [T, height, width, C]."""
  _, in_h, in_w, _ = clip.shape
  if (in_h, in_w) == (height, width):
    return clip
  y0, y1, wy = _bilinear_taps(in_h, height)
  x0, x1, wx = _bilinear_taps(in_w, width)
  top = clip[:, y0].astype(np.float32)  # [T, height, W, C]
  rows = top + (clip[:, y1] - top) * wy[None, :, None, None]
  left = rows[:, :, x0]  # [T, height, width, C]
  out = left + (rows[:, :, x1] - left) * wx[None, None, :, None]
  return _like(out, clip.dtype)


def short_side_resize(clip: np.ndarray, size: int) -> np.ndarray:
  """Scales so the shorter side is `size`, keeping the aspect ratio."""
  _, h, w, _ = clip.shape
  if h <= w:
    return resize(clip, size, max(1, round(w * size / h)))
  return resize(clip, max(1, round(h * size / w)), size)


def crop(clip: np.ndarray, top: int, left: int, height: int,
         width: int) -> np.ndarray:
  """The same window of every frame: [T, height, width, C] (a view)."""
  return clip[:, top:top + height, left:left + width]


def random_resized_crop_box(
    height: int, width: int, rng: np.random.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10) -> tuple[int, int, int, int]:
  """(top, left, h, w) of an Inception-style crop, as torchvision samples it.

  The crop covers a fraction of the area uniform in `scale`, with a width /
  height ratio log-uniform in `ratio`; after `attempts` draws that do not fit,
  the largest central crop with a ratio inside `ratio`.
  """
  area = height * width
  log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
  for _ in range(attempts):
    target_area = area * rng.uniform(scale[0], scale[1])
    aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
    w = int(round(math.sqrt(target_area * aspect)))
    h = int(round(math.sqrt(target_area / aspect)))
    if 0 < w <= width and 0 < h <= height:
      top = int(rng.integers(0, height - h + 1))
      left = int(rng.integers(0, width - w + 1))
      return top, left, h, w
  in_ratio = width / height
  if in_ratio < ratio[0]:
    w, h = width, int(round(width / ratio[0]))
  elif in_ratio > ratio[1]:
    h, w = height, int(round(height * ratio[1]))
  else:
    h, w = height, width
  return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop(clip: np.ndarray, rng: np.random.Generator,
                        size: int | tuple[int, int],
                        scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)
                        ) -> np.ndarray:
  """Inception crop of the clip, resized to `size`: [T, *size, C]."""
  _, h, w, _ = clip.shape
  top, left, ch, cw = random_resized_crop_box(h, w, rng, scale, ratio)
  return resize(crop(clip, top, left, ch, cw), *_size_pair(size))


def horizontal_flip(clip: np.ndarray) -> np.ndarray:
  """Mirrors every frame left to right."""
  return np.ascontiguousarray(clip[:, :, ::-1])


def _blend(x: np.ndarray, reference, factor: float) -> np.ndarray:
  return factor * x + (1.0 - factor) * reference


def color_jitter(clip: np.ndarray, rng: np.random.Generator, *,
                 brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4) -> np.ndarray:
  """torchvision's ColorJitter without hue, one draw per clip.

  Each factor is uniform in [max(0, 1 - s), 1 + s] and the three adjustments
  run in a random order. Brightness scales; contrast blends with the frame's
  mean grey level (per frame, as torchvision does on a [T, C, H, W] tensor);
  saturation blends with each pixel's grey. Values saturate at 0 and at 255
  (uint8) or 1 (float).
  """
  x = clip.astype(np.float32)
  top = _max_value(clip.dtype)
  for op in rng.permutation(3):
    strength = (brightness, contrast, saturation)[op]
    if strength <= 0:
      continue
    factor = float(rng.uniform(max(0.0, 1 - strength), 1 + strength))
    if op == 0:
      x = x * factor
    elif op == 1:
      grey_mean = (x @ _GREY).mean(axis=(1, 2))  # [T]
      x = _blend(x, grey_mean[:, None, None, None], factor)
    else:
      x = _blend(x, (x @ _GREY)[..., None], factor)  # grey: [T, H, W, 1]
    x = np.clip(x, 0, top)
  return _like(x, clip.dtype)
