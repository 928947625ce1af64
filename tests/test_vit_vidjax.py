"""A vidjax image transformer initialises TimeSformer through the ViT converter (vit_vidjax.py)."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidjax import config as config_lib
from vidjax.models.space_time_attention import SpaceTimeTransformer
from vidjax.pretrained import init_from, mapping

SMALL = ['model.space_time_attention.hidden_size=16', 'model.space_time_attention.num_heads=2',
         'model.space_time_attention.mlp_dim=32', 'model.space_time_attention.num_layers=2',
         'data.height=16', 'data.width=16', 'data.num_frames=3',
         'model.space_time_attention.stem=patch']  # The image model's patch embedding.


def _image_model_folder(tmp_path, num_classes=12):
  """A randomly initialised space-only model, saved as a converted folder would be."""
  image_model = SpaceTimeTransformer(num_classes=num_classes, attention='space_only', patch_size=8,
                                     hidden_size=16, num_layers=2, num_heads=2, mlp_dim=32)
  params = jax.jit(image_model.init)(jax.random.key(3), jnp.zeros((1, 1, 16, 16, 3)))
  # Non-trivial values everywhere, so a dropped parameter would show.
  params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.key(p.size), p.shape),
                        params)
  np.savez(tmp_path / 'params.npz', **init_from.flatten(jax.device_get(params)))
  (tmp_path / 'conversion.json').write_text(json.dumps({}))
  return image_model, params


@pytest.mark.parametrize('pattern', ['divided'])  # The other patterns: test_vit_import.py.
def test_an_image_model_becomes_a_video_model_that_sees_still_clips_alike(tmp_path, pattern):
  image_model, image_params = _image_model_folder(tmp_path)
  config = config_lib.load(f'configs/space_time_attention.py:{pattern}',
                           [*SMALL, f'init.checkpoint={tmp_path}',
                            'model.space_time_attention.pooling=cls'])  # As the image model.
  video_model = SpaceTimeTransformer(num_classes=12, **config.model.space_time_attention)
  fresh = jax.device_get(jax.jit(video_model.init)(jax.random.key(0), jnp.zeros((1, 3, 16, 16, 3))))
  params, entries, _ = init_from.initial_params(config, fresh)
  counts = mapping.counts(entries)
  assert counts['inflated'] > 0 and counts['ignored'] == 0, mapping.format_table(entries)
  frame = jax.random.uniform(jax.random.key(1), (2, 1, 16, 16, 3))
  with jax.default_matmul_precision('highest'):
    expected = jax.jit(image_model.apply)(image_params, frame)
    got = jax.jit(video_model.apply)(params, jnp.repeat(frame, 3, axis=1))
  np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_new_class_count_needs_reinit_head(tmp_path):
  _image_model_folder(tmp_path, num_classes=10)
  config = config_lib.load('configs/space_time_attention.py:divided',
                           [*SMALL, f'init.checkpoint={tmp_path}'])
  video_model = SpaceTimeTransformer(num_classes=12, **config.model.space_time_attention)
  fresh = jax.device_get(jax.jit(video_model.init)(jax.random.key(0), jnp.zeros((1, 3, 16, 16, 3))))
  with pytest.raises(Exception, match='set --config.init.reinit_head=true'):
    init_from.initial_params(config, fresh)
