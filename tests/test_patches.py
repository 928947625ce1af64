"""Patching is lossless and lays pixels out as documented (Shi et al.'s 16x16x16)."""
import jax.numpy as jnp
import numpy as np
import pytest

from vidjax.models.patches import from_patches, to_patches


def test_moving_mnist_shape():
  frames = np.zeros((2, 10, 64, 64, 1), np.uint8)  # [B, T, H, W, C]
  assert to_patches(frames).shape == (2, 10, 16, 16, 16)


@pytest.mark.parametrize('shape,p', [((2, 3, 64, 64, 1), 4),
                                     ((1, 2, 8, 12, 3), 2),
                                     ((1, 1, 6, 6, 2), 3)])
def test_exact_round_trip_numpy_and_jax(shape, p):
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, size=shape).astype(np.uint8)
  back = from_patches(to_patches(frames, p), p)
  assert back.dtype == frames.dtype and np.array_equal(back, frames)
  back_jax = from_patches(to_patches(jnp.asarray(frames), p), p)
  assert np.array_equal(np.asarray(back_jax), frames)
  patched = rng.normal(size=to_patches(frames, p).shape).astype(np.float32)
  assert np.array_equal(to_patches(from_patches(patched, p), p), patched)


def test_channel_order_is_row_col_channel():
  p, c = 4, 2
  frames = np.arange(1 * 1 * 8 * 8 * c).reshape(1, 1, 8, 8, c)
  patched = to_patches(frames, p)
  for i in range(2):
    for j in range(2):
      for r in range(p):
        for cc in range(p):
          for ch in range(c):
            assert (patched[0, 0, i, j, (r * p + cc) * c + ch]
                    == frames[0, 0, i * p + r, j * p + cc, ch])


def test_rejects_indivisible_sizes():
  with pytest.raises(ValueError, match='not divisible'):
    to_patches(np.zeros((1, 1, 10, 8, 1)), 4)
  with pytest.raises(ValueError, match='multiple of p'):
    from_patches(np.zeros((1, 1, 2, 2, 15)), 4)
