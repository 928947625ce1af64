"""LRCN (Donahue et al. 2015): a 2D CNN on every frame, an LSTM over time."""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from vidjax.models.cnn import frame_backbone, per_frame


class LRCN(nn.Module):
  """Per-frame CNN features -> (bi)LSTM layers -> linear head.

  `backbone` picks the per-frame CNN (see `cnn.frame_backbone`): the small
  FrameCNN, or a ResNet-18/34/50 that takes ImageNet weights.

  `head='last'` reads the final step (with a unidirectional LSTM the logits
  then depend on every frame, in order); `head='mean'` averages all steps.
  """
  num_classes: int
  cnn_features: Sequence[int] = (16, 32, 64)
  cnn_embed_dim: int = 256
  lstm_hidden_size: int = 128
  lstm_layers: int = 1
  bidirectional: bool = False
  head: str = 'last'
  dropout: float = 0.0
  unroll: int = 1  # Time steps per scan iteration; counting FLOPs unrolls fully.
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  remat: bool = False
  backbone: str = 'frame_cnn'  # frame_cnn | resnet18 | resnet34 | resnet50
  frames_per_call: int = 0  # Frames per CNN call, 0: all (see `cnn.per_frame`).

  def setup(self):
    if self.head not in ('last', 'mean'):
      raise ValueError(f"LRCN head must be 'last' or 'mean', got '{self.head}'")

  @nn.compact
  def __call__(self, video, *, train: bool = False):  # [B, T, H, W, C] -> [B, K]
    b, t = video.shape[:2]
    cnn = frame_backbone(self.backbone, self.cnn_features, self.cnn_embed_dim, self.dtype,
                         self.param_dtype, self.remat)
    x = per_frame(cnn, video, self.frames_per_call).reshape(b, t, -1)  # [B, T, D]
    for i in range(self.lstm_layers):
      def rnn(name):
        # parent=None: the cell's parameters live under the RNN's name.
        cell = nn.OptimizedLSTMCell(self.lstm_hidden_size, dtype=self.dtype,
                                    param_dtype=self.param_dtype, parent=None)
        return nn.RNN(cell, unroll=self.unroll, name=name)
      if self.bidirectional:
        x = nn.Bidirectional(rnn(f'lstm_{i}_fwd'), rnn(f'lstm_{i}_bwd'), name=f'lstm_{i}')(x)
      else:
        x = rnn(f'lstm_{i}')(x)  # [B, T, hidden]
    pooled = x[:, -1] if self.head == 'last' else x.mean(axis=1)
    pooled = nn.Dropout(self.dropout, deterministic=not train)(pooled)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                      name='head')(pooled)
    return logits.astype(jnp.float32)


def default_config() -> ml_collections.ConfigDict:
  """`config.model.lrcn`: LRCN's keyword arguments for the embedded demo (64x64 frames)."""
  return ml_collections.ConfigDict(dict(
      # frame_cnn | resnet18 | resnet34 | resnet50; a ResNet ignores cnn_features/cnn_embed_dim
      # and wants data.mean=(0.485, 0.456, 0.406), data.std=(0.229, 0.224, 0.225).
      backbone='frame_cnn',
      cnn_features=(16, 32, 64, 64),  # One strided 3x3 conv stage each: 64x64 -> 4x4.
      cnn_embed_dim=128,
      lstm_hidden_size=128,
      lstm_layers=1,
      bidirectional=False,
      head='last',  # last | mean (over time)
      dropout=0.0,
      unroll=1,  # LSTM steps per scan iteration.
      # Frames per CNN call: 1 is fastest on CPU (1.6x for this config's step), 0 (all frames
      # in one call) on GPU/TPU. The outputs are the same either way.
      frames_per_call=1,
  ))
