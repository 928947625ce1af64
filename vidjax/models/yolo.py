"""A single-stage, anchor-free box detector in the YOLOX style (Ge et al. 2021), for video.

video [B, T, H, W, 3] -> for the LAST frame of the clip, at every cell of
three feature maps (strides 8, 16, 32): class logits, an objectness logit and
a box. The parts are YOLOX's: a CSP-Darknet-like backbone (Conv-Norm-SiLU,
cross-stage-partial blocks, spatial pyramid pooling at the coarsest stage), a
PAN neck (top-down then bottom-up fusion, so every level sees both fine
detail and wide context) and decoupled heads (classification and box
regression disagree on which features they want, so they get separate
branches; objectness rides with the box).

Normalisation is GroupNorm, not BatchNorm: detection trains on small
per-device batches, and GroupNorm keeps no running statistics, so the train
state needs no `batch_stats` collection and train and eval behave the same.

Boxes: a cell's anchor point is its CENTRE, ((i + 0.5) * s, (j + 0.5) * s)
in pixels (YOLOX decodes from the cell's corner but tests candidates at the
centre; one convention for both is simpler). `reg` is (dx, dy, log w,
log h) in units of the level's stride: the box centre is anchor + d * s and
its size exp(log size) * s.

Small objects (`input_scale`): the frames are upsampled on the device before
the backbone, so a 10-pixel digit covers input_scale**2 times the cells
while the input pipeline and its cache stay at the data's size.
`anchor_points` gives the cells in the data's pixels (strides divided by
input_scale), so targets, loss and boxes never see the upsampled size.

Video (`temporal`): every frame goes through the same backbone and neck
(time folded into the batch); then, per level,
- 'none': only the last frame is computed at all (the single-frame detector);
- 'mean': the T frames' neck features are averaged;
- 'attention': at each location the last frame's feature attends over the
  same location's features in all T frames (a relative-time bias per head
  says which frame is which), and the result is added to the last frame's
  feature through a zero-initialised projection. At initialisation it is
  therefore exactly the single-frame detector, so any gain is learnt.
The heads always see one [B, h, w, c] map per level, so the detector with and
without time compares on the same data, the same heads and the same loss.

Backbone (`backbone`): 'csp' is the YOLOX backbone above, trained from
scratch; 'resnet18' / 'resnet34' / 'resnet50' is torchvision's ResNet
(models/resnet.py), so ImageNet weights load through `init.checkpoint`. Its
stages at the detection strides (128-512 channels, 512-2048 for ResNet-50)
are reduced by a 1x1 conv (`adapter_<level>`) to the neck's `widths`, which
keeps the neck and heads as cheap as the CSP detector's; its input is
ImageNet-normalised (configs/detection.py:resnet18 sets data.mean/std).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vidjax.models.cnn import fold_time
from vidjax.models.resnet import ResNet

TEMPORAL_MODES = ('none', 'mean', 'attention')
BACKBONES = {'csp': None, 'resnet18': 18, 'resnet34': 34, 'resnet50': 50}  # -> ResNet depth.


def _groups(width: int) -> int:
  """GroupNorm groups: 8 where the width allows, fewer for odd widths."""
  return math.gcd(width, 8)


class ConvNormAct(nn.Module):
  """Conv (no bias: the norm removes it) -> GroupNorm -> SiLU."""
  features: int
  kernel_size: int = 3
  strides: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):  # [N, h, w, c] -> [N, h / strides, w / strides, features]
    k, s = self.kernel_size, self.strides
    x = nn.Conv(self.features, (k, k), strides=(s, s), padding='SAME', use_bias=False,
                dtype=self.dtype, name='conv')(x)
    x = nn.GroupNorm(num_groups=_groups(self.features), dtype=self.dtype, name='norm')(x)
    return nn.silu(x)


class CSPBlock(nn.Module):
  """Cross-stage partial block: half the channels go through `depth` bottlenecks,
  half skip them, then a 1x1 conv mixes the two (cheap depth, short gradient paths)."""
  features: int
  depth: int = 1
  shortcut: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):  # [N, h, w, c] -> [N, h, w, features]
    hidden = self.features // 2
    main = ConvNormAct(hidden, 1, dtype=self.dtype, name='main_in')(x)
    for i in range(self.depth):
      y = ConvNormAct(hidden, 1, dtype=self.dtype, name=f'bottleneck_{i}_a')(main)
      y = ConvNormAct(hidden, 3, dtype=self.dtype, name=f'bottleneck_{i}_b')(y)
      main = main + y if self.shortcut else y
    skip = ConvNormAct(hidden, 1, dtype=self.dtype, name='skip')(x)
    return ConvNormAct(self.features, 1, dtype=self.dtype,
                       name='mix')(jnp.concatenate([main, skip], -1))


class SpatialPyramidPool(nn.Module):
  """Max pools of 5, 9 and 13 cells side by side: the coarsest map sees wide context."""
  features: int
  sizes: Sequence[int] = (5, 9, 13)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):  # [N, h, w, c] -> [N, h, w, features]
    x = ConvNormAct(x.shape[-1] // 2, 1, dtype=self.dtype, name='reduce')(x)
    pooled = [nn.max_pool(x, (k, k), strides=(1, 1), padding='SAME') for k in self.sizes]
    return ConvNormAct(self.features, 1, dtype=self.dtype,
                       name='expand')(jnp.concatenate([x] + pooled, -1))


class Backbone(nn.Module):
  """Stem at stride 2, then stage i at stride 2**(i + 2) with `widths[i]` channels.

  Returns every stage's map, finest first; the coarsest stage ends with
  spatial pyramid pooling and a CSP block without shortcuts, as in YOLOX.
  """
  widths: Sequence[int]
  depth: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, frames):  # [N, H, W, 3] -> [[N, H / 4, W / 4, widths[0]], ...]
    x = ConvNormAct(self.widths[0] // 2, 3, 2, dtype=self.dtype, name='stem')(frames)
    maps = []
    for i, width in enumerate(self.widths):
      x = ConvNormAct(width, 3, 2, dtype=self.dtype, name=f'down_{i}')(x)
      last = i == len(self.widths) - 1
      if last:
        x = SpatialPyramidPool(width, dtype=self.dtype, name='spp')(x)
      x = CSPBlock(width, self.depth, shortcut=not last, dtype=self.dtype, name=f'stage_{i}')(x)
      maps.append(x)
    return maps


def _upsample(x):  # [N, h, w, c] -> [N, 2h, 2w, c], nearest
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class PAN(nn.Module):
  """Path-aggregation neck over L levels (finest first), YOLOX's PAFPN.

  Top-down: each coarser map is reduced by a 1x1 conv (the 'lateral'),
  upsampled and fused with the next finer backbone map. Bottom-up: each finer
  output is downsampled by a stride-2 conv and fused with the lateral of the
  level above. Output level i keeps the backbone's width at that level.
  """
  widths: Sequence[int]  # Channels per level, finest first.
  depth: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, maps):  # L x [N, h_i, w_i, widths[i]] -> same shapes
    levels = len(maps)
    x, laterals = maps[-1], {}
    for i in range(levels - 1, 0, -1):  # Top-down.
      laterals[i] = ConvNormAct(self.widths[i - 1], 1, dtype=self.dtype, name=f'lateral_{i}')(x)
      x = jnp.concatenate([_upsample(laterals[i]), maps[i - 1]], -1)
      x = CSPBlock(self.widths[i - 1], self.depth, shortcut=False, dtype=self.dtype,
                   name=f'top_down_{i - 1}')(x)
    outputs = [x]
    for i in range(1, levels):  # Bottom-up.
      x = ConvNormAct(self.widths[i - 1], 3, 2, dtype=self.dtype, name=f'down_{i}')(x)
      x = jnp.concatenate([x, laterals[i]], -1)
      x = CSPBlock(self.widths[i], self.depth, shortcut=False, dtype=self.dtype,
                   name=f'bottom_up_{i}')(x)
      outputs.append(x)
    return outputs


class DecoupledHead(nn.Module):
  """One level's head: a 1x1 stem, then a class branch and a box branch (box + objectness)."""
  num_classes: int
  width: int
  prior_probability: float = 0.01
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):  # [B, h, w, c] -> cls [B, h*w, C], reg [B, h*w, 4], obj [B, h*w]
    p = self.prior_probability
    prior = nn.initializers.constant(-math.log((1 - p) / p))
    x = ConvNormAct(self.width, 1, dtype=self.dtype, name='stem')(x)
    c = x
    for i in range(2):
      c = ConvNormAct(self.width, 3, dtype=self.dtype, name=f'cls_conv_{i}')(c)
    cls = nn.Conv(self.num_classes, (1, 1), bias_init=prior, dtype=self.dtype, name='cls_out')(c)
    r = x
    for i in range(2):
      r = ConvNormAct(self.width, 3, dtype=self.dtype, name=f'reg_conv_{i}')(r)
    reg = nn.Conv(4, (1, 1), dtype=self.dtype, name='reg_out')(r)
    obj = nn.Conv(1, (1, 1), bias_init=prior, dtype=self.dtype, name='obj_out')(r)
    b = x.shape[0]
    return cls.reshape(b, -1, self.num_classes), reg.reshape(b, -1, 4), obj.reshape(b, -1)


