"""Clip and batch augmentations as plain numpy functions.

A clip is [T, H, W, C] (uint8 from the decoder, or float32); a batch is
[B, T, H, W, C]. Every random choice is drawn once per clip from the
`np.random.Generator` passed in, and applied to every frame alike: a crop that
moved from frame to frame would invent motion. The functions are picklable
module-level functions with no hidden state (beyond per-thread scratch
buffers, `inplace`), so grain workers can run them.

Functions keep the input's dtype where the result fits it (crops, flips,
resizes, colour jitter round uint8 back to uint8); `normalize` and `mixup`
return float32. Resizing is bilinear with pixel centres at +0.5 (as OpenCV and
PIL without antialiasing), done by gathering rows and columns in numpy: no
antialiasing, so large reductions should rather be asked of the decoder
(`read_frames(..., height=, width=)`). Resize and colour jitter give the same
bits, in the same layouts, as their first versions (tests/transforms_reference.py).
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from vidjax.data import inplace

# Per-channel statistics of [0, 1] RGB, for `normalize`.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.45, 0.45, 0.45)  # As in PySlowFast.
KINETICS_STD = (0.225, 0.225, 0.225)

_GREY = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma.

# Floats `resize` works on at a time (a few frames): small enough to stay in
# the L2 cache, large enough that numpy's per-call overhead does not dominate.
_CHUNK_VALUES = 1 << 17


def _size_pair(size: int | tuple[int, int]) -> tuple[int, int]:
  return (size, size) if isinstance(size, (int, np.integer)) else tuple(size)


def _max_value(dtype: np.dtype) -> float:
  """255 for uint8 clips; float clips are taken to lie in [0, 1]."""
  return 255.0 if dtype == np.uint8 else 1.0


# -------------------------------------------------------------------- geometry

def _bilinear_taps(in_size: int, out_size: int):
  """Source indices and weights of a half-pixel-centred bilinear resize."""
  pos = (np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size)
  pos = np.clip(pos - 0.5, 0, in_size - 1)
  lo = np.floor(pos).astype(np.intp)
  hi = np.minimum(lo + 1, in_size - 1)
  return lo, hi, (pos - lo).astype(np.float32)


def _pixel_taps(lo: np.ndarray, hi: np.ndarray, weight: np.ndarray,
                channels: int):
  """`_bilinear_taps` of columns, spelt out per value of a [W * C] row."""
  values = np.arange(channels)
  return ((lo[:, None] * channels + values).ravel(),
          (hi[:, None] * channels + values).ravel(), np.repeat(weight, channels))


def resize(clip: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bilinear resize of every frame: [T, H, W, C] -> [T, height, width, C].

  Rows first, then columns, each as a + (b - a) * w in float32 (in the type
  numpy promotes to with float32: float64 for float64 or wide integer clips).
  Fast at the same rounding: a few frames at a time in reused buffers, and
  frames viewed as rows of W * C values (numpy loops over a 3-value pixel
  slowly). The result keeps the first version's memory layout
  (`inplace.gathered_layout`): `color_jitter`'s rounding depends on it.
  """
  num_frames, in_h, in_w, channels = clip.shape
  if (in_h, in_w) == (height, width):
    return clip
  y0, y1, wy = _bilinear_taps(in_h, height)
  x0, x1, wx = _bilinear_taps(in_w, width)
  c0, c1, wc = _pixel_taps(x0, x1, wx, channels)
  wy = wy[:, None]
  dtype = np.result_type(clip.dtype, np.float32)
  step = max(1, min(num_frames,
                    _CHUNK_VALUES // (height * max(in_w, width) * channels)))
  tops, rows = (inplace.scratch(i, (step, height, in_w * channels), dtype)
                for i in (0, 1))
  lefts, mixed = (inplace.scratch(i, (step, height, width * channels), dtype)
                  for i in (2, 3))
  out = inplace.gathered_layout(clip, height, width)
  flat = clip.reshape(num_frames, in_h, in_w * channels)  # A crop: a view.
  for start in range(0, num_frames, step):
    frames = flat[start:start + step]
    n = len(frames)
    top, row, left, mix = tops[:n], rows[:n], lefts[:n], mixed[:n]
    gathered = frames[:, y0]  # Rounded to float32 first, as numpy promotes.
    np.copyto(top, gathered if dtype == np.float32
              else gathered.astype(np.float32), casting='unsafe')
    np.copyto(row, frames[:, y1], casting='unsafe')
    row -= top
    row *= wy
    row += top  # [n, height, W * C]
    np.take(row, c0, axis=2, out=left, mode='clip')  # 'raise' buffers out.
    np.take(row, c1, axis=2, out=mix, mode='clip')
    mix -= left
    mix *= wc
    mix += left  # [n, height, width * C]
    inplace.store(out[start:start + n], mix.reshape(n, height, width, channels))
  return out


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


def center_crop(clip: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
  """The central `size` window; the clip must be at least that large."""
  height, width = _size_pair(size)
  _, h, w, _ = clip.shape
  if h < height or w < width:
    raise ValueError(f'cannot crop {height}x{width} from {h}x{w}')
  return crop(clip, (h - height) // 2, (w - width) // 2, height, width)


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


def spatial_crops(clip: np.ndarray, crop_size: int,
                  num_crops: int = 3) -> np.ndarray:
  """Square crops along the longer side, for multi-view testing.

  Returns [num_crops, T, crop_size, crop_size, C]: for 3 crops, left / centre
  / right of a landscape (or square) clip and top / centre / bottom of a
  portrait one, centred across the other side; 1 crop is the centre crop. The
  usual protocol first scales the short side to `crop_size`
  (`short_side_resize`), so the crops differ only along the long side.
  """
  _, h, w, _ = clip.shape
  if h < crop_size or w < crop_size:
    raise ValueError(f'cannot crop {crop_size}x{crop_size} from {h}x{w}')
  if num_crops < 1:
    raise ValueError(f'num_crops must be >= 1, got {num_crops}')
  long_side = w if w >= h else h
  if num_crops == 1:
    offsets = [(long_side - crop_size) // 2]
  else:
    offsets = np.round(np.linspace(0, long_side - crop_size,
                                   num_crops)).astype(int).tolist()
  views = []
  for offset in offsets:
    if w >= h:
      views.append(crop(clip, (h - crop_size) // 2, offset, crop_size,
                        crop_size))
    else:
      views.append(crop(clip, offset, (w - crop_size) // 2, crop_size,
                        crop_size))
  return np.stack(views)


# ------------------------------------------------------------------------ flip

def horizontal_flip(clip: np.ndarray) -> np.ndarray:
  """Mirrors every frame left to right (a new C-contiguous array).

  Copies one channel at a time: numpy copies a whole reversed 3-byte pixel
  at a time 5x slower.
  """
  out = np.empty(clip.shape, clip.dtype)
  mirrored = clip[:, :, ::-1]
  for channel in range(clip.shape[-1]):
    out[..., channel] = mirrored[..., channel]
  return out


def flip_label(label: int, label_map: Mapping[int, int] | None) -> int:
  """The label of the mirrored video (see `datasets.flip_label_map`)."""
  return label if not label_map else label_map.get(label, label)


def random_horizontal_flip(clip: np.ndarray, label: int,
                           rng: np.random.Generator, *,
                           label_map: Mapping[int, int] | None = None,
                           prob: float = 0.5) -> tuple[np.ndarray, int]:
  """Mirrors the clip with probability `prob`; returns (clip, label).

  For direction classes ("left to right") pass the dataset's flip label map,
  or the flip teaches the model the wrong direction.
  """
  if rng.random() < prob:
    return horizontal_flip(clip), flip_label(label, label_map)
  return clip, label


# ---------------------------------------------------------------------- colour

def _blend(x: np.ndarray, reference: np.ndarray, factor: float,
           slot: int) -> np.ndarray:
  """factor * x + (1 - factor) * reference, in the layout numpy gives that sum.

  x [T, H, W, C] is scratch (overwritten); reference is [T] (a frame's grey)
  or [T, H, W] (a pixel's). Returns x, or scratch `slot` where numpy's layout
  is not x's (see `color_jitter` for why layouts matter).
  """
  offset = (1.0 - factor) * reference
  per_value = offset[:, None, None, None] if offset.ndim == 1 else offset[..., None]
  # The layout numpy gives the sum: the iterator allocates (pages untouched).
  out = np.nditer([x, per_value, None]).operands[2]
  np.multiply(x, factor, out=x)
  if out.strides == x.strides:
    out = x
  else:
    out = inplace.scratch(slot, x.shape, x.dtype, inplace.memory_order(out))
  if offset.ndim == 1:
    if out is not x:
      np.copyto(out, x)
    inplace.add_per_frame(out, offset)
  else:
    for channel in range(x.shape[-1]):
      np.add(x[..., channel], offset, out=out[..., channel])
  return out


def color_jitter(clip: np.ndarray, rng: np.random.Generator, *,
                 brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4) -> np.ndarray:
  """torchvision's ColorJitter without hue, one draw per clip.

  Each factor is uniform in [max(0, 1 - s), 1 + s] and the three adjustments
  run in a random order. Brightness scales; contrast blends with the frame's
  mean grey level (per frame, as torchvision does on a [T, C, H, W] tensor);
  saturation blends with each pixel's grey. Values saturate at 0 and at 255
  (uint8) or 1 (float).

  It keeps the float32 arithmetic and the memory layout of every array of
  the first version (tests/transforms_reference.py), in place: BLAS rounds
  `x @ _GREY` differently for a clip in `resize`'s layout than for a
  C-ordered one, and so does the mean.
  """
  slot = 4  # x: float32, laid out as clip.astype(np.float32) would be.
  x = inplace.scratch(slot, clip.shape, np.float32, inplace.memory_order(clip))
  np.copyto(x, clip, casting='unsafe')
  top = _max_value(clip.dtype)
  for op in rng.permutation(3):
    strength = (brightness, contrast, saturation)[op]
    if strength <= 0:
      continue
    factor = float(rng.uniform(max(0.0, 1 - strength), 1 + strength))
    if op == 0:
      np.multiply(x, factor, out=x)
    else:  # Contrast: the frame's grey [T]; saturation: each pixel's [T, H, W].
      grey = x @ _GREY
      if op == 1:
        grey = grey.mean(axis=(1, 2))
      blended = _blend(x, grey, factor, 9 - slot)  # 9 - slot: not x's buffer.
      if blended is not x:
        x, slot = blended, 9 - slot
    np.clip(x, 0, top, out=x)
  if clip.dtype == np.uint8:  # x is in [0, 255] already (clipped, or the clip itself).
    out = np.empty_like(x, dtype=np.uint8)  # In x's layout, as before.
    return np.rint(x, out=out, casting='unsafe')
  return x.astype(clip.dtype)  # In x's layout, as before.


def normalize(clip: np.ndarray, mean=KINETICS_MEAN,
              std=KINETICS_STD) -> np.ndarray:
  """(x - mean) / std per channel, as float32.

  `mean` and `std` are statistics of [0, 1] values: a uint8 clip is divided by
  255 first; a float clip is taken to be in [0, 1] already.
  """
  mean = np.asarray(mean, np.float32)
  std = np.asarray(std, np.float32)
  unit = np.float32(1 / 255 if clip.dtype == np.uint8 else 1)
  return clip.astype(np.float32) * (unit / std) - mean / std


# ---------------------------------------------------------------- batch mixing

def one_hot_smoothed(labels: np.ndarray, num_classes: int,
                     smoothing: float = 0.0) -> np.ndarray:
  """Integer labels [B] -> float32 targets [B, K] with label smoothing.

  The true class gets 1 - smoothing + smoothing / K, every class
  smoothing / K (the timm convention), so each row sums to 1.
  """
  labels = np.asarray(labels, np.int64)
  off = smoothing / num_classes
  targets = np.full((labels.shape[0], num_classes), off, np.float32)
  targets[np.arange(labels.shape[0]), labels] = 1.0 - smoothing + off
  return targets


def mixup(videos: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
          alpha: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
  """Blends each clip with another clip of the batch (Zhang et al., 2018).

  videos [B, T, H, W, C], labels [B, K] one-hot or soft. One weight
  lam ~ Beta(alpha, alpha) for the batch; clip i is mixed with clip perm[i]
  of a random permutation. Returns float32 (videos, labels).
  """
  lam = np.float32(rng.beta(alpha, alpha))
  perm = rng.permutation(len(videos))
  x = videos.astype(np.float32)
  mixed = lam * x + (1 - lam) * x[perm]
  targets = labels.astype(np.float32)
  return mixed, lam * targets + (1 - lam) * targets[perm]


def cutmix_box(height: int, width: int, lam: float,
               rng: np.random.Generator) -> tuple[int, int, int, int]:
  """(top, left, h, w) of a box covering about 1 - lam of the frame.

  As timm's rand_bbox: sides sqrt(1 - lam) of the frame's, centred on a
  uniform pixel and clipped at the borders (so it may come out smaller).
  """
  cut = math.sqrt(1.0 - lam)
  cut_h, cut_w = int(height * cut), int(width * cut)
  cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
  y0, y1 = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
  x0, x1 = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
  return int(y0), int(x0), int(y1 - y0), int(x1 - x0)


def cutmix(videos: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
           alpha: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
  """Pastes a box from another clip of the batch (Yun et al., 2019).

  videos [B, T, H, W, C], labels [B, K]. lam ~ Beta(alpha, alpha) sets the
  box (`cutmix_box`), the same box in every frame and every clip; clip i
  receives the box from clip perm[i]. Labels mix by the box's actual area.
  Returns (videos in their dtype, float32 labels); the input is not changed.
  """
  _, _, h, w, _ = videos.shape
  lam = float(rng.beta(alpha, alpha))
  perm = rng.permutation(len(videos))
  top, left, bh, bw = cutmix_box(h, w, lam, rng)
  mixed = videos.copy()
  mixed[:, :, top:top + bh, left:left + bw] = videos[
      perm, :, top:top + bh, left:left + bw]
  kept = np.float32(1.0 - bh * bw / (h * w))
  targets = labels.astype(np.float32)
  return mixed, kept * targets + (1 - kept) * targets[perm]
