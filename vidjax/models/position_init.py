"""How a transformer's learned position embeddings start: small noise, or sines and cosines.

Why: timm and the official TimeSformer start them as noise of std 0.02, while a
patch token is about unit size. After the pre-norm LayerNorm a token then says
almost nothing of where or when it is, and Adam moves each entry by about the
learning rate per step, so at 1e-3 the embeddings need ~1,000 steps to matter.
A small video transformer trained from scratch sits at chance for just that long
on a task that needs frame order, and then takes off at a step that varies with
the seed. Starting them as sines and cosines of the position, the fixed
embeddings of Vaswani et al. (1D, for time) and of MAE and big_vision (2D, for
space), gives every token its place from step 0; they stay learnable, and the
parameters keep their names and shapes, so checkpoints load either way.

Layouts: a space embedding is [1, 1, N, D] (N = h * w patches, row-major), a
time embedding [1, T, 1, D], a space-time one [1, T, N, D] (the sum of both).
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

POSITION_INITS = ('normal', 'sincos')
NORMAL = nn.initializers.normal(stddev=0.02)  # timm's start, also for CLS tokens.


def sincos_1d(positions: np.ndarray, dim: int) -> np.ndarray:
  """[P] positions -> [P, dim]: sin of dim/2 geometric frequencies, then their cos."""
  if dim % 2:
    raise ValueError(f'a sin-cos embedding needs an even width, got {dim}')
  frequencies = 1.0 / 10000 ** (np.arange(dim // 2) / (dim // 2))  # [dim/2]
  angles = positions.astype(np.float64)[:, None] * frequencies[None]  # [P, dim/2]
  return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d(height: int, width: int, dim: int) -> np.ndarray:
  """[h * w, dim], row-major: half the width encodes the row, half the column."""
  if dim % 4:
    raise ValueError(f'a 2D sin-cos embedding needs a width divisible by 4, got {dim}')
  rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
  return np.concatenate([sincos_1d(rows.ravel(), dim // 2),
                         sincos_1d(cols.ravel(), dim // 2)], axis=1)


def initializer(kind: str, grid: tuple[int, int]):
  """An init for a [1, T, N, D] embedding (T or N may be 1) of patches on a `grid` of h x w.

  `kind='sincos'` fills the space axis (when N > 1) with `sincos_2d` of the grid and
  the time axis (when T > 1) with `sincos_1d`, summed where both are present.
  """
  if kind not in POSITION_INITS:
    raise ValueError(f"position_init must be one of {POSITION_INITS}, got '{kind}'")
  if kind == 'normal':
    return NORMAL

  def init(key, shape, dtype=jnp.float32):
    del key  # deterministic
    _, t, n, d = shape
    table = np.zeros((t, n, d))
    if n > 1:
      if n != grid[0] * grid[1]:
        raise ValueError(f'{n} positions is not a {grid[0]}x{grid[1]} grid')
      table += sincos_2d(*grid, d)[None]
    if t > 1:
      table += sincos_1d(np.arange(t), d)[:, None]
    return jnp.asarray(table[None], dtype)

  return init
