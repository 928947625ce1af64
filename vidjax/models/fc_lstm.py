"""FC-LSTM encoder-forecaster: the baseline Shi et al. 2015 compare ConvLSTM to.

Why it exists: it is Srivastava et al. 2015's future predictor, the model that
ConvLSTM beats in Shi et al.'s Table 1 (FC-LSTM-2048-2048). Frames are
flattened to vectors, so the model has no notion of space: every pixel talks
to every unit, which is what ConvLSTM's convolutions replace.

Architecture:
- Encoder: a stack of LSTMs (`hidden_sizes`) reads the T_in observed frames,
  each flattened to H*W*C.
- Forecaster: a second stack of the same sizes, initialised with the encoder's
  final (c, h) of the same layer, and unconditioned: it gets no input (no
  input weights, only a bias), so it never sees its own predictions or the
  ground-truth future. It runs `num_future` steps.
- Readout: a dense layer from the forecaster's hidden states to one logit per
  pixel. `readout='concat'` (default) reads all layers' states concatenated,
  like Shi et al.'s ConvLSTM forecaster; `readout='top'` reads only the top
  layer, like Srivastava et al.'s future predictor.
- Cells have peepholes (the LSTM of Graves 2013, used by both papers): the
  input and forget gates see c_{t-1} and the output gate sees c_t, each through
  a per-unit diagonal weight.

Parameter count of the paper's FC-LSTM-2048-2048 on 64x64 frames
(`tests/test_fc_lstm.py` checks both with `jax.eval_shape`):
- peepholes=True, readout='top': 142,667,776, exactly the number in Shi et
  al.'s Table 1. Decomposition: encoder 50,339,840 + 33,562,624, forecaster
  (no input weights) 16,785,408 + 33,562,624, peepholes 4 x 3 x 2048 = 24,576,
  readout 2048 x 4096 + 4096 = 8,392,704.
- peepholes=True, readout='concat' (our default): 151,056,384, i.e. 8,388,608
  more = a second 2048 x 4096 readout matrix. So the paper's FC-LSTM read out
  from the top layer only (as Srivastava et al. did), even though its ConvLSTMs
  read out from all layers (their counts, e.g. 10,042,896 for 5x5-128-5x5-128,
  only add up with a 1x1 readout from the concatenated 256 channels and
  per-channel peepholes).

Input: frames [B, T_in, H, W, C], floats in [0, 1]. Output: float32 logits
[B, num_future, H, W, C]; the loss applies the sigmoid. The cell state c is
kept in float32 whatever `dtype` the matmuls use, since it accumulates over
time.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

Dtype = Any


def _lstm_bias_init(key, shape, dtype=jnp.float32):
  """Zeros, except +1 on the forget gate (gate order i, f, g, o).

  A forget bias of 1 makes the initial cell keep its memory, the usual fix for
  slow early training (Gers et al. 2000, Jozefowicz et al. 2015).
  """
  del key
  hidden = shape[-1] // 4
  return jnp.zeros(shape, dtype).at[..., hidden:2 * hidden].set(1.0)


class PeepholeLSTMStep(nn.Module):
  """One time step, given the input projection x W_x + b precomputed: [B, 4H]."""
  features: int
  peepholes: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, carry, x_proj):
    c, h = carry  # [B, H] float32 each
    gates = x_proj.astype(jnp.float32) + nn.Dense(
        4 * self.features, use_bias=False, dtype=self.dtype,
        param_dtype=self.param_dtype, name='hh')(h).astype(jnp.float32)
    i, f, g, o = jnp.split(gates, 4, axis=-1)  # [B, H] each
    if self.peepholes:
      peep = lambda name: self.param(name, nn.initializers.zeros,
                                     (self.features,), self.param_dtype)
      i = i + peep('peep_i') * c
      f = f + peep('peep_f') * c
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    if self.peepholes:
      o = o + self.param('peep_o', nn.initializers.zeros,
                         (self.features,), self.param_dtype) * c
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h


class LSTMLayer(nn.Module):
  """One LSTM layer over time: inputs [B, T, D] (or None: no input) -> [B, T, H].

  The input projection of all T steps is one matmul outside the scan; only
  the recurrent matmul is inside it.
  """
  features: int
  peepholes: bool = True
  unroll: int | bool = 1  # Steps per scan iteration; True = all (cost.py counts it so).
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, inputs, carry, num_steps: int):
    if inputs is None:  # unconditioned: the input projection is the bias alone
      bias = self.param('bias', _lstm_bias_init, (4 * self.features,),
                        self.param_dtype)
      b = carry[0].shape[0]
      x_proj = jnp.broadcast_to(bias.astype(jnp.float32),
                                (b, num_steps, 4 * self.features))
    else:
      x_proj = nn.Dense(4 * self.features, dtype=self.dtype,
                        param_dtype=self.param_dtype, bias_init=_lstm_bias_init,
                        name='ih')(inputs)  # [B, T, 4H]
    unroll = num_steps if self.unroll is True else max(1, min(int(self.unroll), num_steps))
    scan = nn.scan(PeepholeLSTMStep, variable_broadcast='params',
                   split_rngs={'params': False}, in_axes=1, out_axes=1, unroll=unroll)
    carry, hs = scan(features=self.features, peepholes=self.peepholes,
                     dtype=self.dtype, param_dtype=self.param_dtype,
                     name='step')(carry, x_proj)
    return carry, hs  # hs [B, T, H] float32


class FCLSTMForecaster(nn.Module):
  """Encoder-forecaster FC-LSTM: frames [B, T_in, H, W, C] -> logits [B, T_out, H, W, C]."""
  hidden_sizes: Sequence[int] = (256,)  # the paper: (2048, 2048)
  peepholes: bool = True
  readout: str = 'concat'  # 'concat' (all layers) or 'top' (top layer only)
  # XLA's cost analysis counts a rolled loop's body once: models/cost.py sets this to
  # count FLOPs on an unrolled copy. Results do not depend on it.
  unroll: int | bool = 1
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, frames, *, num_future: int, train: bool = False):
    # `train` is accepted for a uniform model interface; there is no dropout.
    del train
    if self.readout not in ('concat', 'top'):
      raise ValueError(f"readout must be 'concat' or 'top', got {self.readout!r}")
    b, t_in, h, w, c = frames.shape
    x = frames.reshape(b, t_in, h * w * c).astype(self.dtype)  # [B, T_in, HWC]
    layer = lambda i, role: LSTMLayer(
        features=self.hidden_sizes[i], peepholes=self.peepholes, unroll=self.unroll,
        dtype=self.dtype, param_dtype=self.param_dtype, name=f'{role}_{i}')

    states = []
    for i, size in enumerate(self.hidden_sizes):
      zeros = jnp.zeros((b, size), jnp.float32)
      carry, x = layer(i, 'encoder')(x, (zeros, zeros), t_in)  # x [B, T_in, H_i]
      states.append(carry)

    outputs = []
    y = None  # the forecaster's first layer gets no input
    for i, carry in enumerate(states):
      _, y = layer(i, 'forecaster')(y, carry, num_future)  # [B, T_out, H_i]
      outputs.append(y)

    feats = jnp.concatenate(outputs, -1) if self.readout == 'concat' else y
    logits = nn.Dense(h * w * c, dtype=self.dtype, param_dtype=self.param_dtype,
                      name='readout')(feats.astype(self.dtype))
    return logits.astype(jnp.float32).reshape(b, num_future, h, w, c)


def default_config() -> ml_collections.ConfigDict:
  """`config.model.fc_lstm`: Srivastava et al. 2015's FC-LSTM, Shi et al.'s baseline.

  The defaults are the paper's FC-LSTM-2048-2048 (142,667,776 parameters with
  readout 'top').
  """
  return ml_collections.ConfigDict(dict(
      hidden_sizes=(2048, 2048),
      peepholes=True,
      readout='top',  # top: the top layer's state (the paper's count) | concat: all layers'.
  ))
