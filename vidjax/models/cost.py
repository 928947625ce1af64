"""What a model costs: parameters, and forward FLOPs per clip from XLA.

XLA's `cost_analysis()` counts a while loop's body once, not once per step,
so recurrent models (those with an `unroll` field) are counted on a fully
unrolled copy of themselves. The unrolled copy is only lowered for
counting, never run.
"""
from __future__ import annotations

import collections
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


def layer_costs(model, clip_shape: tuple[int, ...], depth: int = 2, dtype=jnp.float32,
                **call_kwargs) -> list[dict]:
  """Parameters and forward FLOPs per layer, for one clip (batch 1), loops unrolled.

  Built from flax's per-module table (`nn.tabulate`'s data; private there,
  pinned by tests/test_summary.py). One row per module path up to `depth`
  (the model is depth 0), in call order: {'path', 'depth', 'output' (shape
  of the last output array), 'calls', 'params', 'flops', 'has_children'}.
  A row with children shown counts only what is not in them, so the rows
  sum to the whole model: parameters exactly, FLOPs to the root's count.

  flax lowers each module's call alone, and the table keeps a module's first
  call, so its FLOPs are multiplied by `calls`. A module called several times
  from Python (LRCN's CNN, once per frame) is traced that many times. A scan
  body is traced once per scan (plus flax's one shape-finding trace) but runs
  once per step under `jax.disable_jit`: the difference counts the steps.
  Lowered under `disable_jit` too, every scan is fully unrolled, including
  scans of models without an `unroll` field.
  """
  from flax.linen import summary as flax_summary  # Private API: see the docstring.

  def table(depth, show_repeated, compute_flops):
    fn = flax_summary._get_module_table(unrolled(model, clip_shape[0]), depth=depth,
                                        show_repeated=show_repeated, compute_flops=compute_flops,
                                        compute_vjp_flops=False)
    return fn(jax.random.key(0), jnp.zeros((1, *clip_shape), dtype), **call_kwargs)

  def calls():
    return collections.Counter((r.path, r.method) for r in table(depth, True, False))

  traced = calls()
  with jax.disable_jit():
    stepped = calls()
    rows = table(depth, False, True)

  def times(key):  # Python calls where nothing steps, else a scan's steps.
    return traced[key] if stepped[key] == traced[key] else stepped[key] - traced[key] + 1

  total = {r.path: times((r.path, r.method)) * r.flops for r in rows}
  out = []
  for r in rows:
    children = [p for p in total if len(p) == len(r.path) + 1 and p[:-1] == r.path]
    leaves = [x for x in jax.tree.leaves(r.outputs) if hasattr(x, 'shape')]
    out.append({'path': '/'.join(r.path), 'depth': len(r.path), 'module': type(r.module_copy).__name__,
                'output': tuple(leaves[-1].shape) if leaves else (),
                'calls': times((r.path, r.method)),
                'params': count_params(r.counted_variables),
                'flops': float(total[r.path] - sum(total[p] for p in children)),
                'has_children': bool(children)})
  return out
