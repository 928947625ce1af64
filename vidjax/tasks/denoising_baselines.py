"""Classical video denoising baselines, scored by the same evaluator as models.

Each takes a noisy sequence [T, H, W, 3] float32 (clean frames in [0, 1] plus
the unclipped test noise, `metrics.restoration.eval_noise`) and the noise level
sigma on the 0-255 scale (the non-blind setting: classical methods are told
sigma), and returns float32 [T, H, W, 3]. Every restored output is clipped to
[0, 1], as FastDVDnet and RVRT clamp their networks' outputs; `noisy` returns
its input untouched, since FastDVDnet scores the noisy input unclipped.

Parameters were chosen once on a val-like sequence: 24 crops of 96x96 panning
2 px a frame across skimage's half-size `astronaut` image, sigma 10..50, with
`coffee` as a held-out check (within ~0.5 dB of its own best everywhere).
On those pans (24x96x96, sigma 30, 2 CPU cores; noisy input 18.6 dB) NLM takes
~0.45 s and gains +10.3 / +11.6 dB (astronaut / coffee), TV ~0.2 s and +7.4 /
+9.5 dB, BM3D 60-90 s and +12.4 dB (coffee).

BM3D (Dabov et al. 2007) needs the optional `bm3d` package, free for
non-commercial use only, so it is imported lazily and never at import time.
"""
from __future__ import annotations

import importlib

import numpy as np
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

BM3D_MISSING = ('BM3D needs the optional bm3d package (free for non-commercial '
                'use only): pip install bm3d')

# NLM on the [T, H, W] volume: 5x5x5 patches, +-2 voxel search (125 offsets).
# skimage suggests h = 0.8 sigma with fast_mode and sigma given; on the val
# pan the best h fell from 0.7 sigma at sigma 10 to 0.4 sigma at 40-50 (a 3-D
# patch of 375 values measures similarity with little noise, so a smaller h
# suffices), hence h = (0.8 - 0.01 sigma_255) sigma, floored at 0.4 sigma.
NLM_PATCH_SIZE = 5
NLM_PATCH_DISTANCE = 2

# TV weight = TV_WEIGHT_PER_SIGMA * sigma: the best of {0.5, 0.75, 1, 1.25, 1.5}
# on the val pan at sigma 20..50 (0.2 dB short of 0.5 at sigma 10).
TV_WEIGHT_PER_SIGMA = 0.75


def _restored(frames) -> np.ndarray:
  return np.clip(np.asarray(frames, np.float32), 0.0, 1.0)


def noisy(noisy_seq, sigma_255=None) -> np.ndarray:
  """The noisy input itself, unclipped: the floor every method must beat."""
  return np.asarray(noisy_seq, np.float32)


def nl_means_h(sigma_255: float) -> float:
  """NLM's cut-off h in [0, 1] units for a noise level on the 0-255 scale."""
  return max(0.8 - 0.01 * sigma_255, 0.4) * sigma_255 / 255.0


def nl_means(noisy_seq, sigma_255: float) -> np.ndarray:
  """skimage's fast non-local means on the spatio-temporal volume [T, H, W] x 3.

  Patches span time as well as space, so it uses the other frames as a video
  denoiser should (fine for slow motion; patches blur under fast motion).
  """
  sigma = sigma_255 / 255.0
  out = denoise_nl_means(
      np.asarray(noisy_seq, np.float32), patch_size=NLM_PATCH_SIZE,
      patch_distance=NLM_PATCH_DISTANCE, h=nl_means_h(sigma_255), sigma=sigma,
      fast_mode=True, channel_axis=-1)
  return _restored(out)


def tv(noisy_seq, sigma_255: float) -> np.ndarray:
  """Chambolle total-variation denoising of each frame on its own.

  Per frame rather than on the 3-D volume: 3-D TV smears anything that moves,
  and on the val pan it was no better at its own best weight.
  """
  weight = TV_WEIGHT_PER_SIGMA * sigma_255 / 255.0
  frames = [denoise_tv_chambolle(f, weight=weight, channel_axis=-1)
            for f in np.asarray(noisy_seq, np.float32)]
  return _restored(np.stack(frames))


def _import_bm3d():
  try:
    return importlib.import_module('bm3d')
  except ImportError:
    raise ImportError(BM3D_MISSING) from None


def bm3d_per_frame(noisy_seq, sigma_255: float) -> np.ndarray:
  """Colour BM3D (`bm3d.bm3d_rgb`, opponent colour space) of each frame.

  The strongest classical per-frame denoiser; it ignores the other frames.
  """
  bm3d = _import_bm3d()
  sigma = sigma_255 / 255.0
  frames = [bm3d.bm3d_rgb(f, sigma) for f in np.asarray(noisy_seq, np.float32)]
  return _restored(np.stack(frames))


BASELINES = {
    'noisy': noisy,
    'nl_means': nl_means,
    'tv': tv,
    'bm3d': bm3d_per_frame,
}
