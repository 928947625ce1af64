"""Frame predictors with one interface: observed frames -> logits of future frames.

Why a wrapper: Shi et al.'s ConvLSTM runs on 4x4 patches (a 64x64x1 frame is a
16x16x16 tensor) while the FC-LSTM baseline reads whole frames, and the
frame-prediction task should not care which. Every model registered in
`vidjax.models.FORECASTERS` takes

  frames  # [B, T_in, H, W, C] float32 in [0, 1]

with the keyword `num_future` and returns float32 logits [B, num_future, H, W, C],
one per pixel; the loss applies the sigmoid.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from vidjax.models.convlstm import ConvLSTMForecaster
from vidjax.models.patches import from_patches, to_patches


class PatchedConvLSTMForecaster(nn.Module):
  """Shi et al.'s encoder-forecaster with the patch reshape around it.

  The fields other than `patch_size` are `ConvLSTMForecaster`'s; see there.
  Parameters sit under `convlstm_forecaster/`, so their count is exactly the
  forecaster's (the reshape has none): Table 1's counts for the paper's rows.
  """
  patch_size: int = 4
  hidden_sizes: Sequence[int] = (128, 64, 64)
  input_kernel_size: int | tuple[int, int] = 5
  state_kernel_size: int | tuple[int, int] = 5
  peephole: bool = True
  peephole_per_position: bool = False
  forget_bias: float = 1.0
  unroll: int | bool = 1
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, frames, *, num_future: int, train: bool = False):
    patched = to_patches(frames, self.patch_size)  # [B, T_in, H/p, W/p, p*p*C]
    logits = ConvLSTMForecaster(
        self.hidden_sizes, self.input_kernel_size, self.state_kernel_size, self.peephole,
        self.peephole_per_position, self.forget_bias, unroll=self.unroll, dtype=self.dtype,
        param_dtype=self.param_dtype, remat=self.remat,
        name='convlstm_forecaster')(patched, num_future=num_future, train=train)
    return from_patches(logits, self.patch_size)  # [B, T_out, H, W, C] float32


def default_config() -> ml_collections.ConfigDict:
  """`config.model.convlstm_forecaster`: Shi et al. 2015's encoder-forecaster on 4x4 patches.

  64x64x1 frames -> 16x16x16; the defaults are Table 1's best row,
  ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64 (7,585,296 parameters).
  """
  return ml_collections.ConfigDict(dict(
      patch_size=4,
      hidden_sizes=(128, 64, 64),  # One ConvLSTM layer each, in the encoder and the forecaster.
      input_kernel_size=5,  # The "(5x5)" of the paper's row names.
      state_kernel_size=5,  # The "5x5" before each hidden size.
      peephole=True,
      peephole_per_position=False,  # One peephole weight per channel: the paper's counts.
      forget_bias=1.0,
      unroll=64,  # As convlstm.unroll: >= 10 unrolls fully (XLA:CPU); on GPU/TPU try 1.
  ))
