"""The three parts of experiments/gpu_session.py, each run in its own process.

Each part gets a deadline (seconds since the epoch) and writes its JSON
(`OUT/parts/<part>.json`) after every row or phase it finishes, so whatever
kills it at the deadline loses only the row in progress.

- bench: the bench table's rows at full size in bf16 (bench.py's rows and
  measurement, one process, rows in order of importance), against a peak
  matmul timed in the same run (8192^2 on an accelerator: a 2048^2 product
  takes ~25 us on an H100, too short for a host timer).
- moving_mnist: a Table 1 row at the paper's sizes through the real CLI: train
  until the training share ends, stop it with SIGTERM (the preemption path:
  it saves its step and exits 75), then run the same command with
  `train.num_steps` set to the saved step, which resumes, trains nothing,
  and runs the final evaluation and report (results.json, the strips).
- default: configs/default.py's train step (the main job's model, clip and
  batch) in float32 and bf16, against the CPU figure in bench.json.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import jax

from experiments import bench, bench_step

REPO = bench.REPO
TABLE1_ROW = '5x5-128-5x5-64-5x5-64'  # Shi et al.'s best row: 3,670.85 per sequence.
QUICK_TABLE1_ROW = '5x5-4-5x5-4-5x5-4'
# The quick run's data and loop (experiments/shi_table1.py's quick scale), steps left open.
QUICK_MM = ('data.moving_mnist.num_val=8', 'data.moving_mnist.num_test=8',
            'data.moving_mnist.train_sequences=16', 'data.moving_mnist.num_observed=2',
            'data.moving_mnist.num_future=2', 'train.batch_size=2', 'eval.batch_size=8',
            'train.eval_every=5', 'train.checkpoint_every=100000', 'train.log_every=1')
BENCH_ORDER = ('timesformer_divst_b', 'vivit_fe_b', 'lrcn_bench', 'convlstm_bench',
               'divided_bench')
FINISH_RESERVE_S = {'quick': 20.0, 'full': 60.0}  # The evaluation run after training stops.


def write(out: pathlib.Path, part: str, result: dict) -> None:
  """Atomically (re)writes OUT/parts/<part>.json: a kill mid-write leaves the last one whole."""
  path = out / 'parts' / f'{part}.json'
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix('.tmp')
  tmp.write_text(json.dumps(result, indent=1, default=str))
  os.replace(tmp, path)


def _log(*a) -> None:
  print(*a, file=sys.stderr, flush=True)


def _cpu_bench() -> dict:
  """The committed CPU bench (experiments/results/bench.json): the rows' CPU figures."""
  path = bench.RESULTS / 'bench.json'
  return json.loads(path.read_text()) if path.exists() else {}


def peak_n(quick: bool) -> int:
  if quick:
    return 256
  return 2048 if jax.devices()[0].platform == 'cpu' else 8192


def run_bench(out: pathlib.Path, deadline: float, quick: bool, dtype: str) -> None:
  cases = {**bench.cases(), **bench.paper_cases()}
  cases = {k: cases[k] for k in BENCH_ORDER}
  if quick:  # Three rows are enough to rehearse the code; each is a compile on the CPU.
    cases = {k: bench.quick(c) for k, c in list(cases.items())[:3]}
  peak = bench_step.Peak(dtype, n=peak_n(quick))
  cpu_bench = _cpu_bench()
  cpu_rows = {r['key']: r for r in cpu_bench.get('table', []) if 'step_s' in r}
  result = {'machine': bench.machine(), 'dtype': dtype, 'rows': [], 'peak': {}}
  for key, case in cases.items():
    left = deadline - time.time()
    row = {'key': key, 'name': case.name, 'shape': case.shape, 'batch_size': case.batch_size}
    if left < (3 if quick else 15):
      result['rows'].append({**row, 'skipped': f'the share was spent ({left:.0f} s left)'})
      continue
    try:
      step = bench_step.build(case.with_overrides(f'model.dtype={dtype}'))
      measured = bench_step.measure(step, peak, steps=3 if quick else 10, budget_s=left / 4,
                                    forward_check=not quick)
      row.update(measured)
      row['bytes_in_use'] = (step.mesh.devices.flat[0].memory_stats() or {}).get('bytes_in_use')
      del step
    except Exception as e:  # One broken row must not lose the others.
      row['error'] = f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'
    if key in cpu_rows:
      cpu = cpu_rows[key]
      row['cpu'] = {'step_s': cpu['step_s'], 'mfu': cpu['mfu'], 'dtype': cpu.get('dtype'),
                    'machine': cpu_bench.get('machine')}
    _log(f"  {case.name:28s} {case.shape:45s} " + (
        f"{row['step_s'] * 1e3:9.1f} ms  MFU {row['mfu']:.2f}" if 'step_s' in row
        else row.get('error', '')))
    result['rows'].append(row)
    result['peak'] = {'n': peak.n, 'dtype': str(peak.dtype), 'median': peak.median,
                      'samples': len(peak.samples)}
    write(out, 'bench', result)
  write(out, 'bench', result)


