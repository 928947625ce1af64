"""Metrics for future-frame prediction (Moving MNIST), and trivial baselines.

Why these three, in these units:
- Binary cross-entropy summed over the pixels of the 10 predicted frames and
  reported per sequence is Shi et al. 2015's Table 1 unit (targets are pixel
  intensities / 255 in [0, 1], so it is not zero for a perfect prediction).
- MSE per frame, with pixels in [0, 1] summed over the 64x64 frame and averaged
  over frames, is the PredRNN / OpenSTL unit (PAPERS.md).
- SSIM per frame is the usual Gaussian-window SSIM (Wang et al. 2004): 11x11
  window, sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1, 'valid' windows only
  (as in Wang's reference code and `tf.image.ssim`). PredRNN / OpenSTL compute
  SSIM with skimage's defaults (7x7 uniform window), so their values differ
  slightly from ours; compare orderings, not third decimals.

Everything is a pure jax.numpy function (jit-able, also accepts numpy) and works
in two stages: `per_frame_metrics` returns per-example values [B, T] that an
evaluator concatenates over batches (dropping padded rows), and `summarize`
reduces them to the reported numbers, including per-future-step breakdowns
(t+1 .. t+T). The baselines go through the very same two functions.

Layout: frames are [B, T, H, W, C] (C = 1 for Moving MNIST), floats in [0, 1].
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# Hard (0/1-ish) predictions such as the baselines' have infinite BCE wherever
# they are confidently wrong; probabilities are clipped to [EPS, 1 - EPS].
# Changing EPS changes the baselines' BCE, so it is always reported alongside.
BCE_PROB_EPS = 1e-4


def to_unit(frames_uint8):
  """uint8 [..] in 0..255 -> float32 [..] in [0, 1]."""
  return jnp.asarray(frames_uint8, jnp.float32) / 255.0


def bce_with_logits(logits, targets):
  """Per-frame BCE summed over pixels: [B, T, H, W, C] x2 -> [B, T].

  Uses the stable form max(x, 0) - x z + log(1 + exp(-|x|)).
  """
  x = jnp.asarray(logits, jnp.float32)
  z = jnp.asarray(targets, jnp.float32)
  per_pixel = jnp.maximum(x, 0) - x * z + jnp.log1p(jnp.exp(-jnp.abs(x)))
  return per_pixel.sum(axis=(2, 3, 4))


def bce_with_probs(probs, targets, eps: float = BCE_PROB_EPS):
  """Per-frame BCE of probabilities clipped to [eps, 1 - eps]: -> [B, T]."""
  p = jnp.clip(jnp.asarray(probs, jnp.float32), eps, 1.0 - eps)
  z = jnp.asarray(targets, jnp.float32)
  per_pixel = -(z * jnp.log(p) + (1.0 - z) * jnp.log1p(-p))
  return per_pixel.sum(axis=(2, 3, 4))


def mse_per_frame(pred, targets):
  """Squared error summed over a frame's pixels (values in [0, 1]): -> [B, T]."""
  d = jnp.asarray(pred, jnp.float32) - jnp.asarray(targets, jnp.float32)
  return jnp.square(d).sum(axis=(2, 3, 4))


def gaussian_kernel_1d(size: int = 11, sigma: float = 1.5) -> np.ndarray:
  """Normalised 1-D Gaussian [size]; the 2-D window is its outer product."""
  x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
  g = np.exp(-x**2 / (2.0 * sigma**2))
  return (g / g.sum()).astype(np.float32)


def _filter_valid(images, kernel):
  """Separable 'valid' filtering of [N, H, W, 1] with a 1-D kernel [k]."""
  k = kernel.shape[0]
  dn = ('NHWC', 'HWIO', 'NHWC')
  # HIGHEST: GPUs would otherwise use TF32 and lose SSIM's small differences.
  conv = lambda x, w: jax.lax.conv_general_dilated(
      x, w, (1, 1), 'VALID', dimension_numbers=dn,
      precision=jax.lax.Precision.HIGHEST)
  images = conv(images, kernel.reshape(k, 1, 1, 1))
  return conv(images, kernel.reshape(1, k, 1, 1))


