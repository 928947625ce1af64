"""Small pieces shared by several model families.

Only things that more than one family needs live here; a layer that one
family uses stays in that family's file, so a reader finds it next to its use.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def as_dtype(dtype: Any) -> jnp.dtype:
  """Accepts a dtype or its name ('bfloat16', 'float32', ...).

  Configs hold plain strings, code holds dtypes; models call this on their
  `dtype` / `param_dtype` fields so either works.
  """
  try:
    return jnp.dtype(dtype)
  except TypeError:
    raise ValueError(f"unknown dtype '{dtype}'; use e.g. 'float32' or 'bfloat16'") from None


def pair(value: int | tuple[int, ...]) -> tuple[int, int]:
  """3 -> (3, 3); (3, 5) -> (3, 5). Kernel sizes arrive from configs as either."""
  if isinstance(value, int):
    return (value, value)
  value = tuple(value)
  if len(value) != 2:
    raise ValueError(f'expected an int or a pair, got {value}')
  return value


class DropPath(nn.Module):
  """Stochastic depth (Huang et al. 2016): drop a whole residual branch per example.

  Regularises deep transformers better than dropout alone: an example sees a
  random shallower network. Survivors are scaled by 1/(1 - rate) so the
  expected output is unchanged; at eval time (deterministic) it is the identity.

  Takes a pytree of branch outputs whose leaves all start with the batch axis
  (e.g. patch tokens and a CLS token) and drops them together, with one draw
  per example. Uses the 'dropout' rng.
  """
  rate: float
  deterministic: bool = True

  @nn.compact
  def __call__(self, branch):  # leaves: [B, ...]
    if self.deterministic or self.rate == 0.0:
      return branch
    keep = 1.0 - self.rate
    batch = jax.tree.leaves(branch)[0].shape[0]
    mask = jax.random.bernoulli(self.make_rng('dropout'), keep, (batch,))  # [B]
    def apply(x):
      m = mask.reshape((batch,) + (1,) * (x.ndim - 1))
      return jnp.where(m, x / keep, jnp.zeros_like(x)).astype(x.dtype)
    return jax.tree.map(apply, branch)
