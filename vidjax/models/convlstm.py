"""ConvLSTM (Shi et al. 2015): an LSTM whose states are feature maps.

The fully connected LSTM flattens a frame and loses where things are; ConvLSTM
keeps the states as [H, W, F] maps and replaces every matrix product by a
convolution, so a state-to-state kernel of size k lets information move k//2
pixels per step -- which is why the paper finds a 1x1 state kernel much worse
than 5x5 on Moving MNIST: the transition must span the motion.

Pieces, from small to large:
- `ConvLSTMCell`: one time step of one layer (equations 3 of the paper).
- `ConvLSTM`: a stack of cells, each layer scanned over time with `nn.scan`.
- `ConvLSTMClassifier`: conv stem -> ConvLSTM -> max-pooled last hidden state -> logits.
- `ConvLSTMForecaster`: the paper's encoder-forecaster for frame prediction.

Param counts: with `peephole_per_position=False` (the default) the forecaster
reproduces the counts of Table 1 of the paper exactly (e.g. 13,524,496 for
ConvLSTM(5x5)-5x5-256, where "(5x5)" is the input-to-state kernel), see
tests/test_convlstm.py.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from vidjax.models.cnn import fold_time
from vidjax.models.layers import as_dtype, pair

Carry = tuple[jnp.ndarray, jnp.ndarray]  # (c, h), each float32 [B, H, W, F]


def zero_carry(batch: int, height: int, width: int, features: int) -> Carry:
  """The all-zero (c, h) a sequence starts from."""
  zeros = jnp.zeros((batch, height, width, features), jnp.float32)
  return zeros, zeros


def _forget_bias_init(features: int, forget_bias: float):
  """Bias init for the fused [i, f, g, o] gates: `forget_bias` on f, 0 elsewhere.

  A positive forget bias makes the cell remember by default at the start of
  training, so gradients reach early frames (Gers et al. 2000; Jozefowicz et
  al. 2015).
  """
  def init(key, shape, dtype=jnp.float32):
    del key
    bias = jnp.zeros(shape, dtype)
    return bias.at[features:2 * features].set(forget_bias)
  return init


class ConvLSTMCell(nn.Module):
  """One step of a ConvLSTM layer (Shi et al. 2015, eq. 3).

    i = sigma(W_xi * x + W_hi * h + W_ci o c + b_i)
    f = sigma(W_xf * x + W_hf * h + W_cf o c + b_f)
    c' = f o c + i o tanh(W_xc * x + W_hc * h + b_c)
    o = sigma(W_xo * x + W_ho * h + W_co o c' + b_o)
    h' = o o tanh(c')

  `*` is a 'SAME' convolution, `o` the Hadamard product with the peephole
  weights W_c*. The four gates share one input conv and one state conv of
  4F output channels (same maths, fewer, larger kernels). The bias sits on
  the state conv, so a cell with no input (`x=None`, the forecaster's first
  layer) still has one.

  Peepholes: `peephole_per_position=True` learns a weight per position and
  channel ([H, W, F], the literal reading of the Hadamard product; ties the
  model to one resolution); False learns one per channel ([F], broadcast over
  space), which is what the paper's own parameter counts imply.

  The carry and the gate arithmetic stay float32 whatever `dtype` is: only the
  convolutions run in `dtype`, so a bf16 model does not accumulate rounding
  in the cell state over long sequences.
  """
  features: int
  input_kernel_size: int | tuple[int, int] = 3
  state_kernel_size: int | tuple[int, int] = 3
  peephole: bool = True
  peephole_per_position: bool = False
  forget_bias: float = 1.0
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, carry: Carry, x: jnp.ndarray | None):
    c, h = carry  # [B, H, W, F] float32 each
    f = self.features
    dtype, param_dtype = as_dtype(self.dtype), as_dtype(self.param_dtype)
    gates = nn.Conv(4 * f, pair(self.state_kernel_size), padding='SAME',
                    bias_init=_forget_bias_init(f, self.forget_bias),
                    dtype=dtype, param_dtype=param_dtype, name='state_conv')(h)
    if x is not None:  # x: [B, H, W, C_in]
      gates = gates + nn.Conv(4 * f, pair(self.input_kernel_size), padding='SAME',
                              use_bias=False, dtype=dtype, param_dtype=param_dtype,
                              name='input_conv')(x)
    gates = gates.astype(jnp.float32)  # [B, H, W, 4F]
    i, fg, g, o = jnp.split(gates, 4, axis=-1)  # [B, H, W, F] each

    if self.peephole:
      shape = c.shape[1:] if self.peephole_per_position else (f,)
      peep = lambda name: self.param(name, nn.initializers.zeros, shape,
                                     param_dtype).astype(jnp.float32)
      i = i + peep('peephole_i') * c
      fg = fg + peep('peephole_f') * c
    c_new = nn.sigmoid(fg) * c + nn.sigmoid(i) * jnp.tanh(g)
    if self.peephole:
      o = o + peep('peephole_o') * c_new
    h_new = nn.sigmoid(o) * jnp.tanh(c_new)
    return (c_new, h_new), h_new


class ConvLSTM(nn.Module):
  """A stack of ConvLSTM layers, each scanned over time.

  Layer-major: layer l runs over the whole sequence before layer l+1 starts,
  which gives every layer's hidden sequence (the forecaster needs them all)
  and lets each layer's scan be a single loop over one cell.

  `unroll` is passed to `nn.scan`: on XLA:CPU a rolled scan over a conv cell
  runs far slower than the unrolled loop, so use unroll >= T there. Measured
  in one run on 2 shared CPU cores (ConvLSTMClassifier, B=8, 16 frames of
  64x64, stem stride 4, hidden (32, 32), forward+backward): 7.1 s/step with
  unroll=1, 0.9 s with unroll=16. Unrolling multiplies compile time (about
  2.5x there); on GPU/TPU try unroll=1 first (not measured here). Any value
  >= T (or True) unrolls fully; the results do not depend on it.

  `remat` recomputes each cell step in the backward pass instead of storing
  its gate activations (memory ~ O(T) carries rather than O(T) x 4 gates).
  """
  hidden_sizes: Sequence[int] = (32, 32)
  input_kernel_size: int | tuple[int, int] = 3
  state_kernel_size: int | tuple[int, int] = 3
  peephole: bool = True
  peephole_per_position: bool = False
  forget_bias: float = 1.0
  first_layer_has_input: bool = True  # False: layer 0 gets no input (forecaster)
  unroll: int | bool = 1
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, inputs: jnp.ndarray | None, initial_carries: Sequence[Carry] | None = None,
               *, length: int | None = None):
    """Runs the stack.

    Args:
      inputs: [B, T, H, W, C], or None when `first_layer_has_input` is False.
      initial_carries: one (c, h) per layer, each [B, H, W, F_l]; zeros if None.
      length: T, needed only when `inputs` is None.

    Returns:
      (final carries, one per layer; hidden sequences, one [B, T, H, W, F_l] per layer).
    """
    if inputs is None:
      if self.first_layer_has_input or initial_carries is None or length is None:
        raise ValueError('inputs=None needs first_layer_has_input=False, '
                         'initial_carries and length')
      batch, height, width = initial_carries[0][0].shape[:3]
    else:
      batch, length, height, width = inputs.shape[:4]
    if initial_carries is None:
      initial_carries = [zero_carry(batch, height, width, f) for f in self.hidden_sizes]
    if len(initial_carries) != len(self.hidden_sizes):
      raise ValueError(f'{len(initial_carries)} initial carries for '
                       f'{len(self.hidden_sizes)} layers')

    # unroll=True means fully (int(True) would silently mean 1).
    unroll = length if self.unroll is True else max(1, min(int(self.unroll), length))
    cell = nn.remat(ConvLSTMCell) if self.remat else ConvLSTMCell
    scanned_cell = nn.scan(cell, variable_broadcast='params', split_rngs={'params': False},
                           in_axes=1, out_axes=1, length=length, unroll=unroll)
    x = inputs  # [B, T, H, W, C] or None
    carries, outputs = [], []
    for layer, (features, carry) in enumerate(zip(self.hidden_sizes, initial_carries)):
      carry, x = scanned_cell(
          features, self.input_kernel_size, self.state_kernel_size, self.peephole,
          self.peephole_per_position, self.forget_bias, as_dtype(self.dtype),
          as_dtype(self.param_dtype), name=f'layer_{layer}')(carry, x)  # x: [B, T, H, W, F]
      carries.append(carry)
      outputs.append(x)
    return tuple(carries), tuple(outputs)


class ConvLSTMClassifier(nn.Module):
  """Video classifier: conv stem per frame -> ConvLSTM -> max over space -> logits.

  The stem is `log2(stem_stride)` stride-2 conv stages (widths doubling up to
  `stem_features`), each with GroupNorm and ReLU, so the recurrent convs run on
  small maps. The head reads the top layer's hidden state at the last step:
  after the whole clip has been seen, in order, so the logits depend on frame
  order.

  Two choices decide whether it learns at all on the embedded action set, where
  a digit covers ~5% of a frame over a background of random colour. Measured
  there, one run each (200 steps at batch 16, val top-1; LRCN 0.54, chance 0.08):
  - `pooling='max'`, not 'mean'. At init the spatial mean of the last hidden
    state is ~70% explained by the clip's background colour and no better than
    chance by the class (R^2 0.04 over 256 clips), and its gradient is the same
    at every position, mostly background: the loss stays at log(12) (val 0.07
    with a single 5x5 stride-4 conv stem, 0.11 with this stem). The max reads
    the strongest local response wherever the digit is: 0.85.
  - GroupNorm in the stem, which takes each frame's background level and
    contrast out before the recurrence: with max pooling this stem reaches 0.47
    without the norm, 0.85 with it (a single 5x5 stride-4 conv, no norm: 0.44).
  The norm sees one frame at a time (time folded into the batch), so the
  hidden state at step t still depends on frames 0..t only.
  """
  num_classes: int
  stem_features: int = 32
  stem_kernel_size: int = 3
  stem_stride: int = 4  # A power of two: one stride-2 stage per halving.
  hidden_sizes: Sequence[int] = (32, 32)
  input_kernel_size: int | tuple[int, int] = 3
  state_kernel_size: int | tuple[int, int] = 3
  peephole: bool = True
  peephole_per_position: bool = False
  forget_bias: float = 1.0
  pooling: str = 'max'  # max | mean: over space, of the last step's top hidden state.
  dropout: float = 0.0
  unroll: int | bool = 1
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, video, *, train: bool = False):  # video: [B, T, H, W, C] -> [B, K]
    if self.pooling not in ('max', 'mean'):
      raise ValueError(f"ConvLSTMClassifier pooling must be 'max' or 'mean', got '{self.pooling}'")
    stride = self.stem_stride
    if stride < 1 or stride & (stride - 1):
      raise ValueError(f'stem_stride must be a power of two, got {stride}')
    dtype, param_dtype = as_dtype(self.dtype), as_dtype(self.param_dtype)
    b, t = video.shape[:2]
    x = fold_time(video)  # [B*T, H, W, C]: the norm must not mix frames.
    num_stages = max(1, stride.bit_length() - 1)
    for stage in range(num_stages):
      width = max(1, self.stem_features // 2 ** (num_stages - 1 - stage))
      # No bias: GroupNorm removes it.
      x = nn.Conv(width, pair(self.stem_kernel_size), strides=min(stride, 2), padding='SAME',
                  use_bias=False, dtype=dtype, param_dtype=param_dtype,
                  name=f'stem_{stage}')(x)
      x = nn.GroupNorm(num_groups=math.gcd(8, width), dtype=dtype, param_dtype=param_dtype,
                       name=f'stem_norm_{stage}')(x)
      x = nn.relu(x)
    x = x.reshape((b, t) + x.shape[1:])  # [B, T, H/s, W/s, stem_features]
    _, outputs = ConvLSTM(
        self.hidden_sizes, self.input_kernel_size, self.state_kernel_size, self.peephole,
        self.peephole_per_position, self.forget_bias, unroll=self.unroll, dtype=dtype,
        param_dtype=param_dtype, remat=self.remat, name='convlstm')(x)
    last = outputs[-1][:, -1]  # [B, H/s, W/s, F_top], float32
    pooled = last.max(axis=(1, 2)) if self.pooling == 'max' else last.mean(axis=(1, 2))
    pooled = nn.Dropout(self.dropout, deterministic=not train)(pooled)
    logits = nn.Dense(self.num_classes, dtype=jnp.float32, param_dtype=param_dtype,
                      name='head')(pooled)
    return logits.astype(jnp.float32)  # [B, K]


class ConvLSTMForecaster(nn.Module):
  """The encoder-forecaster of Shi et al. 2015 (their Fig. 3), for frame prediction.

  Input frames are already cut into patches: [B, T_in, H/p, W/p, p*p*C]
  (Moving MNIST: p=4, so [B, 10, 16, 16, 16]). The encoder stack reads the
  observed frames; the forecaster stack starts from the encoder's final states
  (layer l from layer l) and runs `num_future` steps with no input -- the
  paper's forecaster sees no frames, so its first layer has no input conv (a
  zero input would only add the bias) and layer l>0 reads the hidden state of
  layer l-1. All forecaster layers' hidden states are concatenated and a 1x1
  conv gives one logit per patch pixel.

  Returns logits [B, num_future, H/p, W/p, out_features] (float32); the loss
  applies the sigmoid (per-pixel cross-entropy in the paper).
  """
  hidden_sizes: Sequence[int] = (64, 64)
  input_kernel_size: int | tuple[int, int] = 5
  state_kernel_size: int | tuple[int, int] = 5
  peephole: bool = True
  peephole_per_position: bool = False
  forget_bias: float = 1.0
  out_features: int | None = None  # None: the input's channel count (p*p*C)
  unroll: int | bool = 1
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, frames, *, num_future: int, train: bool = False):
    del train  # no dropout in the paper's model
    dtype, param_dtype = as_dtype(self.dtype), as_dtype(self.param_dtype)
    stack = lambda has_input, name: ConvLSTM(
        self.hidden_sizes, self.input_kernel_size, self.state_kernel_size, self.peephole,
        self.peephole_per_position, self.forget_bias, first_layer_has_input=has_input,
        unroll=self.unroll, dtype=dtype, param_dtype=param_dtype, remat=self.remat, name=name)
    carries, _ = stack(True, 'encoder')(frames)  # frames: [B, T_in, h, w, P]
    _, hidden = stack(False, 'forecaster')(None, carries, length=num_future)
    hidden = jnp.concatenate(hidden, axis=-1)  # [B, T_out, h, w, sum(hidden_sizes)]
    out_features = self.out_features or frames.shape[-1]
    logits = nn.Conv(out_features, (1, 1), dtype=jnp.float32, param_dtype=param_dtype,
                     name='output')(hidden)
    return logits  # [B, T_out, h, w, P] float32


def default_config() -> ml_collections.ConfigDict:
  """`config.model.convlstm`: ConvLSTMClassifier's keyword arguments (64x64 frames)."""
  return ml_collections.ConfigDict(dict(
      stem_features=32,  # The stem's output width; its stages are 16, 32 wide.
      stem_kernel_size=3,
      stem_stride=4,  # Two stride-2 conv + GroupNorm stages: 64x64 frames -> 16x16 states.
      hidden_sizes=(32, 32),  # One ConvLSTM layer each.
      input_kernel_size=3,
      state_kernel_size=3,
      peephole=True,  # Shi et al.'s peepholes, one weight per channel.
      peephole_per_position=False,
      forget_bias=1.0,
      # Over space, of the last step's top hidden state. 'mean' stays at chance on the
      # embedded set: the mean is dominated by the background (see ConvLSTMClassifier).
      pooling='max',  # max | mean
      dropout=0.0,
      # Steps per scan iteration; >= num_frames unrolls fully. XLA:CPU runs a
      # scanned conv cell ~8-20x slower than unrolled; on GPU/TPU 1 compiles faster.
      unroll=64,
  ))
