"""Clip and batch augmentations as plain numpy functions.

A clip is [T, H, W, C] (uint8 from the decoder, or float32); a batch is
[B, T, H, W, C]. Every random choice is drawn once per clip from the
`np.random.Generator` passed in, and applied to every frame alike: a crop that
moved from frame to frame would invent motion. The functions are picklable
module-level functions with no hidden state, so grain workers can run them.

Functions keep the input's dtype where the result fits it (crops, flips,
resizes, colour jitter round uint8 back to uint8); `normalize` and `mixup`
return float32. Resizing is bilinear with pixel centres at +0.5 (as OpenCV and
PIL without antialiasing), done by gathering rows and columns in numpy: no
antialiasing, so large reductions should rather be asked of the decoder
(`read_frames(..., height=, width=)`).
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

# Per-channel statistics of [0, 1] RGB, for `normalize`.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.45, 0.45, 0.45)  # As in PySlowFast.
KINETICS_STD = (0.225, 0.225, 0.225)

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


# -------------------------------------------------------------------- geometry

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
  """Mirrors every frame left to right."""
  return np.ascontiguousarray(clip[:, :, ::-1])


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
