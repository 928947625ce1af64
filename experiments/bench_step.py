"""Measure one train step: compile time, step time, FLOPs, MFU, memory.

The step is the library's own update, built by the one function the
training loop uses (`steps.make_update_step`: the state donated, explicit
shardings), on a 1-device mesh, with a synthetic
uint8 batch already on the device. So the bench times what training runs,
minus the input pipeline (bench_input_vs_compute.py adds that back). The
state has the library's structure and shardings (`steps.abstract_state`)
but host-made values (`host_state`), which saves a compile per row.

FLOPs per step: XLA's cost analysis of that same jitted train step
(forward + backward + optimizer), taken on its lowering with every scan
fully unrolled (`cost.unrolled`): XLA counts a while loop's body once, so a
model that scans over time (LRCN's LSTM, a ConvLSTM with unroll < T) would
be under-counted by T. The lowering's count needs no second compile and
agrees with the compiled step's own count to about 1% (both are in the
JSON). The forward alone is counted the same way, so the table can show
train / forward: about 3 (one forward; two products per weight backward).

MFU = achieved FLOP/s / peak FLOP/s, where the peak is a 2048^2 matmul of the
step's dtype on the same device, in the same run. The machine may be shared
with other programs, so every timed step is followed by one timed matmul and
MFU is the median of the per-pair ratios: a load that slows both cancels.
The table's step time and achieved FLOP/s are medians over the same steps.

Memory: the device's own peak where the backend reports one
(`memory_stats()`, GPU/TPU); on CPU that is None, so the row gives XLA's
compiled `memory_analysis()`: arguments + outputs - donated aliases +
temporaries, i.e. what the step needs at its peak as planned by the compiler.
"""
from __future__ import annotations

import dataclasses
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vidjax import config as config_lib
from vidjax import parallel, steps, tasks
from vidjax.models import build_model, cost

REPO = pathlib.Path(__file__).resolve().parent.parent
NUM_CLASSES = 12  # The embedded action set's; the head is a negligible cost.


@dataclasses.dataclass(frozen=True)
class Case:
  """One benchmark row: a config file, overrides, a batch size, a name for the shape."""
  name: str
  config: str  # 'configs/file.py' or 'configs/file.py:variant', relative to the repo.
  overrides: tuple[str, ...] = ()  # 'a.b=value', as on the command line without --config.
  batch_size: int = 8
  shape: str = ''  # The input and model size in words, for the table.

  def with_overrides(self, *extra: str, name: str | None = None) -> 'Case':
    return dataclasses.replace(self, overrides=self.overrides + extra, name=name or self.name)


def load_config(case: Case):
  return config_lib.load(str(REPO / case.config), list(case.overrides))


class Peak:
  """The matmul FLOP/s of one device: the ceiling MFU is measured against."""

  def __init__(self, dtype=jnp.float32, n: int = 2048, device=None):
    device = device or jax.devices()[0]
    ka, kb = jax.random.split(jax.random.key(0))
    self.a = jax.device_put(jax.random.normal(ka, (n, n), jnp.float32).astype(dtype), device)
    self.b = jax.device_put(jax.random.normal(kb, (n, n), jnp.float32).astype(dtype), device)
    self.dtype, self.n, self.flops = jnp.dtype(dtype), n, 2.0 * n ** 3
    self._matmul = jax.jit(jnp.matmul)
    for _ in range(2):  # Compile, then one run to settle caches.
      self._matmul(self.a, self.b).block_until_ready()
    self.samples: list[float] = []

  def sample(self) -> float:
    """FLOP/s of one matmul, timed now."""
    begin = time.perf_counter()
    self._matmul(self.a, self.b).block_until_ready()
    rate = self.flops / (time.perf_counter() - begin)
    self.samples.append(rate)
    return rate

  def measure(self, repeats: int = 7) -> float:
    return float(np.median([self.sample() for _ in range(repeats)]))

  @property
  def median(self) -> float:
    return float(np.median(self.samples)) if self.samples else float('nan')


