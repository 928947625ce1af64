"""The 2D CNN that LRCN and the single-frame baseline run on every frame: FrameCNN or a ResNet."""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from vidjax.errors import UserError
from vidjax.models.resnet import ResNet

# `backbone` option -> ResNet depth (None: the small FrameCNN).
BACKBONES = {'frame_cnn': None, 'resnet18': 18, 'resnet34': 34, 'resnet50': 50}


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


def frame_backbone(backbone: str, features, embed_dim, dtype, param_dtype, remat) -> nn.Module:
  """The per-frame network that `backbone` names, for a compact `__call__` to apply.

  'frame_cnn' is FrameCNN under the name 'cnn' ([N, embed_dim] features;
  the parameter paths of every earlier run). A ResNet lives under
  'backbone' instead, so a FrameCNN checkpoint can never be restored into
  it; it ignores `features`/`embed_dim` and gives [N, 512] (ResNet-50:
  [N, 2048]) features of ImageNet-normalised frames: its configs set
  data.mean=(0.485, 0.456, 0.406) and data.std=(0.229, 0.224, 0.225).
  """
  if backbone not in BACKBONES:
    raise UserError(f"unknown backbone '{backbone}'; use one of {', '.join(BACKBONES)}")
  if BACKBONES[backbone] is None:
    cnn = nn.remat(FrameCNN) if remat else FrameCNN
    return cnn(features, embed_dim, dtype, param_dtype, name='cnn')
  resnet = nn.remat(ResNet) if remat else ResNet
  return resnet(BACKBONES[backbone], dtype=dtype, param_dtype=param_dtype, name='backbone')
