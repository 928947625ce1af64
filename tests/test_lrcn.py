"""LRCN and the single-frame baseline: the properties that define them."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidjax.models import build_model
from vidjax.models.lrcn import LRCN
from vidjax.models.single_frame import SingleFrame
from vidjax.errors import UserError

SMALL = dict(cnn_features=(8, 16), cnn_embed_dim=32)


def _video(seed=0, t=6):
  return jax.random.normal(jax.random.key(seed), (2, t, 16, 16, 3))


def test_lrcn_last_step_is_causal():
  """With head='last', logits over frames[:t] equal the t-step prefix's."""
  model = LRCN(num_classes=5, lstm_hidden_size=16, **SMALL)
  video = _video()
  params = model.init(jax.random.key(1), video)
  prefix = model.apply(params, video[:, :4])
  changed_future = video.at[:, 4:].set(jax.random.normal(jax.random.key(9), video[:, 4:].shape))
  # The same 4-frame prefix gives the same logits whatever follows...
  np.testing.assert_allclose(model.apply(params, changed_future[:, :4]), prefix, rtol=1e-6)
  # ...and the full clip's logits do depend on the later frames.
  assert not np.allclose(model.apply(params, video), model.apply(params, changed_future))


def test_lrcn_hidden_states_are_causal():
  """The LSTM outputs at step t ignore frames after t (checked by gradient)."""
  model = LRCN(num_classes=5, lstm_hidden_size=16, head='last', **SMALL)
  video = _video()
  params = model.init(jax.random.key(1), video)
  grad = jax.grad(lambda v: model.apply(params, v[:, :3]).sum())(video)
  assert np.all(np.asarray(grad[:, 3:]) == 0) and np.any(np.asarray(grad[:, :3]) != 0)


def test_lrcn_depends_on_frame_order():
  model = LRCN(num_classes=5, lstm_hidden_size=16, **SMALL)
  video = _video()
  params = model.init(jax.random.key(1), video)
  assert not np.allclose(model.apply(params, video), model.apply(params, video[:, ::-1]), atol=1e-5)


@pytest.mark.parametrize('options', [dict(bidirectional=True), dict(head='mean', lstm_layers=2)])
def test_lrcn_variants_run(options):
  model = LRCN(num_classes=5, lstm_hidden_size=16, **SMALL, **options)
  video = _video()
  logits = model.apply(model.init(jax.random.key(1), video), video)
  assert logits.shape == (2, 5) and logits.dtype == jnp.float32


def test_single_frame_is_blind_to_frame_order():
  model = SingleFrame(num_classes=5, **SMALL)
  video = _video()
  params = model.init(jax.random.key(1), video)
  shuffled = video[:, jnp.array([3, 0, 5, 1, 4, 2])]
  np.testing.assert_allclose(model.apply(params, shuffled), model.apply(params, video), rtol=1e-5,
                             atol=1e-6)


@pytest.mark.parametrize('cls', [LRCN, SingleFrame])
def test_remat_gives_the_same_gradients(cls):
  video = _video()
  plain, remat = cls(num_classes=5, **SMALL), cls(num_classes=5, remat=True, **SMALL)
  params = plain.init(jax.random.key(1), video)
  grads = [jax.grad(lambda p: m.apply(p, video).sum())(params) for m in (plain, remat)]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), *grads)


@pytest.mark.parametrize('cls', [LRCN, SingleFrame])
def test_bfloat16_compute_is_close_to_float32(cls):
  video = _video()
  params = cls(num_classes=5, **SMALL).init(jax.random.key(1), video)
  f32 = cls(num_classes=5, **SMALL).apply(params, video)
  bf16 = cls(num_classes=5, dtype=jnp.bfloat16, **SMALL).apply(params, video)
  assert bf16.dtype == jnp.float32
  np.testing.assert_allclose(bf16, f32, atol=0.1)


def test_registry_rejects_unknown_names_and_options():
  import ml_collections
  config = ml_collections.ConfigDict({'name': 'lrcm', 'dtype': 'float32', 'remat': False})
  with pytest.raises(UserError, match="unknown model 'lrcm' \\(did you mean 'lrcn'\\?\\)"):
    build_model(config, 5)
  config = ml_collections.ConfigDict({'name': 'lrcn', 'dtype': 'float32', 'remat': False,
                                      'lrcn': {'hidden': 3}})
  with pytest.raises(UserError, match="model 'lrcn' has no option 'hidden'"):
    build_model(config, 5)


@pytest.mark.parametrize('cls', [LRCN, SingleFrame])
def test_frames_per_call_changes_speed_not_results(cls):
  """One CNN call per frame, per 2 or 3 frames, or on all of them: same parameters,
  same logits and gradients (the norms are per sample)."""
  video = _video()
  folded = cls(num_classes=5, frames_per_call=0, **SMALL)
  params = folded.init(jax.random.key(1), video)
  reference = jax.value_and_grad(lambda p: folded.apply(p, video).sum())(params)
  for per_call in (1, 2, 3):
    model = cls(num_classes=5, frames_per_call=per_call, **SMALL)
    assert jax.tree.structure(model.init(jax.random.key(1), video)) == jax.tree.structure(params)
    result = jax.value_and_grad(lambda p: model.apply(p, video).sum())(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 result, reference)


@pytest.mark.parametrize('per_call', [4, -1])
def test_frames_per_call_that_does_not_divide_the_clip_is_a_one_line_error(per_call):
  model = LRCN(num_classes=5, frames_per_call=per_call, **SMALL)
  with pytest.raises(UserError, match=f'frames_per_call={per_call} must be 0 .* divide the '
                                       "clip's 6 frames; set model.<name>.frames_per_call"):
    model.init(jax.random.key(1), _video())