@dataclasses.dataclass
class Step:
  """A built, not yet compiled, train step with its state and a device batch."""
  case: Case
  config: Any
  model: Any
  mesh: Any
  tx: Any
  schedule: Any
  abstract: Any  # The state's ShapeDtypeStructs with shardings.
  state: Any  # Donated on every call: always use the latest one.
  batch: dict
  donate: bool
  jitted: Any = None
  lowered: Any = None
  compiled: Any = None
  compile_s: float = float('nan')

  @property
  def clip_shape(self) -> tuple[int, int, int, int]:
    d = self.config.data
    return (d.num_frames, d.height, d.width, 3)

  def compile(self) -> 'Step':
    """Traces, lowers and compiles; `compile_s` is all three (what a run waits for)."""
    begin = time.perf_counter()
    self.lowered = self.jitted.lower(self.state, self.batch)
    self.compiled = self.lowered.compile()
    self.compile_s = time.perf_counter() - begin
    return self

  def run(self, block: bool = True):
    """One update on the synthetic batch; returns its metrics."""
    self.state, metrics = self.compiled(self.state, self.batch)
    if block:
      jax.block_until_ready((self.state, metrics))
    return metrics


def jit_train_step(config, model, tx, schedule, abstract, mesh, donate: bool = True):
  """The update built by the loop's own builder (`steps.make_update_step`), with the
  classification task's loss for `model` at NUM_CLASSES classes."""
  task = tasks.get(config)
  task.class_names = [f'class_{i}' for i in range(NUM_CLASSES)]
  return steps.make_update_step(config, task.loss_fn(model), tx, schedule, abstract, mesh,
                                donate=donate)


def synthetic_batch(config, batch_size: int, mesh, seed: int = 0) -> dict:
  """Random uint8 clips and labels, placed on the device like a real batch."""
  rng = np.random.default_rng(seed)
  d = config.data
  local = {'video': rng.integers(0, 256, (batch_size, d.num_frames, d.height, d.width, 3),
                                 dtype=np.uint8),
           'label': rng.integers(0, NUM_CLASSES, (batch_size,), dtype=np.int32)}
  return parallel.global_batch(local, mesh)


def one_device_mesh():
  return parallel.make_mesh(1, 1, devices=jax.devices()[:1])


def host_state(abstract, seed: int = 0):
  """A train state of the right structure, shapes and shardings, made on the host.

  Parameters are N(0, 0.02) draws, everything else zeros (the non-finite
  marker -1). The library's `steps.create_state` runs the initialisers in a
  jitted function, i.e. one more XLA compile per row, about as long as the
  step's own; a step costs the same whatever the values, so the bench skips it.
  """
  rng = np.random.default_rng(seed)
  put = lambda value, s: jax.device_put(value, s.sharding)
  state = jax.tree.map(lambda s: put(np.zeros(s.shape, s.dtype), s), abstract)
  state = state.replace(params=jax.tree.map(
      lambda s: put((0.02 * rng.standard_normal(s.shape)).astype(s.dtype), s), abstract.params))
  if hasattr(state, 'nonfinite_step'):
    state = state.replace(nonfinite_step=put(np.full((), -1, np.int32), abstract.nonfinite_step))
  return state


def build(case: Case, mesh=None, *, model=None, donate: bool = True,
          library_init: bool = False) -> Step:
  """Config -> model, optimizer, state (in its sharded layout), jitted step, batch.

  `model` replaces the config's model (a local variant, same parameters).
  The state comes from `host_state`, or with `library_init` from the
  library's own `steps.create_state`.
  """
  mesh = mesh or one_device_mesh()
  config = load_config(case)
  model = model or build_model(config.model, NUM_CLASSES)
  tx, schedule = steps.make_optimizer(config.optim, config.train.num_steps)
  if library_init:
    state, abstract = steps.create_state(config, model, tx, mesh)
  else:
    _, abstract = steps.abstract_state(config, model, tx, mesh)
    state = host_state(abstract, config.seed)
  step = Step(case, config, model, mesh, tx, schedule, abstract, state,
              synthetic_batch(config, case.batch_size, mesh), donate)
  step.jitted = jit_train_step(config, model, tx, schedule, abstract, mesh, donate)
  return step


def _is_scanned(model, num_frames: int) -> bool:
  unroll = getattr(model, 'unroll', None)
  if unroll is None or unroll is True:
    return False
  return int(unroll) < num_frames


def _flops(stage) -> float:
  """XLA's FLOP count of a `Lowered` or `Compiled` computation."""
  analysis = stage.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # Older jax: one dict per device.
    analysis = analysis[0]
  return float(analysis.get('flops', float('nan'))) if analysis else float('nan')


def _abstract(tree):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                     sharding=getattr(x, 'sharding', None)), tree)


