"""FC-LSTM: shapes, no leaks past the observed frames, and the paper's size."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidjax.models.fc_lstm import FCLSTMForecaster


def _init_apply(model, frames, num_future):
  """Jitted init and apply: compiling once is faster than tracing eagerly."""
  init = jax.jit(model.init, static_argnames='num_future')
  params = init(jax.random.key(0), frames, num_future=num_future)
  apply = jax.jit(model.apply, static_argnames='num_future')
  return params, lambda f, n=num_future: apply(params, f, num_future=n)


def _frames(b=2, t=10, size=16, seed=0):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.uniform(size=(b, t, size, size, 1)), jnp.float32)


@pytest.fixture(scope='module')
def small():
  """A 2-layer model, its params and a jitted apply, compiled once per file."""
  model = FCLSTMForecaster(hidden_sizes=(32, 16))
  frames = _frames()  # [B, T_in, H, W, C]
  _, apply = _init_apply(model, frames, 10)
  return frames, apply


def test_shapes_and_float32_logits(small):
  frames, apply = small
  logits = apply(frames)
  assert logits.shape == (2, 10, 16, 16, 1) and logits.dtype == jnp.float32
  assert np.all(np.isfinite(logits))


def test_forecast_depends_only_on_own_observed_frames(small):
  frames, apply = small
  logits = apply(frames)
  # Another sequence in the batch changes: this one's forecast does not.
  other = frames.at[1].set(_frames(b=1, seed=1)[0])
  np.testing.assert_allclose(apply(other)[0], logits[0], atol=1e-6)
  # Its own observed frames change (even only the first one): forecast changes.
  first = frames.at[0, 0].set(1.0 - frames[0, 0])
  assert np.abs(apply(first)[0] - logits[0]).max() > 1e-4
  # Unconditioned forecaster: step k never depends on the horizon asked for,
  # and the same params serve any horizon.
  np.testing.assert_allclose(apply(frames, 3), logits[:, :3], atol=1e-6)


def test_bfloat16_compute_still_returns_float32_logits():
  model = FCLSTMForecaster(hidden_sizes=(16,), dtype=jnp.bfloat16)
  frames = _frames(b=1, t=3, size=8)
  params, apply = _init_apply(model, frames, 2)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
  assert apply(frames).dtype == jnp.float32


def test_parameter_names_and_top_readout():
  model = FCLSTMForecaster(hidden_sizes=(8, 8), readout='top')
  frames = _frames(b=1, t=2, size=8)
  params, apply = _init_apply(model, frames, 1)
  assert apply(frames).shape == (1, 1, 8, 8, 1)
  p = params['params']
  assert set(p) == {'encoder_0', 'encoder_1', 'forecaster_0', 'forecaster_1',
                    'readout'}
  assert set(p['encoder_0']['step']) == {'hh', 'peep_i', 'peep_f', 'peep_o'}
  assert 'ih' not in p['forecaster_0']  # no input weights: unconditioned
  assert p['readout']['kernel'].shape == (8, 64)  # top layer only
  # Forget-gate bias starts at 1, the other gates at 0.
  bias = np.asarray(p['encoder_0']['ih']['bias']).reshape(4, 8)
  assert np.array_equal(bias, np.stack([np.zeros(8), np.ones(8),
                                        np.zeros(8), np.zeros(8)]))


def _num_params(model, shape):
  shapes = jax.eval_shape(functools.partial(model.init, num_future=10),
                          jax.random.key(0), jax.ShapeDtypeStruct(shape, jnp.float32))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))


def test_paper_parameter_count_without_allocating():
  """Shi et al. Table 1 lists FC-LSTM-2048-2048 at 142,667,776 parameters.

  It matches exactly with peephole cells and a readout from the top forecaster
  layer only; our default readout from both layers' concatenated states adds
  one more 2048 x 4096 matrix.
  """
  shape = (1, 10, 64, 64, 1)
  top = FCLSTMForecaster(hidden_sizes=(2048, 2048), readout='top')
  assert _num_params(top, shape) == 142_667_776
  concat = FCLSTMForecaster(hidden_sizes=(2048, 2048))
  assert _num_params(concat, shape) == 142_667_776 + 2048 * 4096
  no_peep = FCLSTMForecaster(hidden_sizes=(2048, 2048), readout='top',
                             peepholes=False)
  assert _num_params(no_peep, shape) == 142_667_776 - 4 * 3 * 2048


def test_parameter_count_formula_small():
  d, (h1, h2) = 8 * 8, (5, 3)
  lstm = lambda i, h: 4 * (i * h + h * h + h) + 3 * h  # with peepholes
  expected = (lstm(d, h1) + lstm(h1, h2)          # encoder
              + lstm(0, h1) + lstm(h1, h2)        # forecaster, no input
              + (h1 + h2) * d + d)                # concat readout
  model = FCLSTMForecaster(hidden_sizes=(h1, h2))
  assert _num_params(model, (1, 10, 8, 8, 1)) == expected
