"""What a model costs: parameters, and forward FLOPs per clip from XLA.

XLA's `cost_analysis()` counts a while loop's body once, not once per step,
so recurrent models (those with an `unroll` field) are counted on a fully
unrolled copy of themselves. The unrolled copy is only lowered for
counting, never run.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def count_params(params: Any) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


def unrolled(model, num_steps: int):
  """The same module with every scan over time fully unrolled."""
  if 'unroll' in {f.name for f in dataclasses.fields(model)}:
    return model.clone(unroll=num_steps)
  return model


def compiled_flops(fn, *args) -> float:
  """FLOPs XLA counts for `fn(*args)`; args may be ShapeDtypeStructs."""
  cost = jax.jit(fn).lower(*args).compile().cost_analysis()
  if isinstance(cost, (list, tuple)):  # Older jax returns one dict per device.
    cost = cost[0]
  return float(cost.get('flops', float('nan'))) if cost else float('nan')


def forward_flops_per_clip(model, params: Any, clip_shape: tuple[int, ...],
                           dtype=jnp.float32, **call_kwargs) -> float:
  """Forward FLOPs for one clip [T, H, W, C] (batch 1), loops unrolled."""
  abstract_params = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
  clip = jax.ShapeDtypeStruct((1, *clip_shape), dtype)
  model = unrolled(model, clip_shape[0])
  return compiled_flops(lambda p, v: model.apply(p, v, **call_kwargs), abstract_params, clip)
