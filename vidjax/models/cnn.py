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
  The caller decides how many frames one call sees (`per_frame`).
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


def per_frame(cnn, video, frames_per_call: int):
  """`cnn` on every frame of video [B, T, H, W, C] -> features [B, T, ...].

  Each call sees `frames_per_call` frames of every clip folded into its
  batch; 0 folds all T into one call. The calls share `cnn`'s parameters and
  every norm in it is per sample (GroupNorm, frozen BatchNorm), so the
  outputs do not depend on the setting, only the speed: on XLA:CPU one call
  per frame ran LRCN's step 1.6x (demo) to 2.0x (bench shape) faster than one
  call on B*T frames (experiments/bench_optimizations.py), while an
  accelerator wants the one large call.
  """
  b, t = video.shape[:2]
  per_call = t if frames_per_call == 0 else frames_per_call
  if per_call < 0 or t % per_call:
    raise UserError(f'frames_per_call={frames_per_call} must be 0 (all frames in one call) or '
                    f'divide the clip\'s {t} frames; set model.<name>.frames_per_call')
  parts = [cnn(fold_time(video[:, i:i + per_call])) for i in range(0, t, per_call)]
  parts = [x.reshape((b, per_call) + x.shape[1:]) for x in parts]
  return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=1)


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