class TemporalAttention(nn.Module):
  """The last frame's feature attends over the same location in all T frames.

  Per location and head: softmax over t of q_last . k_t / sqrt(d) + bias[T-1-t].
  The output projection starts at zero, so at init the result is the last
  frame's feature itself. Attention is per location (no spatial mixing):
  cheap, and the neck's receptive field already covers small motions.
  """
  heads: int = 4
  max_frames: int = 16
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):  # [B, T, h, w, c] -> [B, h, w, c]
    b, t, h, w, c = x.shape
    if c % self.heads:
      raise ValueError(f'temporal attention: {c} channels do not split into {self.heads} heads')
    if t > self.max_frames:
      raise ValueError(f'temporal attention: a clip of {t} frames exceeds '
                       f'max_frames={self.max_frames}')
    d = c // self.heads
    y = nn.LayerNorm(dtype=self.dtype, name='norm')(x)
    q = nn.Dense(c, dtype=self.dtype, name='query')(y[:, -1]).reshape(b, h, w, self.heads, d)
    k = nn.Dense(c, dtype=self.dtype, name='key')(y).reshape(b, t, h, w, self.heads, d)
    v = nn.Dense(c, dtype=self.dtype, name='value')(y).reshape(b, t, h, w, self.heads, d)
    bias = self.param('time_bias', nn.initializers.zeros, (self.max_frames, self.heads))
    offsets = t - 1 - jnp.arange(t)  # [T]: 0 for the last frame.
    logits = jnp.einsum('bhwnd,bthwnd->bhwnt', q, k) / math.sqrt(d)
    logits = logits + bias[offsets].T.astype(logits.dtype)  # [heads, T] broadcast.
    weights = nn.softmax(logits.astype(jnp.float32), axis=-1).astype(self.dtype)
    mixed = jnp.einsum('bhwnt,bthwnd->bhwnd', weights, v).reshape(b, h, w, c)
    out = nn.Dense(c, kernel_init=nn.initializers.zeros, dtype=self.dtype, name='out')(mixed)
    return x[:, -1] + out


