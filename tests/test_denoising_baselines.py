"""Classical baselines beat the noisy input; BM3D stays optional."""
import importlib
import sys

import numpy as np
import pytest

from vidjax.metrics import restoration as rm
from vidjax.tasks import denoising_baselines as db

SIGMA = 30


def _smooth_sequence(t=6, h=32, w=32):
  """[T, H, W, 3] in [0.1, 0.9]: colour ramps and a soft disc drifting 1 px a frame."""
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  frames = []
  for i in range(t):
    disc = 1 / (1 + np.exp((np.hypot(yy - h / 2, xx - 8 - i) - 6) / 1.5))
    r = 0.2 + 0.5 * xx / w + 0.2 * disc
    g = 0.3 + 0.4 * yy / h - 0.2 * disc
    b = 0.5 + 0.2 * np.sin(xx / 5 + yy / 7) + 0.2 * disc
    frames.append(np.stack([r, g, b], axis=-1))
  return np.clip(np.stack(frames), 0.1, 0.9).astype(np.float32)


@pytest.fixture(scope='module')
def clean_and_noisy():
  clean = _smooth_sequence()
  return clean, clean + rm.eval_noise(clean.shape, SIGMA, seed=0, sequence_index=0)


def _mean_psnr(clean, out):
  return float(np.mean(rm.psnr(clean, out)))


def test_noisy_is_the_unclipped_input(clean_and_noisy):
  clean, noisy = clean_and_noisy
  out = db.noisy(noisy)
  np.testing.assert_array_equal(out, noisy)
  # Unclipped AWGN at sigma 30 scores 20 log10(255 / 30) = 18.59 dB.
  assert _mean_psnr(clean, out) == pytest.approx(18.59, abs=0.3)


@pytest.mark.parametrize('name', ['nl_means', 'tv'])
def test_classical_baselines_gain_over_3_db(clean_and_noisy, name):
  clean, noisy = clean_and_noisy
  out = db.BASELINES[name](noisy, SIGMA)
  assert out.shape == noisy.shape and out.dtype == np.float32
  assert out.min() >= 0 and out.max() <= 1
  gain = _mean_psnr(clean, out) - _mean_psnr(clean, noisy)
  assert gain > 3.0, f'{name} gains only {gain:.2f} dB'
  assert float(np.mean(rm.ssim(clean, out))) > float(np.mean(rm.ssim(clean, noisy)))


def test_nl_means_h_follows_the_tuned_rule():
  assert db.nl_means_h(10) == pytest.approx(0.7 * 10 / 255)
  assert db.nl_means_h(50) == pytest.approx(0.4 * 50 / 255)


def test_bm3d_missing_says_how_to_install(monkeypatch, clean_and_noisy):
  monkeypatch.setitem(sys.modules, 'bm3d', None)  # makes `import bm3d` fail
  with pytest.raises(ImportError, match='pip install bm3d') as err:
    db.bm3d_per_frame(clean_and_noisy[1], SIGMA)
  assert str(err.value) == db.BM3D_MISSING
  assert 'non-commercial' in str(err.value)


def test_bm3d_gains_when_installed(clean_and_noisy):
  pytest.importorskip('bm3d')
  clean, noisy = clean_and_noisy
  out = db.bm3d_per_frame(noisy[:2], SIGMA)
  assert out.shape == (2, 32, 32, 3) and out.dtype == np.float32
  assert _mean_psnr(clean[:2], out) - _mean_psnr(clean[:2], noisy[:2]) > 3.0


def test_module_imports_without_bm3d(monkeypatch):
  monkeypatch.setitem(sys.modules, 'bm3d', None)  # any import-time `import bm3d` fails
  importlib.reload(db)
  assert set(db.BASELINES) == {'noisy', 'nl_means', 'tv', 'bm3d'}
