"""Linear probing and layer-wise learning-rate decay (vidjax/pretrained/fine_tune.py)."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from vidjax import steps
from vidjax.errors import UserError
from vidjax.models.space_time_attention import SpaceTimeTransformer
from vidjax.pretrained import fine_tune


def _vit_params():
  model = SpaceTimeTransformer(num_classes=3, attention='joint', patch_size=8, hidden_size=16,
                               num_layers=3, num_heads=2, mlp_dim=32)
  return jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 2, 16, 16, 3)))


def _optim(**changes):
  return ml_collections.ConfigDict({**dict(
      name='adamw', learning_rate=0.1, warmup_steps=0, schedule='constant', weight_decay=0.5,
      momentum=0.9, grad_clip_norm=1.0, layer_decay=1.0), **changes})


def _one_update(tx, params, grad_value=1.0):
  grads = jax.tree.map(lambda p: jnp.full_like(p, grad_value), params)
  updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)  # One dispatch, not hundreds.
  return jax.tree.map(lambda u: np.asarray(u), updates)


def test_layer_index_of_every_part_of_a_transformer():
  assert fine_tune.layer_of('patch_embedding/kernel', 3) == 0
  assert fine_tune.layer_of('space_embedding', 3) == 0
  assert fine_tune.layer_of('cls', 3) == 0
  assert fine_tune.layer_of('encoder/block_0/attention/qkv/kernel', 3) == 1
  assert fine_tune.layer_of('encoder/block_2/mlp/fc1/bias', 3) == 3
  assert fine_tune.layer_of('encoder/norm/scale', 3) == 4
  assert fine_tune.layer_of('head/kernel', 3) == 4


def test_layer_decay_scales_each_update_by_its_depth():
  params = _vit_params()
  plain = _one_update(steps.make_optimizer(_optim(), 10)[0], params)
  decayed = _one_update(steps.make_optimizer(_optim(layer_decay=0.5), 10)[0], params)
  flat_plain, flat_decayed = fine_tune.flatten_names(plain), fine_tune.flatten_names(decayed)
  expected = {'patch_embedding/kernel': 0.5 ** 4, 'encoder/block_0/attention/qkv/kernel': 0.5 ** 3,
              'encoder/block_2/mlp/fc2/bias': 0.5, 'head/kernel': 1.0, 'encoder/norm/scale': 1.0}
  for name, factor in expected.items():
    assert np.abs(flat_plain[name]).max() > 0
    np.testing.assert_allclose(flat_decayed[name], flat_plain[name] * factor, rtol=1e-6)


def test_linear_probe_moves_only_the_head_and_decays_nothing_else():
  params = _vit_params()
  tx, _ = steps.make_optimizer(_optim(), 10, freeze='backbone')
  updates = fine_tune.flatten_names(_one_update(tx, params, grad_value=0.0))
  for name, update in updates.items():
    if name.startswith('head/'):
      if name.endswith('kernel'):  # Weight decay alone moves the head's kernel.
        assert np.abs(update).max() > 0
    else:
      assert not np.any(update), name  # Not even weight decay.
  # The clip measures the head's gradient only: a huge backbone gradient leaves the head's step.
  grads = jax.tree_util.tree_map_with_path(
      lambda p, x: jnp.full_like(x, 1.0 if fine_tune.is_head(fine_tune.path_name(p)) else 1e6),
      params)
  update = jax.jit(tx.update)
  probe, _ = update(grads, tx.init(params), params)
  ones = jax.tree.map(jnp.ones_like, params)
  head_only, _ = update(ones, tx.init(params), params)
  np.testing.assert_allclose(np.asarray(probe['params']['head']['kernel']),
                             np.asarray(head_only['params']['head']['kernel']), rtol=1e-6)


def test_bad_settings_are_one_line():
  with pytest.raises(UserError, match='layer_decay must be in'):
    steps.make_optimizer(_optim(layer_decay=0.0), 10)
  with pytest.raises(UserError, match='init.freeze must be one of'):
    steps.make_optimizer(_optim(), 10, freeze='encoder')
  tx, _ = steps.make_optimizer(_optim(layer_decay=0.9), 10)
  with pytest.raises(UserError, match='needs a model with transformer blocks'):
    _one_update(tx, {'params': {'cnn': {'kernel': jnp.ones((2, 2))}}})
  no_head = {'params': {'cnn': {'kernel': jnp.ones((2, 2))}}}
  tx, _ = steps.make_optimizer(_optim(), 10, freeze='backbone')
  with pytest.raises(UserError, match='no parameter named head'):
    tx.init(no_head)
  assert optax  # The optimizer library the wrappers compose with.


def test_a_model_with_a_frame_network_freezes_that_network_only():
  params = {'params': {'cnn': {'conv_0': {'kernel': jnp.ones((3, 3, 3, 4))}},
                       'lstm_0': {'cell': {'hi': {'kernel': jnp.ones((4, 4))}}},
                       'head': {'kernel': jnp.ones((4, 2))}}}
  labels = fine_tune.flatten_names(fine_tune.trainable_labels(params, 'backbone'))
  assert labels == {'cnn/conv_0/kernel': 'frozen', 'lstm_0/cell/hi/kernel': 'train',
                    'head/kernel': 'train'}
