"""A single-stage, anchor-free temporal action detector (ActionFormer family).

Snippet features [B, T, C] of an untrimmed video -> a temporal feature
pyramid (level l has T / 2**l steps) -> at every step of every level, class
scores (one sigmoid per class: is an action of that class around here?) and
the distances from the step to the action's start and end, in the level's
stride. A frame-wise segmentation head on the finest level labels every
snippet with a class or background (index 0), for the segmentation metrics.

Why this shape (Zhang et al. 2022, ActionFormer): the pyramid lets one head
serve actions from a few snippets to most of the video, each found at the
level whose stride suits its length, with no anchors to tune. The blocks are
local self-attention (a window of `window` steps around each step) or
residual temporal convolutions (`block='conv'`, cheaper on CPU). Padding is
masked everywhere, so a video's outputs do not depend on how far it was
padded.
"""
from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import numpy as np


def level_lengths(num_steps: int, levels: int) -> list[int]:
  """Steps per pyramid level; `num_steps` must be divisible by 2**(levels - 1)."""
  stride = 2 ** (levels - 1)
  if num_steps % stride:
    raise ValueError(f'sequence length {num_steps} is not a multiple of the pyramid stride {stride}')
  return [num_steps // 2 ** l for l in range(levels)]


def _masked(x, mask):  # [B, T, D], [B, T] -> padding zeroed
  return x * mask[..., None].astype(x.dtype)


class MaskedConv(nn.Module):
  """Conv1D over time that sees no padding: inputs and outputs are masked."""
  features: int
  kernel_size: int = 3
  use_bias: bool = True
  bias_init: Any = nn.initializers.zeros
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, mask):
    y = nn.Conv(self.features, (self.kernel_size,), padding='SAME', use_bias=self.use_bias,
                bias_init=self.bias_init, dtype=self.dtype)(_masked(x, mask))
    return _masked(y, mask)


class LocalAttentionBlock(nn.Module):
  """Pre-norm transformer block whose attention sees `window` steps around each step."""
  dim: int
  heads: int
  window: int
  mlp_ratio: int = 4
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, mask, *, train: bool):
    t = x.shape[1]
    position = jnp.arange(t)
    near = jnp.abs(position[:, None] - position[None, :]) <= self.window // 2  # [T, T]
    allowed = near[None, None] & mask[:, None, None, :]  # [B, 1, T, T]
    y = nn.LayerNorm(dtype=self.dtype)(x)
    y = nn.MultiHeadDotProductAttention(self.heads, dtype=self.dtype, dropout_rate=self.dropout,
                                        deterministic=not train)(y, y, mask=allowed)
    x = x + _masked(y, mask)
    y = nn.LayerNorm(dtype=self.dtype)(x)
    y = nn.Dense(self.dim * self.mlp_ratio, dtype=self.dtype)(y)
    y = nn.Dropout(self.dropout, deterministic=not train)(nn.gelu(y))
    y = nn.Dense(self.dim, dtype=self.dtype)(y)
    return x + _masked(y, mask)


class ConvBlock(nn.Module):
  """Residual pair of masked temporal convolutions with layer norm."""
  dim: int
  kernel_size: int = 3
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, mask, *, train: bool):
    y = nn.relu(nn.LayerNorm(dtype=self.dtype)(x))
    y = MaskedConv(self.dim, self.kernel_size, dtype=self.dtype)(y, mask)
    y = nn.relu(nn.LayerNorm(dtype=self.dtype)(y))
    y = nn.Dropout(self.dropout, deterministic=not train)(y)
    y = MaskedConv(self.dim, self.kernel_size, dtype=self.dtype)(y, mask)
    return x + y


class Head(nn.Module):
  """Shared across levels: `layers` masked conv + LN + ReLU, then a conv to `outputs`."""
  dim: int
  outputs: int
  layers: int = 2
  kernel_size: int = 3
  bias_init: Any = nn.initializers.zeros
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, mask):
    for i in range(self.layers):
      x = MaskedConv(self.dim, self.kernel_size, use_bias=False, dtype=self.dtype,
                     name=f'conv_{i}')(x, mask)
      x = nn.relu(nn.LayerNorm(dtype=self.dtype, name=f'norm_{i}')(x))
    return MaskedConv(self.outputs, self.kernel_size, bias_init=self.bias_init, dtype=self.dtype,
                      name='out')(x, mask)


