"""Denoisers: the shared interface, FastDVDnet's weight sharing and single-frame twin, the VAE."""
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vidjax.models.cost import count_params
from vidjax.models.denoisers import (DenBlock, DenoisingVAE, FastDVDNet, GroupedConv, elbo_loss,
                                     pixel_shuffle)

TINY = dict(features=(8, 16, 16), interm=4)


def _inputs(b=2, t=5, size=16, sigma=30.0, seed=0):
  rng = np.random.default_rng(seed)
  clean = rng.uniform(size=(b, t, size, size, 3)).astype(np.float32)
  noisy = clean + rng.normal(size=clean.shape).astype(np.float32) * sigma / 255
  noise_map = np.full((b, size, size, 1), sigma / 255, np.float32)
  return jnp.asarray(clean), jnp.asarray(noisy), jnp.asarray(noise_map)


def _key(seed):
  """An 'rbg' key: XLA:CPU compiles its random bits several times faster than threefry's."""
  return jax.random.key(seed, impl='rbg')


def _init(model, noisy, noise_map):
  return jax.jit(model.init)({'params': _key(0), 'dropout': _key(1)}, noisy, noise_map)


def _apply(model):
  return jax.jit(model.apply, static_argnames='train')


@pytest.fixture(scope='module')
def fastdvdnet():
  """A tiny FastDVDNet, its params and inputs, initialised once per file."""
  model = FastDVDNet(**TINY)
  _, noisy, noise_map = _inputs()
  return model, _init(model, noisy, noise_map), noisy, noise_map


def _unzeroed(params, scale=0.1):
  """`params` with the zero-initialised last convs (`out_1`) made random, as training makes them."""
  rng = np.random.default_rng(0)
  return jax.tree_util.tree_map_with_path(
      lambda path, x: (scale * rng.normal(size=x.shape)).astype(x.dtype)
      if 'out_1' in jax.tree_util.keystr(path) else x, params)


def test_fastdvdnet_shapes_and_float32(fastdvdnet):
  model, params, noisy, noise_map = fastdvdnet
  out = _apply(model)(params, noisy, noise_map, train=True)
  assert out['denoised'].shape == (2, 16, 16, 3) and out['denoised'].dtype == jnp.float32
  assert out['kl'].shape == (2,) and out['kl'].dtype == jnp.float32
  assert np.all(out['kl'] == 0) and np.all(np.isfinite(out['denoised']))
  # Each block's last conv starts at zero: the untrained model returns the noisy centre frame.
  np.testing.assert_array_equal(out['denoised'], noisy[:, 2])


def test_stage1_is_one_shared_subtree(fastdvdnet):
  _, params, noisy, noise_map = fastdvdnet
  assert set(params['params']) == {'stage1', 'stage2'}
  block = jax.eval_shape(DenBlock(**TINY).init, jax.random.key(0), noisy[:, :3], noise_map)
  shapes = lambda tree: jax.tree.map(lambda x: x.shape, tree)  # noqa: E731
  assert shapes(params['params']['stage1']) == shapes(block['params'])
  assert count_params(params) == 2 * count_params(block)


def test_paper_size_has_fastdvdnets_parameter_count():
  _, noisy, noise_map = _inputs(b=1)
  params = jax.eval_shape(FastDVDNet(norm='none').init, jax.random.key(0), noisy, noise_map)
  assert count_params(params) == 2_477_642  # The original's convs; its BatchNorms add 4,456.


def test_multi_frame_reads_outer_frames_single_frame_does_not(fastdvdnet):
  model, params, noisy, noise_map = fastdvdnet
  params = _unzeroed(params)
  single = model.clone(single_frame=True)
  outer = noisy.at[:, 0].set(1.0 - noisy[:, 0]).at[:, 4].set(0.5)
  multi_apply, single_apply = _apply(model), _apply(single)
  base = multi_apply(params, noisy, noise_map)['denoised']
  assert np.abs(multi_apply(params, outer, noise_map)['denoised'] - base).max() > 1e-4
  inner = outer.at[:, 1].set(0.0).at[:, 3].set(1.0)
  np.testing.assert_array_equal(single_apply(params, inner, noise_map)['denoised'],
                                single_apply(params, noisy, noise_map)['denoised'])
  # The definition: the same network with the centre frame in every slot.
  centre = jnp.repeat(noisy[:, 2:3], 5, axis=1)
  np.testing.assert_allclose(single_apply(params, noisy, noise_map)['denoised'],
                             multi_apply(params, centre, noise_map)['denoised'], atol=1e-4)


def test_single_frame_twin_has_the_same_parameter_tree(fastdvdnet):
  model, params, noisy, noise_map = fastdvdnet
  twin = jax.eval_shape(model.clone(single_frame=True).init, jax.random.key(0), noisy, noise_map)
  assert (jax.tree.structure(twin) == jax.tree.structure(params) and
          jax.tree.map(lambda x: x.shape, twin) == jax.tree.map(lambda x: x.shape, params))