def train_step_flops(step: Step) -> float:
  """FLOPs of one train step: the jitted step, lowered with every scan unrolled.

  Counted on the lowering (XLA's cost analysis of the HLO before
  optimisation), so the unrolled copy is never compiled; it agrees with the
  compiled count to about 1% where both can be had (see 'compiled_flops').
  """
  if not _is_scanned(step.model, step.clip_shape[0]):
    lowered = step.lowered or step.jitted.lower(step.abstract, _abstract(step.batch))
    return _flops(lowered)
  model = cost.unrolled(step.model, step.clip_shape[0])
  jitted = jit_train_step(step.config, model, step.tx, step.schedule, step.abstract, step.mesh,
                          step.donate)
  return _flops(jitted.lower(step.abstract, _abstract(step.batch)))


def forward_flops(step: Step) -> float:
  """FLOPs of the forward pass on the step's batch (lowered, scans unrolled)."""
  model = cost.unrolled(step.model, step.clip_shape[0])
  video = jax.ShapeDtypeStruct((step.case.batch_size, *step.clip_shape), jnp.float32)
  return _flops(jax.jit(lambda p, v: model.apply(p, v)).lower(_abstract(step.state.params), video))


def memory(step: Step) -> dict:
  """The device's peak if it reports one, else XLA's compiled plan (bytes)."""
  result = {}
  analysis = step.compiled.memory_analysis()
  if analysis is not None:
    args, out = analysis.argument_size_in_bytes, analysis.output_size_in_bytes
    alias, temp = analysis.alias_size_in_bytes, analysis.temp_size_in_bytes
    result.update(argument_bytes=args, output_bytes=out, alias_bytes=alias, temp_bytes=temp,
                  compiled_peak_bytes=args + out - alias + temp)
  stats = step.mesh.devices.flat[0].memory_stats()
  if stats and 'peak_bytes_in_use' in stats:
    result['device_peak_bytes'] = stats['peak_bytes_in_use']
  result['source'] = ('device memory_stats peak_bytes_in_use (the process peak so far)'
                      if 'device_peak_bytes' in result
                      else 'compiled memory_analysis: args + outputs - aliases + temps')
  result['peak_bytes'] = result.get('device_peak_bytes', result.get('compiled_peak_bytes'))
  return result


def time_steps(step: Step, peak: Peak | None, steps: int, warmup: int = 2,
               budget_s: float | None = None, min_steps: int = 3) -> dict:
  """Median step time over `steps` after `warmup`; each step followed by a peak matmul.

  With `budget_s`, fewer steps (at least `min_steps`) are timed when the
  warm-up shows that `steps` would take longer.
  """
  begin = time.perf_counter()
  for _ in range(warmup):
    step.run()
  first = (time.perf_counter() - begin) / max(warmup, 1)
  if budget_s is not None and first * steps > budget_s:
    steps = max(min_steps, int(budget_s / max(first, 1e-9)))
  times, peaks = [], []
  for _ in range(steps):
    begin = time.perf_counter()
    step.run()
    times.append(time.perf_counter() - begin)
    if peak is not None:
      peaks.append(peak.sample())
  return {'step_times_s': times, 'peak_samples': peaks, 'steps': steps, 'warmup': warmup}


def measure(step: Step, peak: Peak, *, steps: int = 10, warmup: int = 2,
            budget_s: float | None = None, forward_check: bool = True) -> dict:
  """Compile and time `step`; every number of one table row."""
  if step.compiled is None:
    step.compile()
  flops = train_step_flops(step)
  forward = forward_flops(step) if forward_check else float('nan')
  compiled = float('nan') if _is_scanned(step.model, step.clip_shape[0]) else _flops(step.compiled)
  timing = time_steps(step, peak, steps, warmup, budget_s)
  times = np.asarray(timing['step_times_s'])
  step_s = float(np.median(times))
  ratios = (flops / times) / np.asarray(timing['peak_samples'])
  b = step.case.batch_size
  return {
      'name': step.case.name, 'config': step.case.config, 'overrides': list(step.case.overrides),
      'shape': step.case.shape, 'batch_size': b, 'clip_shape': list(step.clip_shape),
      'dtype': step.config.model.dtype, 'num_params': cost.count_params(step.state.params),
      'compile_s': step.compile_s, 'step_s': step_s,
      'step_s_min': float(times.min()), 'clips_per_s': b / step_s,
      'train_flops': flops, 'compiled_flops': compiled, 'forward_flops': forward,
      'train_over_forward': flops / forward,
      'achieved_flops_per_s': flops / step_s,
      'peak_flops_per_s': float(np.median(timing['peak_samples'])),
      'mfu': float(np.median(ratios)), 'memory': memory(step), **timing,
  }
