"""ResNet-18/34/50 with torchvision's exact semantics, so published ImageNet weights load as is.

torchvision v1.5: the stride of a Bottleneck sits on its 3x3 conv; the stem
is a 7x7/2 conv (padding 3) and a 3x3/2 max pool (padding 1, padded with
-inf); a block that changes shape has a 1x1 conv + BN shortcut. Every padding
is explicit and symmetric, as in torch (Flax's 'SAME' would pad a strided
conv asymmetrically and shift the features).

Batch norm is frozen: inference-mode BN folded into a per-channel affine,
`scale = gamma / sqrt(var + eps)` and `bias = beta - mean * scale`, so the
model is params-only (the train state has no batch_stats) and fine-tuning
trains the affine, as detectron2 and most video fine-tuning do (video batches
are too small for good batch statistics). From scratch there is no
normalisation at all, so the affine closing each residual branch starts at
zero (every block starts as the identity) to keep deep stacks stable.

Input is ImageNet-normalised RGB: a config using pretrained weights sets
data.mean=(0.485, 0.456, 0.406) and data.std=(0.229, 0.224, 0.225).
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

# depth -> (block kind, blocks per stage).
DEPTHS = {18: ('basic', (2, 2, 2, 2)), 34: ('basic', (3, 4, 6, 3)),
          50: ('bottleneck', (3, 4, 6, 3))}
BN_EPS = 1e-5  # torchvision's and timm's BatchNorm2d default.

_conv_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')  # torchvision's kaiming.


class FrozenBatchNorm(nn.Module):
  """Inference-mode batch norm as a learnable per-channel affine (see the module docstring)."""
  zero_init: bool = False  # True for the last affine of a residual branch.
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):  # [N, H, W, C]
    c = x.shape[-1]
    scale_init = nn.initializers.zeros if self.zero_init else nn.initializers.ones
    scale = self.param('scale', scale_init, (c,), self.param_dtype)
    bias = self.param('bias', nn.initializers.zeros, (c,), self.param_dtype)
    return x * scale.astype(self.dtype) + bias.astype(self.dtype)


def _conv(features, kernel, stride, dtype, param_dtype, name):
  pad = (kernel - 1) // 2  # torch's padding: 3 for 7x7, 1 for 3x3, 0 for 1x1.
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=((pad, pad), (pad, pad)), use_bias=False, kernel_init=_conv_init,
                 dtype=dtype, param_dtype=param_dtype, name=name)


class ResidualBlock(nn.Module):
  """torchvision's BasicBlock (two 3x3) or Bottleneck (1x1, 3x3 with the stride, 1x1 x4)."""
  width: int
  stride: int
  bottleneck: bool
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):  # [N, H, W, C_in] -> [N, H/stride, W/stride, C_out]
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    if self.bottleneck:
      convs = ((1, 1), (3, self.stride), (1, 1))  # (kernel, stride) of conv1..conv3.
      widths = (self.width, self.width, 4 * self.width)
    else:
      convs = ((3, self.stride), (3, 1))
      widths = (self.width, self.width)
    y = x
    for i, ((kernel, stride), width) in enumerate(zip(convs, widths), start=1):
      y = _conv(width, kernel, stride, name=f'conv{i}', **kw)(y)
      y = FrozenBatchNorm(zero_init=i == len(convs), name=f'bn{i}', **kw)(y)
      if i < len(convs):
        y = nn.relu(y)
    if self.stride != 1 or x.shape[-1] != widths[-1]:
      x = _conv(widths[-1], 1, self.stride, name='downsample_conv', **kw)(x)
      x = FrozenBatchNorm(name='downsample_bn', **kw)(x)
    return nn.relu(x + y)


class ResNet(nn.Module):
  """Frames [N, H, W, 3] -> pooled features [N, C] (C = 512, or 2048 for ResNet-50).

  Parameter names follow torchvision's (`layer2_0/downsample_conv` is
  `layer2.0.downsample.0`), which keeps the converter a plain renaming.
  `widths`/`stem_width` shrink it for tests. With `num_classes` > 0 an `fc`
  head gives logits instead of features (to check ImageNet weights as
  published); `return_map=True` also returns the last map [N, h, w, C], and
  `return_stages=True` returns only the four stages' maps, finest first, at
  strides 4, 8, 16 and 32 (a detector's feature pyramid).
  """
  depth: int = 50
  widths: Sequence[int] = (64, 128, 256, 512)
  stem_width: int = 64
  num_classes: int = 0
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images, *, return_map: bool = False, return_stages: bool = False):
    if self.depth not in DEPTHS:
      raise ValueError(f'ResNet depth must be one of {sorted(DEPTHS)}, got {self.depth}')
    kind, stages = DEPTHS[self.depth]
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = images.astype(self.dtype)
    x = _conv(self.stem_width, 7, 2, name='conv1', **kw)(x)
    x = nn.relu(FrozenBatchNorm(name='bn1', **kw)(x))
    x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf)
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding='VALID')
    maps = []
    for stage, (blocks, width) in enumerate(zip(stages, self.widths), start=1):
      for i in range(blocks):
        stride = 2 if stage > 1 and i == 0 else 1
        x = ResidualBlock(width, stride, kind == 'bottleneck', name=f'layer{stage}_{i}', **kw)(x)
      maps.append(x)
    if return_stages:
      return maps
    out = x.mean(axis=(1, 2))  # [N, C]
    if self.num_classes:
      out = nn.Dense(self.num_classes, name='fc', **kw)(out)
    return (out, x) if return_map else out
