"""Denoising PSNR / SSIM equal skimage's; the test noise is fixed and has its level."""
import jax
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from vidjax.metrics import restoration as rm

SHAPES = [(32, 32, 3), (40, 57, 3), (64, 23, 1), (11, 11, 3)]


def _skimage_psnr(clean, restored):
  return peak_signal_noise_ratio(clean.astype(np.float64), restored.astype(np.float64),
                                 data_range=1.0)


def _skimage_ssim(clean, restored):
  # Our settings: Gaussian 11x11 (sigma 1.5), population covariance, channel mean.
  return structural_similarity(
      clean.astype(np.float64), restored.astype(np.float64), data_range=1.0,
      channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


def _pairs(shape, rng):
  """(clean, restored) pairs: random, noisy, structured (ramps, a box) and shifted."""
  h, w, c = shape
  clean = rng.random(shape, dtype=np.float32)
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  ramp = np.repeat(((xx / w + yy / h) / 2)[..., None], c, axis=-1)
  box = ramp.copy()
  box[h // 4: h // 2, w // 4: w // 2] = 0.9
  return [
      (clean, rng.random(shape, dtype=np.float32)),
      (clean, np.clip(clean + rng.normal(0, 0.1, shape), 0, 1).astype(np.float32)),
      (ramp, box),
      (box, np.roll(box, 2, axis=1)),
      (ramp, ramp + rng.normal(0, 0.2, shape).astype(np.float32)),  # unclipped
  ]


@pytest.mark.parametrize('shape', SHAPES)
def test_psnr_and_ssim_match_skimage(shape):
  rng = np.random.default_rng(shape[1])
  for clean, restored in _pairs(shape, rng):
    np.testing.assert_allclose(rm.psnr(clean, restored), _skimage_psnr(clean, restored),
                               atol=1e-4)
    np.testing.assert_allclose(rm.ssim(clean, restored), _skimage_ssim(clean, restored),
                               atol=1e-5)


def test_batched_frames_are_scored_one_by_one():
  rng = np.random.default_rng(0)
  pairs = _pairs((24, 36, 3), rng)
  clean = np.stack([c for c, _ in pairs]).reshape(1, 5, 24, 36, 3)  # [B, T, H, W, C]
  restored = np.stack([r for _, r in pairs]).reshape(1, 5, 24, 36, 3)
  p, s = rm.psnr(clean, restored), rm.ssim(clean, restored)
  assert p.shape == s.shape == (1, 5)
  np.testing.assert_allclose(p[0], [_skimage_psnr(c, r) for c, r in pairs], atol=1e-4)
  np.testing.assert_allclose(s[0], [_skimage_ssim(c, r) for c, r in pairs], atol=1e-5)


def test_psnr_by_hand_and_capped():
  clean = np.full((8, 8, 3), 0.5, np.float32)
  np.testing.assert_allclose(rm.psnr(clean, clean + 0.1), 20.0, atol=1e-4)  # 10 log10(1/0.01)
  np.testing.assert_allclose(rm.psnr(clean, clean - 0.01), 40.0, atol=1e-3)
  # On 0-255 frames with data_range 255 the same error is the same PSNR.
  np.testing.assert_allclose(rm.psnr(255 * clean, 255 * clean + 25.5, 255.0), 20.0, atol=1e-3)
  assert float(rm.psnr(clean, clean)) == rm.PSNR_CAP_DB  # finite, not inf


def test_ssim_of_identical_frames_is_one():
  frames = np.random.default_rng(1).random((2, 3, 16, 20, 3), dtype=np.float32)
  np.testing.assert_allclose(rm.ssim(frames, frames), np.ones((2, 3)), atol=1e-6)


def test_metrics_jit():
  rng = np.random.default_rng(2)
  clean = rng.random((2, 4, 24, 32, 3), dtype=np.float32)
  restored = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1).astype(np.float32)
  np.testing.assert_allclose(jax.jit(rm.psnr)(clean, restored), rm.psnr(clean, restored),
                             rtol=1e-6)
  np.testing.assert_allclose(jax.jit(rm.ssim)(clean, restored), rm.ssim(clean, restored),
                             atol=1e-6)


def test_sequence_means_average_sequences_first():
  # 'a' has frames 1, 2, 3 (mean 2); 'b' has one frame, 10. Frame mean would be 4.
  per_seq, overall = rm.sequence_means([1.0, 10.0, 2.0, 3.0], ['a', 'b', 'a', 'a'])
  assert per_seq == {'a': 2.0, 'b': 10.0}
  assert list(per_seq) == ['a', 'b']
  assert overall == 6.0
  per_seq, _ = rm.sequence_means(np.array([5.0, 7.0]), np.array([3, 1]))
  assert list(per_seq.items()) == [(3, 5.0), (1, 7.0)]  # order of first appearance
  with pytest.raises(ValueError):
    rm.sequence_means([1.0, 2.0], [0])


def test_gaussian_noise_is_seeded_unclipped_and_at_its_level():
  clean = np.zeros((6, 32, 32, 3), np.float32)
  a = rm.add_gaussian_noise(clean, 30, np.random.default_rng(0))
  b = rm.add_gaussian_noise(clean, 30, np.random.default_rng(0))
  assert isinstance(a, np.ndarray) and a.dtype == np.float32
  np.testing.assert_array_equal(a, b)
  assert a.min() < 0  # not clipped to [0, 1]
  np.testing.assert_allclose(a.std(), 30 / 255, rtol=0.02)
  key = jax.random.key(0)
  j = rm.add_gaussian_noise(clean, 30, key)
  np.testing.assert_array_equal(j, rm.add_gaussian_noise(clean, 30, key))
  np.testing.assert_allclose(float(j.std()), 30 / 255, rtol=0.02)


def test_poisson_gaussian_noise_has_variance_a_x_plus_b():
  a, b = 0.01, (10 / 255)**2
  for x in (0.1, 0.8):
    clean = np.full((8, 64, 64, 3), x, np.float32)
    for key in (np.random.default_rng(1), jax.random.key(1)):
      noisy = np.asarray(rm.add_poisson_gaussian_noise(clean, a, b, key))
      np.testing.assert_allclose(noisy.mean(), x, atol=2e-3)
      np.testing.assert_allclose(noisy.var(), a * x + b, rtol=0.03)


def test_eval_noise_is_a_pure_function_of_seed_sequence_and_sigma():
  shape = (4, 16, 16, 3)
  n = rm.eval_noise(shape, 30, seed=0, sequence_index=2)
  assert n.shape == shape and n.dtype == np.float32
  np.testing.assert_array_equal(n, rm.eval_noise(shape, 30, seed=0, sequence_index=2))
  np.testing.assert_allclose(n.std(), 30 / 255, rtol=0.05)
  for other in (rm.eval_noise(shape, 30, 0, 3), rm.eval_noise(shape, 50, 0, 2),
                rm.eval_noise(shape, 30, 1, 2)):
    assert abs(np.corrcoef(n.ravel(), other.ravel())[0, 1]) < 0.05
  # The first frames of a longer sequence get the same noise.
  np.testing.assert_array_equal(rm.eval_noise((6, 16, 16, 3), 30, 0, 2)[:4], n)
