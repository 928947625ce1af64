"""The small 2D CNN that LRCN and the single-frame baseline run on every frame."""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp


class FrameCNN(nn.Module):
  """Strided conv stages, then a dense embedding of the flattened map.

  The map is flattened rather than mean-pooled so the embedding keeps where
  things are: direction of motion is then visible to the recurrence on top.
  Time is folded into the batch by the caller, so one conv call covers all
  frames (faster than vmap or a Python loop over T).
  """
  features: Sequence[int] = (16, 32, 64)
  embed_dim: int = 256
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, frames):  # [N, H, W, C] -> [N, embed_dim]
    x = frames.astype(self.dtype)
    for i, width in enumerate(self.features):
      # No bias: GroupNorm removes it, and its gradient would be pure noise
      # that Adam scales up to a full-size step.
      x = nn.Conv(width, (3, 3), strides=(2, 2), use_bias=False, dtype=self.dtype,
                  param_dtype=self.param_dtype, name=f'conv_{i}')(x)
      x = nn.GroupNorm(num_groups=min(8, width), dtype=self.dtype,
                       param_dtype=self.param_dtype, name=f'norm_{i}')(x)
      x = nn.relu(x)
    x = x.reshape(x.shape[0], -1)
    x = nn.Dense(self.embed_dim, dtype=self.dtype, param_dtype=self.param_dtype, name='embed')(x)
    return nn.relu(x)


def fold_time(video):
  """[B, T, H, W, C] -> [B*T, H, W, C]."""
  b, t = video.shape[:2]
  return video.reshape((b * t,) + video.shape[2:])
