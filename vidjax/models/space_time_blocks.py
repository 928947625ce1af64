"""The pre-norm transformer blocks and encoders that `SpaceTimeTransformer` stacks.

Kept apart from the model so the attention patterns (which tokens meet) read
separately from the layers (how a block computes). Names here are checkpoint
paths: renaming a layer breaks every saved and converted checkpoint.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vidjax.models.layers import DropPath

class Attention(nn.Module):
  """Multi-head self-attention over the second-last axis of [B, ..., L, D].

  Leading axes are folded into the batch. The attention itself is
  `jax.nn.dot_product_attention`, so `implementation='cudnn'` gets the fused
  flash kernel on GPU (needs bf16/fp16 `dtype`); None lets XLA choose. The
  fused kernels have no dropout on the attention weights, so there is none.
  """
  num_heads: int
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  implementation: str | None = None

  @nn.compact
  def __call__(self, x):  # [B, ..., L, D]
    *lead, length, dim = x.shape
    if dim % self.num_heads:
      raise ValueError(f'hidden size {dim} is not divisible by {self.num_heads} heads')
    x = x.reshape(-1, length, dim)  # [B', L, D]
    qkv = nn.DenseGeneral((3, self.num_heads, dim // self.num_heads), dtype=self.dtype,
                          param_dtype=self.param_dtype, name='qkv')(x)  # [B', L, 3, h, D/h]
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # [B', L, h, D/h] each
    out = jax.nn.dot_product_attention(q, k, v, implementation=self.implementation)
    out = nn.DenseGeneral(dim, axis=(-2, -1), dtype=self.dtype, param_dtype=self.param_dtype,
                          name='out')(out)  # [B', L, D]
    return out.reshape(*lead, length, dim)


class Mlp(nn.Module):
  """Dense -> GELU -> dropout -> Dense -> dropout, on the last axis.

  `approximate_gelu`: flax's tanh GELU (True; big_vision's ViTs use it too) or
  the exact erf GELU that timm and TimeSformer checkpoints were trained with (False).
  """
  mlp_dim: int
  dropout: float = 0.0
  deterministic: bool = True
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  approximate_gelu: bool = True

  @nn.compact
  def __call__(self, x):  # [..., D]
    dim = x.shape[-1]
    x = nn.Dense(self.mlp_dim, dtype=self.dtype, param_dtype=self.param_dtype, name='fc1')(x)
    x = nn.gelu(x, approximate=self.approximate_gelu)
    x = nn.Dropout(self.dropout, deterministic=self.deterministic)(x)
    x = nn.Dense(dim, dtype=self.dtype, param_dtype=self.param_dtype, name='fc2')(x)
    return nn.Dropout(self.dropout, deterministic=self.deterministic)(x)


class _BlockBase(nn.Module):
  """Fields and sub-layers shared by the two block types."""
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  drop_path: float = 0.0
  deterministic: bool = True
  attention_implementation: str | None = None
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  approximate_gelu: bool = True

  def _norm(self, name):
    return nn.LayerNorm(dtype=self.dtype, param_dtype=self.param_dtype, name=name)

  def _attend(self, x, name):  # pre-norm attention branch, [B, ..., L, D] -> same, float32
    y = self._norm(f'norm_{name}')(x)
    y = Attention(self.num_heads, self.dtype, self.param_dtype, self.attention_implementation,
                  name=name)(y)
    y = nn.Dropout(self.dropout, deterministic=self.deterministic)(y)
    return y.astype(jnp.float32)

  def _mlp(self, x):  # pre-norm MLP branch
    y = self._norm('norm_mlp')(x)
    y = Mlp(self.mlp_dim, self.dropout, self.deterministic, self.dtype, self.param_dtype,
            self.approximate_gelu, name='mlp')(y)
    return y.astype(jnp.float32)

  def _drop_path(self, branch):
    return DropPath(self.drop_path, self.deterministic)(branch)


class EncoderBlock(_BlockBase):
  """The pre-norm ViT block: x + Attn(LN(x)), then + MLP(LN(x)), over [B, ..., L, D].

  With leading axes [B, T, L, D] it is the space-only block: each frame attends
  within itself.
  """

  @nn.compact
  def __call__(self, x):  # [B, ..., L, D] float32
    x = x + self._drop_path(self._attend(x, 'attention'))
    return x + self._drop_path(self._mlp(x))


class FactorizedBlock(_BlockBase):
  """A block with separate temporal and spatial attention, then the MLP.

  spatial_first=False is TimeSformer's divided space-time block; True is
  ViViT's factorised self-attention (model 3). Temporal attention runs over
  the patch tokens of one position across frames; spatial attention over the
  patches of one frame plus the CLS token, which is copied into every frame
  and averaged back afterwards (as in the official TimeSformer). CLS takes no
  part in temporal attention.

  `temporal=False` drops the temporal attention (no parameters for it): the
  block is then a space-only `EncoderBlock` applied per frame.

  `temporal_fc` adds the official TimeSformer's linear layer after temporal
  attention (7.1M of ViT-B's 121.4M parameters; without it the block computes
  the same functions, as two linears in a row are one). The official code
  zero-initialises it in every block but the first (`zero_temporal_fc`), so a
  block starts as a space-only block.
  """
  temporal: bool = True
  spatial_first: bool = False
  temporal_fc: bool = False
  zero_temporal_fc: bool = False

  @nn.compact
  def __call__(self, x, cls):  # x: [B, T, N, D], cls: [B, 1, D] or None; float32
    def temporal(x, cls):
      y = self._attend(x.transpose(0, 2, 1, 3), 'temporal_attention')  # [B, N, T, D]
      if self.temporal_fc:
        init = nn.initializers.zeros if self.zero_temporal_fc else nn.linear.default_kernel_init
        y = nn.Dense(x.shape[-1], kernel_init=init, dtype=self.dtype,
                     param_dtype=self.param_dtype, name='temporal_fc')(y).astype(jnp.float32)
      return x + self._drop_path(y.transpose(0, 2, 1, 3)), cls

    def spatial(x, cls):
      if cls is None:
        return x + self._drop_path(self._attend(x, 'spatial_attention')), None
      b, t, _, d = x.shape
      tokens = jnp.concatenate([jnp.broadcast_to(cls[:, None], (b, t, 1, d)), x], axis=2)
      y = self._attend(tokens, 'spatial_attention')  # [B, T, 1 + N, D]
      dx, dcls = self._drop_path((y[:, :, 1:], y[:, :, 0].mean(axis=1, keepdims=True)))
      return x + dx, cls + dcls

    steps = [spatial, temporal] if self.spatial_first else [temporal, spatial]
    for step in steps:
      if step is temporal and not self.temporal:
        continue
      x, cls = step(x, cls)

    b, t, n, d = x.shape
    tokens = x.reshape(b, t * n, d)
    if cls is not None:
      tokens = jnp.concatenate([cls, tokens], axis=1)  # [B, 1 + T*N, D]
    tokens = tokens + self._drop_path(self._mlp(tokens))
    if cls is None:
      return tokens.reshape(b, t, n, d), None
    return tokens[:, 1:].reshape(b, t, n, d), tokens[:, :1]


def _drop_path_rates(rate: float, num_layers: int) -> list[float]:
  """Stochastic depth increasing linearly from 0 (first block) to `rate` (last)."""
  return [float(r) for r in np.linspace(0.0, rate, num_layers)] if num_layers > 1 else [0.0]


class Encoder(nn.Module):
  """A stack of `EncoderBlock`s and a final LayerNorm, over [B, ..., L, D]."""
  num_layers: int
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  stochastic_depth: float = 0.0
  deterministic: bool = True
  attention_implementation: str | None = None
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  remat: bool = False
  approximate_gelu: bool = True

  @nn.compact
  def __call__(self, x):  # [B, ..., L, D] float32
    block = nn.remat(EncoderBlock) if self.remat else EncoderBlock
    for i, rate in enumerate(_drop_path_rates(self.stochastic_depth, self.num_layers)):
      x = block(self.num_heads, self.mlp_dim, self.dropout, rate, self.deterministic,
                self.attention_implementation, self.dtype, self.param_dtype,
                self.approximate_gelu, name=f'block_{i}')(x)
    return nn.LayerNorm(param_dtype=self.param_dtype, name='norm')(x)


class FactorizedEncoder(nn.Module):
  """A stack of `FactorizedBlock`s and a final LayerNorm; returns [B, (1 +) T*N, D]."""
  num_layers: int
  num_heads: int
  mlp_dim: int
  spatial_first: bool = False
  temporal_fc: bool = False
  dropout: float = 0.0
  stochastic_depth: float = 0.0
  deterministic: bool = True
  attention_implementation: str | None = None
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  remat: bool = False
  approximate_gelu: bool = True

  @nn.compact
  def __call__(self, x, cls):  # x: [B, T, N, D], cls: [B, 1, D] or None
    block = nn.remat(FactorizedBlock) if self.remat else FactorizedBlock
    for i, rate in enumerate(_drop_path_rates(self.stochastic_depth, self.num_layers)):
      x, cls = block(self.num_heads, self.mlp_dim, self.dropout, rate, self.deterministic,
                     self.attention_implementation, self.dtype, self.param_dtype,
                     self.approximate_gelu, spatial_first=self.spatial_first,
                     temporal_fc=self.temporal_fc, zero_temporal_fc=i > 0,
                     name=f'block_{i}')(x, cls)
    b, t, n, d = x.shape
    tokens = x.reshape(b, t * n, d)
    if cls is not None:
      tokens = jnp.concatenate([cls, tokens], axis=1)
    return nn.LayerNorm(param_dtype=self.param_dtype, name='norm')(tokens)