class YoloDetector(nn.Module):
  """video [B, T, H, W, 3] (uint8, or float already normalised by the task) ->
  {'cls' [B, A, C] logits, 'obj' [B, A] logits, 'reg' [B, A, 4] (dx, dy, log w, log h)
  in stride units}, for the last frame; A = sum over strides of (H / s) * (W / s),
  level by level, row-major within a level (the order of `anchor_points`)."""
  num_classes: int
  widths: Sequence[int] = (16, 32, 64, 128)  # Backbone stages at strides 4, 8, 16, 32.
  backbone: str = 'csp'  # csp | resnet18 | resnet34 | resnet50 (see the module docstring).
  depth: int = 1  # Bottlenecks per CSP block.
  strides: Sequence[int] = (8, 16, 32)  # Detection levels: the last len(strides) stages.
  temporal: str = 'none'  # none | mean | attention
  temporal_heads: int = 4
  max_frames: int = 16  # Longest clip the attention's relative-time bias covers.
  prior_probability: float = 0.01  # Initial class and objectness score (YOLOX's).
  input_scale: int = 1  # Frames are upsampled this much on the device (see `anchor_points`).
  dtype: Any = jnp.float32

  def _check(self, height, width):
    if self.input_scale < 1:
      raise ValueError(f'YoloDetector input_scale must be a whole number >= 1, '
                       f'got {self.input_scale}')
    if self.backbone not in BACKBONES:
      raise ValueError(f"YoloDetector backbone must be one of {', '.join(BACKBONES)}, "
                       f"got '{self.backbone}'")
    if BACKBONES[self.backbone] and len(self.widths) != 4:
      raise ValueError(f'a ResNet backbone has 4 stages, so widths needs 4 entries (the neck '
                       f'width at strides 4-32), got {tuple(self.widths)}')
    if self.temporal not in TEMPORAL_MODES:
      raise ValueError(f'YoloDetector temporal must be one of {TEMPORAL_MODES}, '
                       f"got '{self.temporal}'")
    stage_strides = [2 ** (i + 2) for i in range(len(self.widths))]
    if len(self.strides) < 2 or list(self.strides) != stage_strides[-len(self.strides):]:
      raise ValueError(f'strides {tuple(self.strides)} must be the last stages of the backbone '
                       f'{tuple(stage_strides)}, at least two of them')
    _check_divisible(height * self.input_scale, width * self.input_scale, self.strides)

  @nn.compact
  def __call__(self, video, *, train: bool = False):  # No dropout or batch stats: train is unused.
    b, _, height, width, _ = video.shape
    self._check(height, width)
    if self.temporal == 'none':
      video = video[:, -1:]  # The single-frame detector never computes the other frames.
    t = video.shape[1]
    frames = fold_time(video)  # [B*T, H, W, 3]
    if frames.dtype == jnp.uint8:
      frames = frames.astype(jnp.float32) / 255.0
    if self.input_scale > 1:  # Small objects get input_scale**2 times the cells.
      n, h, w, c = frames.shape
      frames = jax.image.resize(frames, (n, h * self.input_scale, w * self.input_scale, c),
                                'bilinear')
    frames = frames.astype(self.dtype)
    levels = len(self.strides)
    widths = list(self.widths[-levels:])
    if BACKBONES[self.backbone]:
      maps = ResNet(BACKBONES[self.backbone], dtype=self.dtype, name='backbone')(
          frames, return_stages=True)[-levels:]
      maps = [ConvNormAct(w, 1, dtype=self.dtype, name=f'adapter_{level}')(x)
              for level, (w, x) in enumerate(zip(widths, maps))]
    else:
      maps = Backbone(self.widths, self.depth, dtype=self.dtype, name='backbone')(frames)
      maps = maps[-levels:]
    maps = PAN(widths, self.depth, dtype=self.dtype, name='neck')(maps)
    outputs = {'cls': [], 'reg': [], 'obj': []}
    for level, x in enumerate(maps):
      x = x.reshape((b, t) + x.shape[1:])  # [B, T, h, w, c]
      if self.temporal == 'attention':
        x = TemporalAttention(self.temporal_heads, self.max_frames, dtype=self.dtype,
                              name=f'temporal_{level}')(x)
      else:  # 'none' has T = 1 here, so the mean is the last frame.
        x = x.mean(axis=1)
      cls, reg, obj = DecoupledHead(self.num_classes, widths[0], self.prior_probability,
                                    dtype=self.dtype, name=f'head_{level}')(x)
      outputs['cls'].append(cls)
      outputs['reg'].append(reg)
      outputs['obj'].append(obj)
    return {k: jnp.concatenate(v, axis=1).astype(jnp.float32) for k, v in outputs.items()}