class TemporalDetector(nn.Module):
  """features [B, T, C], mask [B, T] -> {'class_logits' [B, P, K], 'offsets' [B, P, 2],
  'point_mask' [B, P], 'segment_logits' [B, T, K + 1]}, P = the steps of all levels,
  level by level. Offsets are (to start, to end) in units of the level's stride."""
  num_classes: int
  embed_dim: int = 128
  embed_layers: int = 2
  block: str = 'attention'  # attention | conv
  stem_blocks: int = 2
  levels: int = 6  # Pyramid levels, strides 1, 2, ..., 2**(levels - 1).
  heads: int = 4
  window: int = 9  # Local attention span, in steps of each level.
  head_dim: int = 128
  head_layers: int = 2
  prior_probability: float = 0.01  # Initial class score: rare positives start quiet (focal loss).
  dropout: float = 0.0
  dtype: Any = jnp.float32

  def setup(self):
    if self.block not in ('attention', 'conv'):
      raise ValueError(f"TemporalDetector block must be 'attention' or 'conv', got '{self.block}'")

  def _block(self, name):
    if self.block == 'attention':
      return LocalAttentionBlock(self.embed_dim, self.heads, self.window, dropout=self.dropout,
                                 dtype=self.dtype, name=name)
    return ConvBlock(self.embed_dim, dropout=self.dropout, dtype=self.dtype, name=name)

  @nn.compact
  def __call__(self, features, mask=None, *, train: bool = False):
    level_lengths(features.shape[1], self.levels)  # Checks the length.
    mask = jnp.ones(features.shape[:2], bool) if mask is None else mask.astype(bool)
    x = features.astype(self.dtype)
    for i in range(self.embed_layers):
      x = MaskedConv(self.embed_dim, 3, use_bias=False, dtype=self.dtype, name=f'embed_{i}')(x, mask)
      x = nn.relu(nn.LayerNorm(dtype=self.dtype, name=f'embed_norm_{i}')(x))
    for i in range(self.stem_blocks):
      x = self._block(f'stem_{i}')(x, mask, train=train)
    pyramid, masks = [x], [mask]
    for level in range(1, self.levels):
      b, t, d = x.shape
      x = x.reshape(b, t // 2, 2, d).max(axis=2)  # Stride-2 max pool.
      mask = mask.reshape(b, t // 2, 2).any(axis=2)
      x = self._block(f'level_{level}')(_masked(x, mask), mask, train=train)
      pyramid.append(x)
      masks.append(mask)
    prior = -math.log((1 - self.prior_probability) / self.prior_probability)
    classify = Head(self.head_dim, self.num_classes, self.head_layers,
                    bias_init=nn.initializers.constant(prior), dtype=self.dtype, name='class_head')
    regress = Head(self.head_dim, 2, self.head_layers, dtype=self.dtype, name='offset_head')
    class_logits, offsets = [], []
    for level, (y, m) in enumerate(zip(pyramid, masks)):
      class_logits.append(classify(y, m))
      scale = self.param(f'offset_scale_{level}', nn.initializers.ones, ())
      offsets.append(nn.relu(scale * regress(y, m)))
    segment = Head(self.head_dim, self.num_classes + 1, 1, dtype=self.dtype,
                   name='segment_head')(pyramid[0], masks[0])
    return {'class_logits': jnp.concatenate(class_logits, 1).astype(jnp.float32),
            'offsets': jnp.concatenate(offsets, 1).astype(jnp.float32),
            'point_mask': jnp.concatenate(masks, 1),
            'segment_logits': segment.astype(jnp.float32)}


def point_positions(num_steps: int, levels: int) -> tuple[np.ndarray, np.ndarray]:
  """(position [P] of each pyramid point in finest-level steps, its stride [P]), level by level.

  Point i of level l pools finest steps [i * 2**l, (i + 1) * 2**l) and sits at their centre.
  """
  positions, strides = [], []
  for level, length in enumerate(level_lengths(num_steps, levels)):
    stride = 2.0 ** level
    positions.append(np.arange(length) * stride + (stride - 1) / 2)
    strides.append(np.full((length,), stride))
  return np.concatenate(positions), np.concatenate(strides)


def default_config() -> ml_collections.ConfigDict:
  """`config.model.temporal_detector`: an ActionFormer-sized detector, smaller for CPU."""
  return ml_collections.ConfigDict(dict(
      embed_dim=128,
      embed_layers=2,
      block='attention',  # attention | conv
      stem_blocks=2,
      levels=6,
      heads=4,
      window=9,
      head_dim=128,
      head_layers=2,
      prior_probability=0.01,
      dropout=0.0,
  ))
