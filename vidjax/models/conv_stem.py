"""A convolutional stem in place of a ViT's one-layer patch embedding (Xiao et al. 2021).

Why: "Early Convolutions Help Transformers See Better" (Xiao et al., NeurIPS
2021) replaces the single strided patch convolution with a few 3x3 stride-2
convolutions and a 1x1 projection, at about the same cost, and finds training
converges faster, depends less on the learning rate and the seed, and ends
better. Small video transformers trained from scratch here had the same
trouble (a take-off step that moved with the seed), see README Model zoo.

Each frame goes through the stem on its own, so frame order still enters only
through the time embedding: a stem never makes an order-blind model order-aware.
Layout: [B, T, H, W, C] -> [B, T, H / p, W / p, D] for a patch size p that is a
power of two; widths double per stage up to D, each conv followed by a
LayerNorm over channels and a GELU, then a 1x1 conv to D.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp


class ConvStem(nn.Module):
  """log2(patch) stride-2 3x3 convs (widths D/2^k ... D), then a 1x1 conv to D."""
  hidden_size: int
  patch_size: tuple[int, int]
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, frames):  # [B, T, H, W, C] -> [B, T, H/p, W/p, D]
    ph, pw = self.patch_size
    if ph != pw or ph < 2 or ph & (ph - 1):
      raise ValueError(f"stem='conv' needs a square patch of a power of two, got {ph}x{pw}")
    stages = ph.bit_length() - 1
    x = frames
    for i in range(stages):
      width = max(self.hidden_size >> (stages - 1 - i), 8)
      x = nn.Conv(width, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), dtype=self.dtype,
                  param_dtype=self.param_dtype, name=f'conv_{i}')(x)
      x = nn.gelu(nn.LayerNorm(dtype=self.dtype, param_dtype=self.param_dtype,
                               name=f'norm_{i}')(x))
    return nn.Conv(self.hidden_size, (1, 1), dtype=self.dtype, param_dtype=self.param_dtype,
                   name='projection')(x)