def run_default(out: pathlib.Path, deadline: float, quick: bool) -> None:
  case = bench_step.Case('LRCN (configs/default.py)', 'configs/default.py', batch_size=32,
                         shape='8x64x64 (the main job)')
  if quick:
    case = bench.quick(case)
  cpu_bench = _cpu_bench()
  cpu = cpu_bench.get('input_vs_compute', {})
  result = {'machine': bench.machine(), 'rows': [],
            'cpu': {'steps_per_s': cpu.get('best_steps_per_s', {}).get('step_alone'),
                    'batch_size': cpu.get('batch_size'), 'machine': cpu_bench.get('machine')}}
  for dtype in ('float32', 'bfloat16'):
    if deadline - time.time() < 5:
      result['rows'].append({'dtype': dtype, 'skipped': 'the share was spent'})
      continue
    step = bench_step.build(case.with_overrides(f'model.dtype={dtype}'))
    step.compile()
    timing = bench_step.time_steps(step, None, steps=5 if quick else 30,
                                   budget_s=(deadline - time.time()) / 3)
    times = sorted(timing['step_times_s'])
    median = times[len(times) // 2]
    result['rows'].append({'dtype': dtype, 'batch_size': case.batch_size, 'step_s': median,
                           'steps_per_s': 1 / median, 'compile_s': step.compile_s,
                           'steps': timing['steps']})
    _log(f'  default config, {dtype}: {1 / median:.2f} steps/s')
    write(out, 'default', result)
  write(out, 'default', result)


def _saved_step(log_text: str) -> int | None:
  found = re.findall(r'saved step (\d+)', log_text)
  return int(found[-1]) if found else None


def run_moving_mnist(out: pathlib.Path, deadline: float, quick: bool, workdir: pathlib.Path,
                     dtype: str) -> None:
  """Trains the paper's row until the share's training part ends, then evaluates it."""
  row = QUICK_TABLE1_ROW if quick else TABLE1_ROW
  flags = [f'--config.model.dtype={dtype}', '--config.train.progress_bar=false']
  if quick:
    flags += [f'--config.{o}' for o in QUICK_MM]
  shutil.rmtree(workdir, ignore_errors=True)  # Never resume someone else's run.
  workdir.mkdir(parents=True)
  command = [sys.executable, '-m', 'vidjax.main', '--config',
             f'configs/moving_mnist_convlstm.py:{row}', '--workdir', str(workdir), *flags]
  result = {'row': f'ConvLSTM(5x5)-{row}', 'paper': 3670.85, 'dtype': dtype,
            'command': ' '.join(['python', *command[1:]]).replace(str(workdir), 'WORKDIR')}
  reference = bench.RESULTS / 'moving_mnist_convlstm' / 'results.json'
  if reference.exists():
    cpu = json.loads(reference.read_text())
    result['cpu'] = {k: cpu[k] for k in ('row_name', 'test_bce_per_sequence',
                                         'test_3digits_bce_per_sequence', 'step', 'wall_seconds')}
  stop_training_at = deadline - FINISH_RESERVE_S['quick' if quick else 'full']
  begin = time.time()
  with open(workdir / 'train.log', 'w') as log:
    proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    while proc.poll() is None:
      # --quick stops at the first logged step: it rehearses the path, not the training.
      if time.time() >= stop_training_at or (
          quick and re.search(r'step \d+/\d+:', (workdir / 'train.log').read_text())):
        proc.send_signal(signal.SIGTERM)  # Finishes the step, saves it, exits 75.
        proc.wait()
        break
      time.sleep(0.5)
  text = (workdir / 'train.log').read_text()
  result['train_wall_s'] = time.time() - begin
  result['train_exit'] = proc.returncode
  steps = _saved_step(text)
  if proc.returncode == 0:
    steps = json.loads((workdir / 'results.json').read_text())['step']
  elif steps is None:
    result['error'] = ('no training step finished within the share: ' +
                       (text.strip().splitlines() or ['(no output)'])[-1][:300])
    write(out, 'moving_mnist', result)
    return
  result['steps'] = steps
  _log(f'  moving mnist: trained {steps} steps in {result["train_wall_s"]:.0f} s')
  write(out, 'moving_mnist', result)
  if proc.returncode != 0:  # Resume at the saved step with nothing left to train: evaluate.
    with open(workdir / 'evaluate.log', 'w') as log:
      done = subprocess.run(command + [f'--config.train.num_steps={steps}'], cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
      tail = (workdir / 'evaluate.log').read_text().strip().splitlines() or ['(no output)']
      result['error'] = f'the evaluation run failed (exit {done.returncode}): {tail[-1][:300]}'
      write(out, 'moving_mnist', result)
      return
  r = json.loads((workdir / 'results.json').read_text())
  result.update({k: r[k] for k in ('num_params', 'gflops_per_clip', 'best_step',
                                   'test_bce_per_sequence', 'test_3digits_bce_per_sequence',
                                   'test_ssim', 'test_num_sequences')})
  result['baselines'] = {name: v['bce_per_sequence'] for name, v in r['test_baselines'].items()}
  result['wall_s'] = time.time() - begin
  strip = workdir / 'predictions_test.png'
  if strip.exists():
    shutil.copy(strip, out / 'predictions_test.png')
    result['strip'] = 'predictions_test.png'
  write(out, 'moving_mnist', result)
