"""Prediction metrics equal hand computations; baselines order as they must."""
import math

import jax
import numpy as np
import pytest

from vidjax.metrics import frame_prediction as pm
from vidjax.data import moving_mnist as mm


def _frames(values):
  """A [1, 1, 1, W, 1] clip from a list of W pixel values."""
  return np.asarray(values, np.float32).reshape(1, 1, 1, -1, 1)


def test_bce_with_logits_by_hand():
  # x = 0, z = 0.5: log(2) = 0.693147;  x = 2, z = 1: log(1 + e^-2) = 0.126928.
  got = pm.bce_with_logits(_frames([0.0, 2.0]), _frames([0.5, 1.0]))
  assert got.shape == (1, 1)
  np.testing.assert_allclose(got, [[0.693147 + 0.126928]], atol=1e-5)
  # Large logits stay finite (stable form): x = -100, z = 1 costs 100.
  np.testing.assert_allclose(
      pm.bce_with_logits(_frames([-100.0]), _frames([1.0])), [[100.0]], rtol=1e-6)


def test_bce_with_probs_clips_hard_predictions():
  # p = 0 is clipped to 1e-4 and z = 1: -ln(1e-4) = 9.210340;
  # p = 0.75, z = 0.2: -(0.2 ln 0.75 + 0.8 ln 0.25) = 0.057536 + 1.109035.
  got = pm.bce_with_probs(_frames([0.0, 0.75]), _frames([1.0, 0.2]))
  np.testing.assert_allclose(got, [[9.210340 + 1.166572]], atol=1e-4)


def test_bce_from_logits_and_probs_agree_away_from_the_clip():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 3, 4, 4, 1)).astype(np.float32)
  targets = rng.uniform(size=logits.shape).astype(np.float32)
  np.testing.assert_allclose(
      pm.bce_with_logits(logits, targets),
      pm.bce_with_probs(jax.nn.sigmoid(logits), targets), rtol=1e-4)


def test_mse_by_hand():
  # errors 0.5, 0, 1, 0 -> 0.25 + 0 + 1 + 0 = 1.25 (a sum over the frame).
  got = pm.mse_per_frame(_frames([0.5, 1.0, 0.0, 0.25]),
                         _frames([0.0, 1.0, 1.0, 0.25]))
  np.testing.assert_allclose(got, [[1.25]])


def _ssim_loop(x, y, size=11, sigma=1.5, k1=0.01, k2=0.03):
  """Wang et al.'s definition, one window at a time, in float64."""
  ax = np.arange(size) - (size - 1) / 2
  w = np.exp(-(ax[:, None]**2 + ax[None, :]**2) / (2 * sigma**2))
  w /= w.sum()
  c1, c2 = k1**2, k2**2
  vals = []
  for i in range(x.shape[0] - size + 1):
    for j in range(x.shape[1] - size + 1):
      a, b = x[i:i + size, j:j + size], y[i:i + size, j:j + size]
      ma, mb = (w * a).sum(), (w * b).sum()
      va, vb = (w * (a - ma)**2).sum(), (w * (b - mb)**2).sum()
      cov = (w * (a - ma) * (b - mb)).sum()
      vals.append((2 * ma * mb + c1) * (2 * cov + c2)
                  / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
  return np.mean(vals)


def test_ssim_identical_is_one_and_matches_reference_loop():
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(2, 3, 16, 15, 1)).astype(np.float32)
  y = np.clip(x + 0.2 * rng.normal(size=x.shape), 0, 1).astype(np.float32)
  np.testing.assert_allclose(pm.ssim_per_frame(x, x), np.ones((2, 3)), atol=1e-5)
  got = np.asarray(pm.ssim_per_frame(x, y))  # [B, T]
  want = np.array([[_ssim_loop(x[b, t, ..., 0].astype(np.float64),
                               y[b, t, ..., 0].astype(np.float64))
                    for t in range(3)] for b in range(2)])
  np.testing.assert_allclose(got, want, atol=2e-5)
  assert 0.2 < want.mean() < 0.95  # a real test, not a trivial 1 or 0


def test_ssim_of_flat_images_by_hand():
  # Flat 0.5 vs 0.25: no variance, SSIM = (2ab + C1) / (a^2 + b^2 + C1)
  # = (0.25 + 1e-4) / (0.3125 + 1e-4) = 0.800064.
  a = np.full((1, 1, 12, 12, 1), 0.5, np.float32)
  np.testing.assert_allclose(pm.ssim_per_frame(a, a * 0.5), [[0.800064]], atol=1e-5)


def test_summarize_units():
  per_frame = {'bce': np.array([[1.0, 2.0], [3.0, 6.0]]),
               'mse': np.array([[1.0, 3.0], [5.0, 7.0]]),
               'ssim': np.array([[0.5, 0.7], [0.9, 0.3]])}
  s = pm.summarize(per_frame)
  assert s['bce_per_sequence'] == 6.0  # (1 + 2 + 3 + 6) / 2 sequences
  assert s['bce_per_step'] == [2.0, 4.0]
  assert s['mse_per_frame'] == 4.0 and s['mse_per_step'] == [3.0, 5.0]
  assert math.isclose(s['ssim'], 0.6) and s['num_sequences'] == 2


def test_per_frame_metrics_is_jittable_and_needs_one_prediction():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(2, 2, 16, 16, 1)).astype(np.float32)
  targets = rng.uniform(size=logits.shape).astype(np.float32)
  eager = pm.per_frame_metrics(targets, logits=logits)
  jitted = jax.jit(lambda t, l: pm.per_frame_metrics(t, logits=l))(targets, logits)
  for k in ('bce', 'mse', 'ssim'):
    assert eager[k].shape == (2, 2)
    np.testing.assert_allclose(eager[k], jitted[k], rtol=1e-5)
  with pytest.raises(ValueError, match='exactly one'):
    pm.per_frame_metrics(targets)


def test_baselines_order_on_generated_data():
  train = pm.to_unit(mm.generate_sequences(64, seed=0)[..., None])
  mean = pm.mean_frame(train)  # [64, 64, 1]
  test = pm.to_unit(mm.generate_sequences(
      24, seed=0, digits=mm.load_digits('test'), stream=mm.STREAMS['test'])[..., None])
  observed, future = test[:, :10], test[:, 10:]
  base = {k: pm.summarize(v) for k, v in
          pm.baseline_metrics(observed, future, mean).items()}
  # A random frame: the last observed frame of another sequence.
  shuffled = pm.last_frame_prediction(np.roll(observed, 1, axis=0), 10)
  rand = pm.summarize(pm.per_frame_metrics(future, probs=shuffled))
  last = base['last_frame']
  assert last['mse_per_step'][0] < rand['mse_per_frame']
  assert last['mse_per_frame'] < rand['mse_per_frame']
  assert last['ssim'] > rand['ssim']
  # The last frame goes stale: t+1 is its best step, t+10 is worse.
  assert last['mse_per_step'][0] < last['mse_per_step'][-1]
  assert last['ssim_per_step'][0] > last['ssim_per_step'][-1]
  # The blurry mean frame wins on BCE and MSE, loses on SSIM (structure).
  mean_b = base['mean_frame']
  assert mean_b['bce_per_sequence'] < last['bce_per_sequence']
  assert mean_b['mse_per_frame'] < last['mse_per_frame']
  assert mean_b['ssim'] < last['ssim']
  assert len(mean_b['bce_per_step']) == 10
