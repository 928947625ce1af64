"""Global whole-pixel alignment: known shifts recovered, shifting by hand, the model's align option."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidjax.models import frame_align
from vidjax.models.denoisers import FastDVDNet

TRUE_SHIFTS = [(3, -2), (1, -1), (0, 0), (-2, 1), (-5, 4)]


def _photo(size=96):
  """A crop of a real photograph (scikit-image's astronaut), float32 in [0, 1]."""
  from skimage import data
  return (data.astronaut()[100:100 + size + 32, 150:150 + size + 32] / 255.0).astype(np.float32)


def _translated_clip(image, shifts, size):
  """Frame k(y, x) = image(y + dy_k, x + dx_k), cropped: shifting by (dy_k, dx_k) undoes it."""
  m = (image.shape[0] - size) // 2
  return np.stack([np.roll(image, (-dy, -dx), (0, 1))[m:m + size, m:m + size]
                   for dy, dx in shifts])[None]  # [1, T, size, size, 3]


@pytest.mark.parametrize('sigma, tolerance', [(0, 0), (30, 0), (50, 1)])
def test_recovers_known_shifts_of_a_photograph(sigma, tolerance):
  clip = _translated_clip(_photo(), TRUE_SHIFTS, 96)
  noisy = clip + np.random.default_rng(sigma).normal(size=clip.shape) * sigma / 255
  shifts = frame_align.estimate_shifts(jnp.asarray(noisy, jnp.float32), 2, max_shift=8)
  assert shifts.shape == (1, 5, 2)
  assert np.abs(np.asarray(shifts[0]) - np.array(TRUE_SHIFTS)).max() <= tolerance


def test_aligned_frames_equal_the_centre_away_from_the_borders():
  clip = jnp.asarray(_translated_clip(_photo(), TRUE_SHIFTS, 96))
  aligned = frame_align.align_to_centre(clip, max_shift=8)
  inner = np.asarray(aligned)[0, :, 8:-8, 8:-8]
  for k in range(5):
    np.testing.assert_array_equal(inner[k], inner[2])


def test_shift_frames_by_hand():
  frames = jnp.arange(16, dtype=jnp.float32).reshape(1, 1, 4, 4, 1)  # rows 0-3, values 4r + c
  out = np.asarray(frame_align.shift_frames(frames, jnp.array([[[1, -1]]])))[0, 0, ..., 0]
  # out[y, x] = in[clip(y - 1), clip(x + 1)]: down one row, left one column, edges repeated.
  expected = np.array([[1, 2, 3, 3], [1, 2, 3, 3], [5, 6, 7, 7], [9, 10, 11, 11]], np.float32)
  np.testing.assert_array_equal(out, expected)


def test_shifts_never_exceed_max_shift():
  clip = _translated_clip(_photo(), [(7, 0), (0, 0), (0, 0), (0, 0), (-7, 6)], 96)
  shifts = np.asarray(frame_align.estimate_shifts(jnp.asarray(clip), 2, max_shift=3))
  assert np.abs(shifts).max() <= 3
  assert np.asarray(frame_align.estimate_shifts(jnp.asarray(clip), 2, 8))[0, 0].tolist() == [7, 0]


def test_fastdvdnet_align_option():
  tiny = dict(features=(8, 16, 16), interm=4)
  clip = jnp.asarray(_translated_clip(_photo(48), TRUE_SHIFTS, 32))
  noise_map = jnp.full((1, 32, 32, 1), 30 / 255, jnp.float32)
  plain, aligned = FastDVDNet(**tiny), FastDVDNet(**tiny, align='translation')
  params = plain.init(jax.random.key(0), clip, noise_map)
  # Same parameter tree; aligning is the same as feeding the network the aligned frames.
  by_hand = frame_align.align_to_centre(clip, 8)
  np.testing.assert_allclose(aligned.apply(params, clip, noise_map)['denoised'],
                             plain.apply(params, by_hand, noise_map)['denoised'], atol=1e-6)
  # A still clip is left as it is; the single-frame twin has nothing to align.
  still = jnp.repeat(clip[:, 2:3], 5, axis=1)
  np.testing.assert_allclose(aligned.apply(params, still, noise_map)['denoised'],
                             plain.apply(params, still, noise_map)['denoised'], atol=1e-6)
  twin = dict(tiny, single_frame=True)
  np.testing.assert_array_equal(
      FastDVDNet(**twin, align='translation').apply(params, clip, noise_map)['denoised'],
      FastDVDNet(**twin).apply(params, clip, noise_map)['denoised'])
  with pytest.raises(ValueError, match='align must be one of none, translation'):
    FastDVDNet(**tiny, align='flow').apply(params, clip, noise_map)
