"""ConvLSTM: the scanned stack is the paper's recurrence, causal, and cheap to vary.

Sizes are tiny (B=2, T=4, 8x8 maps) so the file runs in seconds on 2 CPU cores.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidjax.models.convlstm import (ConvLSTM, ConvLSTMCell, ConvLSTMClassifier,
                                    ConvLSTMForecaster, zero_carry)

B, T, H, W, C = 2, 4, 8, 8, 3
HIDDEN = (4, 6)


def _count(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


def _init(model, *args, **kwargs):
  """Random parameters with the model's tree, drawn in numpy.

  Cheaper on CPU than `model.init`, which compiles every initialiser for every
  shape (seconds per test); and unlike the real init the peepholes and biases
  are non-zero, so the tests exercise them. The properties tested hold for any
  parameters.
  """
  shapes = jax.eval_shape(lambda key: model.init(key, *args, **kwargs), jax.random.key(0))
  rng = np.random.default_rng(0)
  def draw(leaf):
    fan_in = np.prod(leaf.shape[:-1]) if leaf.ndim > 1 else 16
    return jnp.asarray(rng.normal(size=leaf.shape) / np.sqrt(fan_in), leaf.dtype)
  return jax.tree.map(draw, shapes)


def _video(seed=0, shape=(B, T, H, W, C)):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


@pytest.mark.parametrize('per_position', [False, True])
def test_scanned_stack_equals_python_loop_over_the_cell(per_position):
  """nn.scan over time, layer by layer, is exactly the recurrence written out by hand."""
  stack = ConvLSTM(HIDDEN, input_kernel_size=3, state_kernel_size=(5, 3),
                   peephole_per_position=per_position, forget_bias=0.5)
  x = _video()
  params = _init(stack, x)['params']  # non-zero peepholes
  carries, outputs = jax.jit(stack.apply)({'params': params}, x)

  layer_input = x
  for layer, features in enumerate(HIDDEN):
    cell = ConvLSTMCell(features, 3, (5, 3), peephole_per_position=per_position,
                        forget_bias=0.5)
    step = jax.jit(cell.apply)
    carry = zero_carry(B, H, W, features)
    hs = []
    for t in range(T):  # the hand-written loop
      carry, h = step({'params': params[f'layer_{layer}']}, carry, layer_input[:, t])
      hs.append(h)
    layer_input = jnp.stack(hs, axis=1)  # [B, T, H, W, F]
    np.testing.assert_allclose(outputs[layer], layer_input, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(carries[layer][0], carry[0], atol=1e-5, rtol=1e-5)


def test_unroll_does_not_change_outputs():
  x = _video()
  rolled = ConvLSTMClassifier(5, stem_features=4, stem_stride=2, hidden_sizes=HIDDEN, unroll=1)
  unrolled = rolled.clone(unroll=T)
  params = _init(rolled, x)
  # Same parameter tree: unroll is a compilation choice, not a model choice.
  assert jax.tree.structure(params) == jax.tree.structure(_init(unrolled, x))
  np.testing.assert_allclose(jax.jit(rolled.apply)(params, x),
                             jax.jit(unrolled.apply)(params, x), atol=1e-6, rtol=1e-6)


def test_outputs_are_causal():
  """The hidden state at time t sees frames 0..t only."""
  stack = ConvLSTM(HIDDEN)
  x = _video()
  params = _init(stack, x)
  apply = jax.jit(stack.apply)
  _, before = apply(params, x)
  changed = x.at[:, 2:].set(_video(seed=7)[:, 2:])  # new frames 2 and 3
  _, after = apply(params, changed)
  for b, a in zip(before, after):
    np.testing.assert_array_equal(b[:, :2], a[:, :2])
    assert not np.allclose(b[:, 2:], a[:, 2:])


@pytest.mark.parametrize('per_position', [False, True])
def test_peephole_param_count(per_position):
  """Peepholes add W_ci, W_cf, W_co: 3F per layer, or 3HWF when learned per position."""
  x = _video()
  def count(peephole):
    stack = ConvLSTM(HIDDEN, peephole=peephole, peephole_per_position=per_position)
    return _count(jax.eval_shape(stack.init, jax.random.key(0), x))
  per_layer = (H * W if per_position else 1) * 3
  assert count(True) - count(False) == sum(per_layer * f for f in HIDDEN)


@pytest.mark.parametrize('hidden, input_kernel, state_kernel, paper_count', [
    ((256,), 5, 5, 13_524_496),          # ConvLSTM(5x5)-5x5-256
    ((128, 64, 64), 5, 5, 7_585_296),    # ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64
    ((128, 128), 9, 1, 11_550_224),      # ConvLSTM(9x9)-1x1-128-1x1-128
])
def test_forecaster_matches_paper_param_counts(hidden, input_kernel, state_kernel, paper_count):
  """Shi et al. Table 1 counts, on Moving MNIST patches [16, 16, 16].

  They pin down the architecture: "(k x k)" is the input-to-state kernel; the
  forecaster's first layer has no input conv; peepholes are per channel; the
  output is a 1x1 conv over all forecaster layers' hidden states.
  """
  model = ConvLSTMForecaster(hidden, input_kernel, state_kernel)
  frames = jnp.zeros((1, 10, 16, 16, 16))
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), frames, num_future=10))
  assert _count(shapes) == paper_count


def test_forecaster_shape_and_dependence_on_observed_frames():
  model = ConvLSTMForecaster((4, 4), 3, 3)
  frames = _video(shape=(B, 3, H, W, 16))  # [B, T_in, H/4, W/4, 16] patches
  params = _init(model, frames, num_future=2)
  apply = jax.jit(model.apply, static_argnames='num_future')
  logits = apply(params, frames, num_future=2)
  assert logits.shape == (B, 2, H, W, 16) and logits.dtype == jnp.float32
  # The forecast of step k does not depend on how far ahead we ask: nothing
  # but the observed frames (through the encoder states) drives it.
  np.testing.assert_allclose(apply(params, frames, num_future=4)[:, :2], logits, atol=1e-6)
  # Every observed frame matters (the encoder states carry all of them).
  grads = jax.grad(lambda f: apply(params, f, num_future=2).sum())(frames)
  assert all(np.abs(grads[:, t]).max() > 0 for t in range(3))


def test_bfloat16_compute_is_close_to_float32():
  x = _video()
  model = ConvLSTMClassifier(5, stem_features=4, stem_stride=2, hidden_sizes=HIDDEN, unroll=T)
  params = _init(model, x)
  f32 = jax.jit(model.apply)(params, x)
  bf16 = jax.jit(model.clone(dtype='bfloat16').apply)(params, x)  # dtypes may be strings
  assert bf16.dtype == jnp.float32
  np.testing.assert_allclose(bf16, f32, atol=3e-2, rtol=3e-2)


def test_remat_gives_the_same_gradients():
  x = _video()
  model = ConvLSTMClassifier(5, stem_features=4, stem_stride=2, hidden_sizes=HIDDEN)
  params = _init(model, x)
  def grads(m):
    return jax.jit(jax.grad(lambda p: m.apply(p, x).sum()))(params)
  remat = model.clone(remat=True)
  assert jax.tree.structure(_init(remat, x)) == jax.tree.structure(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5),
               grads(model), grads(remat))


def test_cell_init_forget_bias_and_zero_peepholes():
  """The real initialisers: the cell starts remembering (f = sigma(1)) with no peephole."""
  cell = ConvLSTMCell(3, forget_bias=1.0)
  params = cell.init(jax.random.key(0), zero_carry(1, 4, 4, 3), jnp.ones((1, 4, 4, 2)))['params']
  np.testing.assert_array_equal(params['state_conv']['bias'], [0] * 3 + [1] * 3 + [0] * 6)
  for gate in 'ifo':
    np.testing.assert_array_equal(params[f'peephole_{gate}'], np.zeros(3))


def test_jit_and_dropout_in_training():
  x = _video()
  model = ConvLSTMClassifier(5, stem_features=4, stem_stride=2, hidden_sizes=HIDDEN,
                             dropout=0.5, unroll=T)
  params = _init(model, x)
  train = jax.jit(lambda p, x, key: model.apply(p, x, train=True, rngs={'dropout': key}))
  a, b = train(params, x, jax.random.key(1)), train(params, x, jax.random.key(2))
  assert a.shape == (B, 5) and a.dtype == jnp.float32 and not np.allclose(a, b)


def test_classifier_reads_frame_order_and_stays_causal():
  """Reversing a clip changes the logits; the per-frame stem (its GroupNorm
  included) lets the hidden state at step t see frames 0..t only."""
  x = _video()
  model = ConvLSTMClassifier(5, stem_features=4, stem_stride=4, hidden_sizes=HIDDEN, unroll=T)
  params = _init(model, x)
  apply = jax.jit(lambda p, v: model.apply(p, v, capture_intermediates=True,
                                           mutable=['intermediates']))
  def run(v):
    logits, state = apply(params, v)
    _, hidden = state['intermediates']['convlstm']['__call__'][0]
    return logits, hidden[-1]  # [B, K], [B, T, H/4, W/4, F_top]
  logits, before = run(x)
  assert np.abs(run(x[:, ::-1])[0] - logits).max() > 1e-3
  _, after = run(x.at[:, 2:].set(_video(seed=7)[:, 2:]))
  np.testing.assert_array_equal(before[:, :2], after[:, :2])
  assert not np.allclose(before[:, 2:], after[:, 2:])


@pytest.mark.parametrize('option', [dict(pooling='sum'), dict(stem_stride=3)])
def test_classifier_rejects_bad_options(option):
  model = ConvLSTMClassifier(5, stem_features=4, hidden_sizes=HIDDEN, **option)
  with pytest.raises(ValueError):
    jax.eval_shape(model.init, jax.random.key(0), _video())
