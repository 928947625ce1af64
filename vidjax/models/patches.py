"""Space-to-depth patching of frames, as in Shi et al. 2015 (ConvLSTM).

Why: Shi et al. cut each 64x64x1 Moving MNIST frame into non-overlapping 4x4
patches and stack each patch's pixels as channels, so the ConvLSTM runs on a
16x16x16 tensor: 16x fewer positions, and a 5x5 kernel then spans 20x20 pixels,
enough to follow a digit moving 3-5 px per frame. `from_patches` is the exact
inverse, used to turn the model's patched logits back into frames.

Within a patch the channel index is (row, col, channel) with channel fastest:
`patched[..., i, j, (r * p + c) * C + ch] == frames[..., i * p + r, j * p + c, ch]`.
Both functions only reshape and transpose, so they work on numpy and jax
arrays alike (the result has the input's array type) and are lossless.
"""
from __future__ import annotations


def to_patches(frames, p: int = 4):
  """[B, T, H, W, C] -> [B, T, H/p, W/p, p*p*C]."""
  b, t, h, w, c = frames.shape
  if h % p or w % p:
    raise ValueError(f'frame size {h}x{w} is not divisible by patch size {p}')
  x = frames.reshape(b, t, h // p, p, w // p, p, c)  # [B, T, H/p, r, W/p, c, C]
  x = x.transpose(0, 1, 2, 4, 3, 5, 6)  # [B, T, H/p, W/p, r, c, C]
  return x.reshape(b, t, h // p, w // p, p * p * c)


def from_patches(patched, p: int = 4):
  """[B, T, H/p, W/p, p*p*C] -> [B, T, H, W, C]; the exact inverse of to_patches."""
  b, t, hp, wp, d = patched.shape
  if d % (p * p):
    raise ValueError(f'{d} channels is not a multiple of p*p = {p * p}')
  c = d // (p * p)
  x = patched.reshape(b, t, hp, wp, p, p, c)  # [B, T, H/p, W/p, r, c, C]
  x = x.transpose(0, 1, 2, 4, 3, 5, 6)  # [B, T, H/p, r, W/p, c, C]
  return x.reshape(b, t, hp * p, wp * p, c)