def test_remat_and_no_norm_variants_run(fastdvdnet):
  model, params, noisy, noise_map = fastdvdnet
  params = _unzeroed(params)
  remat = _apply(model.clone(remat=True))(params, noisy, noise_map)['denoised']
  np.testing.assert_allclose(remat, _apply(model)(params, noisy, noise_map)['denoised'], atol=1e-5)
  plain = model.clone(norm='none')
  out = _apply(plain)(_init(plain, noisy, noise_map), noisy, noise_map)['denoised']
  assert out.shape == (2, 16, 16, 3) and np.all(np.isfinite(out))


def test_grouped_conv_matches_flax_grouped_conv():
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 12))
  ours = GroupedConv(18, groups=3)
  params = ours.init(jax.random.key(1), x)
  ref = nn.Conv(18, (3, 3), feature_group_count=3)
  assert jax.tree.map(lambda a: a.shape, ref.init(jax.random.key(1), x)) == \
      jax.tree.map(lambda a: a.shape, params)
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), atol=1e-5)


def test_pixel_shuffle_layout():
  x = jnp.arange(2 * 3 * 4 * 8, dtype=jnp.float32).reshape(2, 3, 4, 8)  # C = 2 * 2 * 2
  y = pixel_shuffle(x)
  assert y.shape == (2, 6, 8, 2)
  for a in range(2):
    for b in range(2):
      np.testing.assert_array_equal(y[:, a::2, b::2, :], x[..., (2 * a + b) * 2:(2 * a + b + 1) * 2])


def test_bad_shapes_are_errors(fastdvdnet):
  model, params, noisy, noise_map = fastdvdnet
  with pytest.raises(ValueError, match='divisible by 4'):
    model.apply(params, noisy[:, :, :14, :14], noise_map[:, :14, :14])
  with pytest.raises(ValueError, match=r'\[B, 5, H, W, 3\]'):
    model.apply(params, noisy[:, :3], noise_map)


def test_fastdvdnet_overfits_one_noisy_patch(fastdvdnet):
  model, params, _, _ = fastdvdnet
  clean, noisy, noise_map = _inputs(b=1)
  opt = optax.adam(3e-3)

  def loss(p):
    return jnp.mean((model.apply(p, noisy, noise_map)['denoised'] - clean[:, 2]) ** 2)

  @jax.jit
  def fit(params):
    def step(carry, _):
      p, s = carry
      grads = jax.grad(loss)(p)
      updates, s = opt.update(grads, s, p)
      return (optax.apply_updates(p, updates), s), None
    return jax.lax.scan(step, (params, opt.init(params)), None, length=100)[0][0]

  before = loss(params)
  # Compiled with XLA's optimisations, unlike the rest of the tests (conftest.py): without them
  # the 100 steps run 30 times slower and cost more than the compile.
  jax.config.update('jax_disable_most_optimizations', False)
  try:
    fitted = fit(params)
  finally:
    jax.config.update('jax_disable_most_optimizations',
                      os.environ.get('JAX_DISABLE_MOST_OPTIMIZATIONS') == '1')
  after = loss(fitted)
  assert after < before / 10, (before, after)


@pytest.fixture(scope='module')
def vae():
  model = DenoisingVAE(features=(8, 16, 16), latent_features=4)
  _, noisy, noise_map = _inputs()
  return model, _init(model, noisy, noise_map), noisy, noise_map


def test_vae_shapes_and_positive_kl(vae):
  model, params, noisy, noise_map = vae
  out = _apply(model)(params, noisy, noise_map, train=True, rngs={'dropout': _key(0)})
  assert out['denoised'].shape == (2, 16, 16, 3) and out['denoised'].dtype == jnp.float32
  assert out['kl'].shape == (2,) and out['kl'].dtype == jnp.float32
  assert np.all(out['kl'] > 0) and np.all(np.isfinite(out['kl']))


def test_vae_samples_in_training_and_is_deterministic_at_eval(vae):
  model, params, noisy, noise_map = vae
  apply = _apply(model)
  train = [apply(params, noisy, noise_map, train=True, rngs={'dropout': _key(i)})
           for i in (0, 1)]
  assert np.abs(train[0]['denoised'] - train[1]['denoised']).max() > 1e-6
  np.testing.assert_array_equal(train[0]['kl'], train[1]['kl'])  # KL is of q, not of the sample.
  evals = [apply(params, noisy, noise_map, train=False, rngs={'dropout': _key(i)})
           for i in (0, 1)]
  np.testing.assert_array_equal(evals[0]['denoised'], evals[1]['denoised'])
  np.testing.assert_array_equal(apply(params, noisy, noise_map)['denoised'], evals[0]['denoised'])


def test_elbo_loss_by_hand():
  denoised = jnp.zeros((2, 2, 2, 3))
  clean = jnp.full((2, 2, 2, 3), 0.5)
  kl = jnp.array([12.0, 36.0])
  # MSE 0.25; mean KL 24 over H * W * 3 = 12 pixels, weighted by 0.5: 1.0.
  np.testing.assert_allclose(elbo_loss(denoised, clean, kl, beta=0.5), 1.25, rtol=1e-6)
  np.testing.assert_allclose(elbo_loss(denoised, clean, kl, beta=0.0), 0.25, rtol=1e-6)