def _check_divisible(height: int, width: int, strides: Sequence[int]) -> None:
  if height % max(strides) or width % max(strides):
    raise ValueError(f'frames of {height}x{width} must be divisible by the largest stride '
                     f'{max(strides)}; pad or resize them')


def anchor_points(height: int, width: int, strides: Sequence[int], input_scale: int = 1
                  ) -> tuple[np.ndarray, np.ndarray]:
  """(centers [A, 2] float32: (x, y) of each cell's CENTRE in pixels, strides [A] float32),
  level by level, row-major within a level: the order of the detector's outputs.

  Both are in the pixels of the frames the pipeline gives (height x width).
  With `input_scale` the detector sees them upsampled, so a level of stride s
  there is a stride of s / input_scale here: boxes, targets and the loss all
  stay in the data's pixels.
  """
  scaled_h, scaled_w = height * input_scale, width * input_scale
  _check_divisible(scaled_h, scaled_w, strides)
  centers, out_strides = [], []
  for s in strides:
    ys, xs = np.meshgrid(np.arange(scaled_h // s), np.arange(scaled_w // s), indexing='ij')
    centers.append((np.stack([xs, ys], -1).reshape(-1, 2) + 0.5) * s)
    out_strides.append(np.full(((scaled_h // s) * (scaled_w // s),), s))
  return (np.concatenate(centers).astype(np.float32) / input_scale,
          np.concatenate(out_strides).astype(np.float32) / input_scale)


# exp(10) strides is far past any image; the clamp only stops an overflow to inf early in training.
MAX_LOG_SIZE = 10.0


def decode_boxes(reg, centers, strides):
  """reg [..., A, 4] (dx, dy, log w, log h) in strides, centers [A, 2], strides [A]
  -> boxes [..., A, 4] (x0, y0, x1, y1) in pixels."""
  s = jnp.asarray(strides, jnp.float32)[:, None]  # [A, 1]
  centre = jnp.asarray(centers, jnp.float32) + reg[..., :2] * s
  size = jnp.exp(jnp.minimum(reg[..., 2:], MAX_LOG_SIZE)) * s
  return jnp.concatenate([centre - size / 2, centre + size / 2], axis=-1)


def default_config() -> ml_collections.ConfigDict:
  """`config.model.yolo`: a YOLOX-nano-sized detector for 128x128 frames on CPU.

  The 640-pixel config widens it (e.g. widths (32, 64, 128, 256)) and keeps
  the strides; clip length comes from the data config, not from here.
  """
  return ml_collections.ConfigDict(dict(
      widths=(16, 32, 64, 128),
      backbone='csp',  # csp | resnet18 | resnet34 | resnet50
      depth=1,
      strides=(8, 16, 32),
      temporal='none',  # none | mean | attention
      temporal_heads=4,
      max_frames=16,
      prior_probability=0.01,
      # 2 = the detector sees every frame upsampled 2x on the device: the levels' strides
      # become 4 / 8 / 16 data pixels, while decoding and the frame cache stay at data size.
      input_scale=1,
  ))
