"""The single-frame baseline: LRCN's CNN on each frame, logits averaged.

It sees a clip as an unordered set of frames, so on the reversal-pair
dataset it is capped at the order-blind ceiling (50%).
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from vidjax.models.cnn import frame_backbone, per_frame


class SingleFrame(nn.Module):
  """Per-frame CNN (`backbone`, see `cnn.frame_backbone`) -> linear head -> mean over frames."""
  num_classes: int
  cnn_features: Sequence[int] = (16, 32, 64)
  cnn_embed_dim: int = 256
  dropout: float = 0.0
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  remat: bool = False
  backbone: str = 'frame_cnn'  # frame_cnn | resnet18 | resnet34 | resnet50
  frames_per_call: int = 0  # Frames per CNN call, 0: all (see `cnn.per_frame`).

  @nn.compact
  def __call__(self, video, *, train: bool = False):  # [B, T, H, W, C] -> [B, K]
    cnn = frame_backbone(self.backbone, self.cnn_features, self.cnn_embed_dim, self.dtype,
                         self.param_dtype, self.remat)
    x = per_frame(cnn, video, self.frames_per_call)  # [B, T, D]
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                      name='head')(x)  # [B, T, K]
    return logits.mean(axis=1).astype(jnp.float32)


def default_config() -> ml_collections.ConfigDict:
  """`config.model.single_frame`: LRCN's CNN, so the two compare on the same frames."""
  return ml_collections.ConfigDict(dict(
      backbone='frame_cnn',  # As LRCN's: frame_cnn | resnet18 | resnet34 | resnet50.
      cnn_features=(16, 32, 64, 64),
      cnn_embed_dim=128,
      dropout=0.0,
      frames_per_call=1,  # As LRCN's: 1 on CPU, 0 (one call for all frames) on GPU/TPU.
  ))