def ssim_per_frame(pred, targets, *, max_val: float = 1.0,
                   filter_size: int = 11, sigma: float = 1.5,
                   k1: float = 0.01, k2: float = 0.03):
  """Mean SSIM over valid windows (and channels) of each frame: -> [B, T]."""
  x = jnp.asarray(pred, jnp.float32)
  y = jnp.asarray(targets, jnp.float32)
  b, t, h, w, c = x.shape
  if h < filter_size or w < filter_size:
    raise ValueError(f'frames {h}x{w} are smaller than the SSIM window {filter_size}')
  # [B, T, H, W, C] -> [B*T*C, H, W, 1]: one grey image per channel.
  to_n = lambda a: a.transpose(0, 1, 4, 2, 3).reshape(b * t * c, h, w, 1)
  x, y = to_n(x), to_n(y)
  kernel = jnp.asarray(gaussian_kernel_1d(filter_size, sigma))
  mu_x, mu_y = _filter_valid(x, kernel), _filter_valid(y, kernel)
  var_x = _filter_valid(x * x, kernel) - mu_x**2
  var_y = _filter_valid(y * y, kernel) - mu_y**2
  cov = _filter_valid(x * y, kernel) - mu_x * mu_y
  c1, c2 = (k1 * max_val)**2, (k2 * max_val)**2
  ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
      (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
  per_image = ssim_map.mean(axis=(1, 2, 3))  # [B*T*C]
  return per_image.reshape(b, t, c).mean(axis=-1)


def per_frame_metrics(targets, *, logits=None, probs=None,
                      eps: float = BCE_PROB_EPS) -> dict:
  """{'bce', 'mse', 'ssim'}: each [B, T], from exactly one of logits / probs.

  A model gives `logits` (BCE from logits, MSE and SSIM on sigmoid(logits));
  a baseline gives `probs` (BCE on probs clipped to [eps, 1 - eps]).
  """
  if (logits is None) == (probs is None):
    raise ValueError('pass exactly one of logits= or probs=')
  if logits is not None:
    bce = bce_with_logits(logits, targets)
    probs = jax.nn.sigmoid(jnp.asarray(logits, jnp.float32))
  else:
    bce = bce_with_probs(probs, targets, eps)
  return {'bce': bce, 'mse': mse_per_frame(probs, targets),
          'ssim': ssim_per_frame(probs, targets)}


def summarize(per_frame: dict) -> dict:
  """Reported numbers from per-example [N, T] arrays (all N examples).

  'bce_per_sequence': BCE summed over the T frames, mean over sequences (Shi);
  'mse_per_frame', 'ssim': mean over sequences and frames (PredRNN / OpenSTL);
  '*_per_step': mean over sequences at each future step t+1 .. t+T (lists).
  """
  bce = np.asarray(per_frame['bce'], np.float64)
  mse = np.asarray(per_frame['mse'], np.float64)
  ssim = np.asarray(per_frame['ssim'], np.float64)
  return {
      'bce_per_sequence': float(bce.sum(axis=1).mean()),
      'bce_per_step': bce.mean(axis=0).tolist(),
      'mse_per_frame': float(mse.mean()),
      'mse_per_step': mse.mean(axis=0).tolist(),
      'ssim': float(ssim.mean()),
      'ssim_per_step': ssim.mean(axis=0).tolist(),
      'num_sequences': int(bce.shape[0]),
  }


def mean_frame(train_frames):
  """The mean of all training frames, [H, W, C], from [N, T, H, W, C] in [0, 1]."""
  return jnp.asarray(train_frames, jnp.float32).mean(axis=(0, 1))


def last_frame_prediction(observed, num_future: int):
  """Baseline 'nothing moves': [B, T_in, H, W, C] -> [B, num_future, H, W, C]."""
  last = jnp.asarray(observed, jnp.float32)[:, -1:]
  return jnp.repeat(last, num_future, axis=1)


def mean_frame_prediction(mean, batch_size: int, num_future: int):
  """Baseline 'average image': [H, W, C] -> [B, num_future, H, W, C]."""
  mean = jnp.asarray(mean, jnp.float32)
  return jnp.broadcast_to(mean, (batch_size, num_future) + mean.shape)


def baseline_metrics(observed, targets, mean, *,
                     eps: float = BCE_PROB_EPS) -> dict:
  """Per-frame metrics of both trivial baselines, same code as for models.

  observed [B, T_in, H, W, C], targets [B, T_out, H, W, C], mean [H, W, C];
  returns {'last_frame': {...}, 'mean_frame': {...}}, each as from
  `per_frame_metrics` (feed them to `summarize` after concatenating batches).
  """
  b, t_out = targets.shape[:2]
  return {
      'last_frame': per_frame_metrics(
          targets, probs=last_frame_prediction(observed, t_out), eps=eps),
      'mean_frame': per_frame_metrics(
          targets, probs=mean_frame_prediction(mean, b, t_out), eps=eps),
  }
