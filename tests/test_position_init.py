"""Sin-cos starts for position embeddings: the values, the layouts, the model option."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidjax.models import position_init
from vidjax.models.space_time_attention import SpaceTimeTransformer


def test_sincos_1d_values():
  table = position_init.sincos_1d(np.arange(3), 4)  # frequencies 1 and 1/100
  expected = [[0, 0, 1, 1],
              [np.sin(1), np.sin(0.01), np.cos(1), np.cos(0.01)],
              [np.sin(2), np.sin(0.02), np.cos(2), np.cos(0.02)]]
  np.testing.assert_allclose(table, expected, atol=1e-12)


def test_sincos_2d_is_row_then_column_and_every_position_differs():
  table = position_init.sincos_2d(2, 3, 8)  # [6, 8], row-major
  rows = position_init.sincos_1d(np.array([0, 0, 0, 1, 1, 1]), 4)
  cols = position_init.sincos_1d(np.array([0, 1, 2, 0, 1, 2]), 4)
  np.testing.assert_allclose(table, np.concatenate([rows, cols], axis=1))
  assert len({tuple(np.round(r, 9)) for r in table}) == 6


def test_initializer_layouts():
  init = position_init.initializer('sincos', (2, 2))
  space = init(None, (1, 1, 4, 8))
  time = init(None, (1, 3, 1, 8))
  both = init(None, (1, 3, 4, 8))
  np.testing.assert_allclose(space[0, 0], position_init.sincos_2d(2, 2, 8), rtol=1e-6)
  np.testing.assert_allclose(time[0, :, 0], position_init.sincos_1d(np.arange(3), 8), rtol=1e-6)
  np.testing.assert_allclose(both, space + time, rtol=1e-6, atol=1e-6)
  with pytest.raises(ValueError, match='not a 2x2 grid'):
    init(None, (1, 1, 5, 8))
  with pytest.raises(ValueError, match="position_init must be one of"):
    position_init.initializer('zeros', (2, 2))


@pytest.mark.parametrize('position_embedding', ['separable', 'space_time'])
def test_model_option_keeps_the_parameters_and_starts_them_at_sincos(position_embedding):
  video = jnp.zeros((1, 4, 16, 16, 3))
  kwargs = dict(num_classes=3, attention='joint', patch_size=8, hidden_size=16, num_layers=1,
                num_heads=2, mlp_dim=32, position_embedding=position_embedding)
  normal = SpaceTimeTransformer(**kwargs).init(jax.random.key(0), video)['params']
  sincos = SpaceTimeTransformer(**kwargs, position_init='sincos').init(
      jax.random.key(0), video)['params']
  assert jax.tree.map(jnp.shape, normal) == jax.tree.map(jnp.shape, sincos)
  if position_embedding == 'separable':
    np.testing.assert_allclose(sincos['space_embedding'][0, 0],
                               position_init.sincos_2d(2, 2, 16), rtol=1e-6)
    np.testing.assert_allclose(sincos['time_embedding'][0, :, 0],
                               position_init.sincos_1d(np.arange(4), 16), rtol=1e-6)
    assert float(jnp.std(normal['space_embedding'])) < 0.05  # timm's std 0.02
  else:
    assert sincos['space_time_embedding'].shape == (1, 4, 4, 16)
  with pytest.raises(ValueError, match='position_init must be one of'):
    SpaceTimeTransformer(**kwargs, position_init='fixed').init(jax.random.key(0), video)
