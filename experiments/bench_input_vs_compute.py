"""Input vs compute: is training waiting for the data?

Three rates, measured one after another in one process, at the config's own
batch size (the embedded demo by default: LRCN, batch 32, 8x64x64):

- step alone: the jitted train step on one synthetic batch already on the
  device (what the table measures);
- pipeline alone: batches/s of `pipeline.train_dataset` over the embedded
  action set (decode in grain worker processes, batch on the host);
- end to end: the training loop's own pattern (train.py, section 7): dispatch
  the step, then decode and place the next batch while it runs, no host sync
  inside the loop.

input-bound fraction = 1 - end-to-end steps/s / step-alone steps/s: the share
of the loop's time not explained by compute. On a CPU the decode workers and
XLA share the same cores, so the overlap hides less than it would on an
accelerator.
"""
from __future__ import annotations

import os
import time

import jax

from vidjax import parallel
from vidjax.data import pipeline, registry
from vidjax.tasks.classification import LabelTargets

from experiments import bench_step


def _workers(setting: int) -> int:
  """data.num_workers as the pipeline reads it: -1 means one per core but one."""
  return setting if setting >= 0 else max(0, len(os.sched_getaffinity(0)) - 1)


def _rate(fn, count: int) -> float:
  begin = time.perf_counter()
  fn(count)
  return count / (time.perf_counter() - begin)


def run(case: bench_step.Case, *, steps: int = 20, rounds: int = 2, log=print) -> dict:
  """Steps/s of the three; `rounds` alternations, so load falls on all alike."""
  step = bench_step.build(case).compile()
  config, mesh = step.config, step.mesh
  records = registry.load_split(config.data, config.data.train_split).records
  failures = pipeline.FailureCounter('train', config.data.max_failed_fraction)
  batches = iter(pipeline.train_dataset(records, config.data, batch_size=case.batch_size,
                                        seed=0, failures=failures, targets=LabelTargets()))
  next(batches)  # Workers started, first batch decoded.
  step.run()
  step.run()

  def alone(n):
    for _ in range(n):
      step.run(block=False)
    step.run()

  def input_only(n):
    for _ in range(n):
      parallel.global_batch(next(batches), mesh)

  def end_to_end(n):
    batch = parallel.global_batch(next(batches), mesh)
    for i in range(n):
      step.state, metrics = step.compiled(step.state, batch)  # Dispatched, not waited for.
      if i + 1 < n:
        batch = parallel.global_batch(next(batches), mesh)
    jax.block_until_ready((step.state, metrics))

  rates = {'step_alone': [], 'pipeline_alone': [], 'end_to_end': []}
  for r in range(rounds):
    rates['step_alone'].append(_rate(alone, steps))
    rates['pipeline_alone'].append(_rate(input_only, steps))
    rates['end_to_end'].append(_rate(end_to_end, steps))
    log(f"  input vs compute, round {r}: " + ', '.join(f'{k} {v[-1]:.2f} steps/s'
                                                       for k, v in rates.items()))
  if hasattr(batches, 'close'):
    batches.close()
  best = {k: max(v) for k, v in rates.items()}  # The least disturbed round of each.
  return {
      'name': case.name, 'config': case.config, 'overrides': list(case.overrides),
      'batch_size': case.batch_size, 'steps_per_round': steps, 'rounds': rounds,
      'num_workers': _workers(config.data.num_workers), 'steps_per_s': rates, 'best_steps_per_s': best,
      'input_bound_fraction': 1.0 - best['end_to_end'] / best['step_alone'],
      'clips_per_s': {k: v * case.batch_size for k, v in best.items()},
      'failed_videos': len(failures.failed),
  }
