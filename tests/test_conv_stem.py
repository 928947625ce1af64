"""The convolutional stem: its shapes, frames kept apart, and its one-line errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidjax.models.conv_stem import ConvStem
from vidjax.models.space_time_attention import SpaceTimeTransformer


def test_stages_and_output_grid():
  stem = ConvStem(64, (8, 8))
  video = jnp.ones((2, 3, 32, 32, 3))
  params = stem.init(jax.random.key(0), video)['params']
  assert [params[f'conv_{i}']['kernel'].shape[-1] for i in range(3)] == [16, 32, 64]
  assert stem.apply({'params': params}, video).shape == (2, 3, 4, 4, 64)


def test_each_frame_is_embedded_on_its_own():
  stem = ConvStem(16, (4, 4))
  video = jax.random.uniform(jax.random.key(1), (1, 4, 16, 16, 3))
  params = stem.init(jax.random.key(0), video)
  out = stem.apply(params, video)
  shuffled = stem.apply(params, video[:, ::-1])
  np.testing.assert_allclose(out[:, ::-1], shuffled, rtol=1e-6, atol=1e-6)


def test_space_only_with_the_stem_stays_order_blind():
  model = SpaceTimeTransformer(num_classes=4, attention='space_only', patch_size=8, hidden_size=16,
                               num_layers=1, num_heads=2, mlp_dim=32, stem='conv', pooling='mean')
  video = jax.random.uniform(jax.random.key(2), (2, 4, 16, 16, 3))
  params = model.init(jax.random.key(0), video)
  assert 'stem' in params['params'] and 'patch_embedding' not in params['params']
  np.testing.assert_allclose(model.apply(params, video), model.apply(params, video[:, ::-1]),
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('kwargs, message', [
    (dict(patch_size=6), 'power of two'),
    (dict(patch_size=8, tubelet_size=2), 'tubelet_size=1'),
    (dict(patch_size=8, stem='convs'), "stem must be 'patch' or 'conv'"),
])
def test_one_line_errors(kwargs, message):
  kwargs = {'stem': 'conv', **kwargs}
  model = SpaceTimeTransformer(num_classes=4, attention='divided', hidden_size=16, num_layers=1,
                               num_heads=2, mlp_dim=32, **kwargs)
  with pytest.raises(ValueError, match=message):
    model.init(jax.random.key(0), jnp.zeros((1, 4, 24, 24, 3)))
