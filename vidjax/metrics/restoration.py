"""Video denoising metrics and noise: PSNR / SSIM per frame, the test-noise protocol.

Conventions, and what FastDVDnet (Tassano et al. 2020) and RVRT (Liang et al.
2022, KAIR's `utils_image`) do:
- Frames are floats in [0, 1], data range 1, layout [..., H, W, C]; metrics are
  computed per frame over all of its H, W, C, averaged over a sequence's frames,
  then over sequences (`sequence_means`). Both papers report that protocol.
- PSNR is skimage's `peak_signal_noise_ratio(clean, restored, data_range=1)` of
  each frame, on float frames as FastDVDnet's `batch_psnr` scores them. RVRT
  first rounds both frames to uint8; that moves PSNR by ~0.01 dB, so we do not.
  A perfect frame (MSE 0) scores PSNR_CAP_DB (100 dB), not inf, so means stay
  finite.
- SSIM is Wang et al. 2004 as RVRT computes it (and as skimage's
  `structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1, channel_axis=-1)` does): 11x11
  Gaussian window, sigma 1.5, K1 0.01, K2 0.03, population covariance, mean over
  the windows that lie wholly inside the frame (skimage filters the whole frame
  and crops 5 pixels per side, which is exactly those), then over channels.
  FastDVDnet reports PSNR only.
- The metrics do not clip. Clip a model's output to [0, 1] before scoring it
  (both papers clamp it); the noisy input is scored unclipped, as in FastDVDnet.
- Noise: additive white Gaussian noise of std sigma/255 on [0, 1] frames, not
  clipped, because both papers feed unclipped noisy frames (clipping would bias
  the noise and change its level near black and white). FastDVDnet draws fresh
  noise every run and RVRT reseeds with 0 for every sequence; `eval_noise`
  instead derives it from (seed, sequence index, sigma), so every run and every
  model sees the same noisy test frames, and no two sequences share noise.

Everything but `sequence_means` and `eval_noise` is jax.numpy (jit-able on
device inside an eval step, and also fine with numpy inputs).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vidjax.metrics.frame_prediction import ssim_per_frame

PSNR_CAP_DB = 100.0
EVAL_SIGMAS = (10, 20, 30, 40, 50)  # on the 0-255 scale, as FastDVDnet / RVRT


def psnr(clean, restored, data_range: float = 1.0):
  """PSNR in dB of each frame: [..., H, W, C] x2 -> [...], capped at PSNR_CAP_DB."""
  d = jnp.asarray(restored, jnp.float32) - jnp.asarray(clean, jnp.float32)
  mse = jnp.mean(jnp.square(d), axis=(-3, -2, -1))
  floor = data_range**2 * 10.0**(-PSNR_CAP_DB / 10.0)  # the MSE that scores the cap
  return 10.0 * jnp.log10(data_range**2 / jnp.maximum(mse, floor))


def ssim(clean, restored, data_range: float = 1.0):
  """SSIM of each frame (see the module docstring): [..., H, W, C] x2 -> [...]."""
  x = jnp.asarray(clean, jnp.float32)
  y = jnp.asarray(restored, jnp.float32)
  lead, frame = x.shape[:-3], x.shape[-3:]
  flat = lambda a: a.reshape((-1, 1) + frame)  # [N, 1, H, W, C]
  return ssim_per_frame(flat(y), flat(x), max_val=data_range).reshape(lead)


def sequence_means(per_frame, sequence_ids):
  """({sequence id: mean over its frames}, mean of those means), on the host.

  per_frame [N] and sequence_ids [N] (any hashable ids, frames in any order);
  sequences are listed in order of first appearance. Averaging per sequence
  first keeps long sequences from outweighing short ones (FastDVDnet, RVRT).
  """
  values = np.asarray(per_frame, np.float64).ravel()
  ids = np.asarray(sequence_ids).ravel()
  if values.shape != ids.shape:
    raise ValueError(f'{values.size} per-frame values but {ids.size} sequence ids')
  uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
  sums = np.bincount(inverse, weights=values, minlength=uniq.size)
  means = sums / np.bincount(inverse, minlength=uniq.size)
  order = np.argsort(first)
  per_sequence = {uniq[i].item(): float(means[i]) for i in order}
  return per_sequence, float(means.mean())


def _standard_normal(shape, key_or_rng):
  """N(0, 1) float32 noise from a np.random.Generator (numpy) or a jax key (jnp)."""
  if isinstance(key_or_rng, np.random.Generator):
    return key_or_rng.standard_normal(shape, dtype=np.float32)
  return jax.random.normal(key_or_rng, shape, jnp.float32)


def add_gaussian_noise(clean, sigma_255, key_or_rng):
  """clean + N(0, (sigma_255 / 255)^2), unclipped (module docstring says why).

  numpy in and out with a np.random.Generator, jnp with a jax key.
  """
  xp = np if isinstance(key_or_rng, np.random.Generator) else jnp
  clean = xp.asarray(clean, xp.float32)
  return clean + (sigma_255 / 255.0) * _standard_normal(clean.shape, key_or_rng)


def add_poisson_gaussian_noise(clean, a, b, key_or_rng):
  """Heteroscedastic noise of variance a * clean + b (Foi et al. 2008), unclipped.

  `a` is the Poisson (shot-noise) gain in [0, 1] units, 1 / (photons at
  intensity 1); `b` is the signal-independent (read-noise) variance, e.g.
  (sigma_255 / 255)^2. The Poisson part is drawn as its Gaussian approximation,
  clean + sqrt(a * clean + b) * N(0, 1), as Foi et al. model it; it is accurate
  once pixels see more than ~10 photons.
  """
  xp = np if isinstance(key_or_rng, np.random.Generator) else jnp
  clean = xp.asarray(clean, xp.float32)
  std = xp.sqrt(xp.maximum(a * clean + b, 0.0))
  return clean + std * _standard_normal(clean.shape, key_or_rng)


def eval_noise(shape, sigma_255, seed: int, sequence_index: int) -> np.ndarray:
  """The fixed test noise, float32 [shape] of std sigma_255 / 255, for one sequence.

  A pure function of (seed, sequence_index, sigma_255) and the shape: add it to
  the clean [T, H, W, C] frames. Noise is drawn in C order, so the first frames
  of a longer sequence get the same noise as a shorter one.
  """
  sigma_key = int(round(sigma_255 * 1000))  # 0.001 resolution, a non-negative int
  rng = np.random.default_rng([int(seed), int(sequence_index), sigma_key])
  return (sigma_255 / 255.0) * rng.standard_normal(shape, dtype=np.float32)
