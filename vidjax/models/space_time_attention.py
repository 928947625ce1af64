"""Video transformers that differ only in which tokens attend to which.

One family, `SpaceTimeTransformer`, with the attention pattern chosen by
`attention` (TimeSformer, Bertasius et al. 2021; ViViT, Arnab et al. 2021):

- 'space_only': each frame is a separate image for a ViT (with its own CLS
  token); the frames' outputs are averaged. Without a time embedding (the
  default, as in the official TimeSformer) the model sees a clip as an
  unordered set of frames.
- 'joint': all T*N patch tokens (and one CLS) attend to each other. Cost grows
  as (T*N)^2.
- 'divided': TimeSformer's block: temporal attention (each patch position
  across frames), then spatial attention (the patches of a frame, plus CLS),
  then the MLP.
- 'factorized_self_attention': ViViT model 3: the same two attentions in the
  other order, spatial then temporal, then the MLP.
- 'factorized_encoder': ViViT model 2: a spatial encoder per frame gives one
  token per frame (its CLS or mean), then a temporal encoder over those frame
  tokens (`num_temporal_layers` deep). Frames meet only in the temporal encoder.

Order information enters only through the time embedding and tubelets: every
attention above is permutation-equivariant over frames. So 'divided' or
'joint' with `time_embedding=False` and `tubelet_size=1` are order-blind too.

Token layout: patches are [B, T', N, D] (T' = T / tubelet_size, N = patches per
frame); the CLS token is kept apart as [B, 1, D] where the pattern needs it.
The residual stream is float32; the branches (attention, MLP) compute in
`dtype`, so bf16 runs stay close to float32 ones.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from vidjax.models.conv_stem import ConvStem
from vidjax.models.layers import as_dtype, pair
from vidjax.models.position_init import NORMAL, POSITION_INITS, initializer
# EncoderBlock and FactorizedBlock are re-exported: they were defined here before.
from vidjax.models.space_time_blocks import (Encoder, EncoderBlock, FactorizedBlock,  # noqa: F401
                                             FactorizedEncoder)

ATTENTIONS = ('space_only', 'joint', 'divided', 'factorized_self_attention',
              'factorized_encoder')
POSITION_EMBEDDINGS = ('separable', 'space_time')


class SpaceTimeTransformer(nn.Module):
  """A video transformer classifier; `attention` picks the pattern (see module doc).

  `time_embedding=None` means: none for 'space_only' (the official order-blind
  TimeSformer baseline), a learned one for every other pattern. It is added to
  the patch tokens, except in 'factorized_encoder', where it is added to the
  frame tokens entering the temporal encoder (the spatial encoder never needs
  to know when its frame was). The space embedding is always added to the
  patch tokens; the CLS token gets no position embedding and, as in the
  official TimeSformer, starts as a small random vector (a zero CLS would enter
  the first LayerNorm as an all-zero vector, whose gradient is ~100x the
  others': harmless under Adam, dominant under the papers' SGD).
  `temporal_fc`: see `FactorizedBlock` ('divided' and
  'factorized_self_attention' only). `approximate_gelu=False` is the exact GELU
  of timm and TimeSformer checkpoints (see `Mlp`).

  `position_embedding='space_time'` learns one embedding per space-time token
  ([1, T', N, D], scenic's unfactorised ViViT) in place of the space and time
  embeddings: every pattern but 'factorized_encoder', whose frames never see
  each other's positions.

  `num_layers` is the depth of every pattern, and of the spatial encoder for
  'factorized_encoder', whose temporal encoder has `num_temporal_layers`.
  `pooling` reads the CLS token ('cls') or averages the tokens ('mean'); ViViT
  used no CLS token for model 3, i.e. pooling='mean'. 'space_only' pools each
  frame (after the final LayerNorm) and averages the frames; the official
  TimeSformer averages the tokens first and normalises after, equally order-blind.
  """
  num_classes: int
  attention: str = 'divided'
  patch_size: int | tuple[int, int] = 8
  tubelet_size: int = 1
  hidden_size: int = 64
  num_layers: int = 4
  num_temporal_layers: int = 2
  num_heads: int = 4
  mlp_dim: int = 256
  pooling: str = 'cls'
  time_embedding: bool | None = None
  position_embedding: str = 'separable'  # separable (space + time) | space_time
  position_init: str = 'normal'  # normal (std 0.02, timm) | sincos: see position_init.py
  stem: str = 'patch'  # patch (one strided conv) | conv (conv_stem.py: 3x3 convs, per frame)
  temporal_fc: bool = False
  dropout: float = 0.0
  stochastic_depth: float = 0.0
  attention_implementation: str | None = None
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  remat: bool = False
  approximate_gelu: bool = True

  def _check(self):
    if self.attention not in ATTENTIONS:
      raise ValueError(f"attention must be one of {ATTENTIONS}, got '{self.attention}'")
    if self.pooling not in ('cls', 'mean'):
      raise ValueError(f"pooling must be 'cls' or 'mean', got '{self.pooling}'")
    if self.stem not in ('patch', 'conv'):
      raise ValueError(f"stem must be 'patch' or 'conv', got {self.stem!r}")
    if self.position_init not in POSITION_INITS:
      raise ValueError(f'position_init must be one of {POSITION_INITS}, got {self.position_init!r}')
    if self.position_embedding not in POSITION_EMBEDDINGS:
      raise ValueError(f'position_embedding must be one of {POSITION_EMBEDDINGS}, '
                       f"got '{self.position_embedding}'")
    if self.position_embedding == 'space_time' and (self.attention == 'factorized_encoder'
                                                    or self.time_embedding is not None):
      raise ValueError("position_embedding='space_time' is one embedding per space-time token: "
                       "not for attention='factorized_encoder', and with time_embedding unset")

  @property
  def uses_time_embedding(self) -> bool:
    """A separate time embedding (`position_embedding='space_time'` has it inside its own)."""
    if self.position_embedding == 'space_time':
      return False
    if self.time_embedding is None:
      return self.attention != 'space_only'
    return self.time_embedding

  def _encoder(self, train, name, num_layers=None):
    return Encoder(num_layers or self.num_layers, self.num_heads, self.mlp_dim, self.dropout,
                   self.stochastic_depth, not train, self.attention_implementation,
                   as_dtype(self.dtype), as_dtype(self.param_dtype), self.remat,
                   self.approximate_gelu, name=name)

  def _cls(self, name, batch, lead=()):  # a learned token, broadcast to [B, *lead, 1, D]
    token = self.param(name, NORMAL, (1, self.hidden_size),
                       as_dtype(self.param_dtype)).astype(jnp.float32)
    return jnp.broadcast_to(token, (batch, *lead, 1, self.hidden_size))

  def _pool(self, tokens, has_cls):  # [B, ..., L, D] -> [B, ..., D]
    return tokens[..., 0, :] if has_cls else tokens.mean(axis=-2)

  @nn.compact
  def __call__(self, video, *, train: bool = False):  # video: [B, T, H, W, C] -> [B, K]
    self._check()
    dtype, param_dtype = as_dtype(self.dtype), as_dtype(self.param_dtype)
    b, t, height, width, _ = video.shape
    ph, pw = pair(self.patch_size)
    if t % self.tubelet_size or height % ph or width % pw:
      raise ValueError(f'video {video.shape[1:4]} is not divisible into tubelets '
                       f'{(self.tubelet_size, ph, pw)}')
    d = self.hidden_size
    use_cls = self.pooling == 'cls'

    # Tubelet embedding: a strided 3D conv; tubelet_size=1 is a 2D patch embedding.
    kernel = (self.tubelet_size, ph, pw)
    if self.stem == 'conv':
      if self.tubelet_size != 1:
        raise ValueError("stem='conv' embeds frames one by one: set tubelet_size=1")
      x = ConvStem(d, (ph, pw), dtype, param_dtype, name='stem')(video)  # [B, T, h, w, D]
    else:
      x = nn.Conv(d, kernel, strides=kernel, padding='VALID', dtype=dtype,
                  param_dtype=param_dtype, name='patch_embedding')(video)  # [B, T', h, w, D]
    t, grid = x.shape[1], x.shape[2:4]
    n = grid[0] * grid[1]
    x = x.reshape(b, t, n, d).astype(jnp.float32)  # [B, T', N, D]
    position_init = initializer(self.position_init, grid)
    if self.position_embedding == 'space_time':
      x = x + self.param('space_time_embedding', position_init, (1, t, n, d), param_dtype)
    else:
      x = x + self.param('space_embedding', position_init, (1, 1, n, d), param_dtype)
    time_embedding = None
    if self.uses_time_embedding:
      time_embedding = self.param('time_embedding', position_init, (1, t, 1, d), param_dtype)
    dropout = nn.Dropout(self.dropout, deterministic=not train)

    if self.attention == 'factorized_encoder':
      if use_cls:
        x = jnp.concatenate([self._cls('spatial_cls', b, (t,)), x], axis=2)  # [B, T', 1+N, D]
      frames = self._encoder(train, 'spatial_encoder')(dropout(x))  # [B, T', (1+)N, D]
      frames = self._pool(frames, use_cls)  # [B, T', D]: one token per frame
      if time_embedding is not None:
        frames = frames + time_embedding[:, :, 0]
      if use_cls:
        frames = jnp.concatenate([self._cls('temporal_cls', b), frames], axis=1)
      tokens = self._encoder(train, 'temporal_encoder', self.num_temporal_layers)(frames)
      pooled = self._pool(tokens, use_cls)  # [B, D]
    else:
      if time_embedding is not None:
        x = x + time_embedding
      x = dropout(x)
      if self.attention == 'space_only':
        if use_cls:
          x = jnp.concatenate([self._cls('cls', b, (t,)), x], axis=2)  # [B, T', 1+N, D]
        tokens = self._encoder(train, 'encoder')(x)  # [B, T', (1+)N, D], frames apart
        pooled = self._pool(tokens, use_cls).mean(axis=1)  # average the frames: [B, D]
      elif self.attention == 'joint':
        tokens = x.reshape(b, t * n, d)
        if use_cls:
          tokens = jnp.concatenate([self._cls('cls', b), tokens], axis=1)
        pooled = self._pool(self._encoder(train, 'encoder')(tokens), use_cls)  # [B, D]
      else:  # 'divided', 'factorized_self_attention'
        cls = self._cls('cls', b) if use_cls else None  # [B, 1, D]
        tokens = FactorizedEncoder(
            self.num_layers, self.num_heads, self.mlp_dim,
            spatial_first=self.attention == 'factorized_self_attention',
            temporal_fc=self.temporal_fc, dropout=self.dropout,
            stochastic_depth=self.stochastic_depth, deterministic=not train,
            attention_implementation=self.attention_implementation, dtype=dtype,
            param_dtype=param_dtype, remat=self.remat, approximate_gelu=self.approximate_gelu,
            name='encoder')(x, cls)
        pooled = self._pool(tokens, use_cls)  # [B, D]

    logits = nn.Dense(self.num_classes, dtype=jnp.float32, param_dtype=param_dtype,
                      name='head')(pooled)
    return logits.astype(jnp.float32)  # [B, K]


def default_config() -> ml_collections.ConfigDict:
  """`config.model.space_time_attention`: SpaceTimeTransformer's keyword arguments."""
  return ml_collections.ConfigDict(dict(
      # space_only | joint | divided (TimeSformer) | factorized_encoder (ViViT 2)
      # | factorized_self_attention (ViViT 3)
      attention='divided',
      patch_size=8,
      tubelet_size=1,  # Frames per patch: 1 = 2D patches, 2+ = 3D tubelets.
      hidden_size=64, num_layers=4, num_heads=4, mlp_dim=256,
      num_temporal_layers=2,  # factorized_encoder's temporal encoder depth.
      pooling='cls',  # cls | mean
      time_embedding=None,  # None: none for space_only (order-blind), learned otherwise.
      position_embedding='separable',  # separable (space + time) | space_time (one per token)
      position_init='normal',  # normal (std 0.02, as timm) | sincos (see models/position_init.py)
      stem='patch',  # patch (one strided conv, ViT) | conv (3x3 convs per frame, Xiao et al. 2021)
      temporal_fc=False,  # The official TimeSformer's linear after temporal attention (divided).
      dropout=0.0, stochastic_depth=0.0,
      attention_implementation=None,  # None = XLA's choice; 'cudnn' for flash attention on GPU.
      approximate_gelu=True,  # tanh GELU (big_vision); False = exact erf GELU (timm, TimeSformer).
  ))
