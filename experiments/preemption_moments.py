"""SIGTERM to a run's whole process group at moments spread over its life: clean, fast, exact.

  python experiments/preemption_moments.py            # 8 moments of the default config, shortened
  python experiments/preemption_moments.py --quick    # 3 moments of a tiny run (the test's)

A cluster's preemption notice reaches every process of the job (SLURM's
scancel and time limit, systemd stopping a TPU VM, Ctrl-C in a terminal),
so the signal goes to the process group with `os.killpg`: the main process
and its decode workers together. One workdir is interrupted at each moment
in turn, in the order a run meets them -- dataset generation, start-up,
waiting for the first batch, mid-epoch, an evaluation, a checkpoint write,
the final evaluation -- each moment randomised within its phase (seeded),
and each interrupted run is the same command resuming the last one. For each
moment it records the exit code (75), the seconds from the signal to the
exit (< 60), the one line the run printed, and that no process of the group
outlived it. Then the same command runs to the end, and its final
checkpoint (parameters, optimizer state, data position) and test metrics
must equal an uninterrupted run's, bitwise. Writes
experiments/results/preemption_moments.{md,json} (--quick: under --workdir).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
RESULTS = REPO / 'experiments' / 'results'
EXIT_PREEMPTED = 75
LIMIT_S = 60.0


@dataclasses.dataclass(frozen=True)
class Moment:
  """Signal `delay` seconds (uniform in the range) after the first output line matching `after`
  (or, with `after` = 'GENERATING', after the first video of the dataset appears on disk)."""
  phase: str
  after: str
  delay: tuple[float, float]


@dataclasses.dataclass(frozen=True)
class Scale:
  flags: tuple[str, ...]
  num_steps: int
  moments: tuple[Moment, ...]


def _steps_line(step: int) -> str:
  return rf'step {step}/\d+:'


TINY_FLAGS = ('--config.data.num_frames=4', '--config.data.height=32', '--config.data.width=32',
              '--config.model.lrcn.cnn_features=(8,16)', '--config.model.lrcn.cnn_embed_dim=32',
              '--config.model.lrcn.lstm_hidden_size=16', '--config.train.batch_size=8',
              '--config.eval.batch_size=8', '--config.data.synthetic_clips_per_class=(3,1,1)')

# The evaluation comes well after the mid-epoch stop: a tiny step takes a few milliseconds, so
# the steps run between that stop's signal and its save can pass step 10.
QUICK = Scale(
    flags=(*TINY_FLAGS, '--config.train.num_steps=40', '--config.train.eval_every=20',
           '--config.train.checkpoint_every=4', '--config.train.log_every=1'),
    num_steps=40,
    moments=(Moment('start-up', r'parameters, .* GFLOPs', (0.0, 0.3)),
             Moment('mid-epoch', _steps_line(3), (0.0, 0.2)),
             Moment('evaluation', _steps_line(20), (0.1, 0.3))))

SMALL = Scale(
    flags=('--config.data.synthetic_clips_per_class=(40,10,10)', '--config.train.num_steps=300',
           '--config.train.eval_every=100', '--config.train.checkpoint_every=50',
           '--config.train.log_every=10', '--config.optim.warmup_steps=20'),
    num_steps=300,
    moments=(Moment('dataset generation', 'GENERATING', (0.2, 1.5)),
             Moment('start-up', r'parameters, .* GFLOPs', (0.0, 0.5)),
             Moment('first compile / first batch', r'parameters, .* GFLOPs', (1.0, 4.0)),
             Moment('mid-epoch', _steps_line(40), (0.0, 2.0)),
             Moment('evaluation', _steps_line(100), (0.2, 1.0)),
             Moment('checkpoint write', _steps_line(150), (0.0, 0.1)),
             Moment('mid-epoch', _steps_line(220), (0.0, 2.0)),
             Moment('final evaluation', _steps_line(300), (0.2, 1.0))))


class Run:
  """`python -m vidjax.main` in its own process group, its output lines collected as they come."""

  def __init__(self, args: list[str]):
    env = {**os.environ, 'XLA_FLAGS': '', 'JAX_PLATFORMS': 'cpu', 'PYTHONUNBUFFERED': '1'}
    self.process = subprocess.Popen([sys.executable, '-m', 'vidjax.main', *args], cwd=REPO,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, start_new_session=True)
    self.lines: list[str] = []
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.process.stdout:
      self.lines.append(line.rstrip('\n'))

  def wait_for(self, pattern: str, data_root: pathlib.Path, timeout: float = 600) -> bool:
    """True once the pattern shows (or the dataset's first video does); False if the run ended."""
    deadline = time.time() + timeout
    while time.time() < deadline:
      if pattern == 'GENERATING':
        if any((data_root / 'videos').rglob('*.mp4')) if (data_root / 'videos').exists() else False:
          return True
      elif any(re.search(pattern, line) for line in list(self.lines)):
        return True
      if self.process.poll() is not None:
        return False
      time.sleep(0.02)
    raise TimeoutError(f'{pattern!r} did not show in {timeout} s')

  def group_left(self, within_s: float = 5.0) -> list[int]:
    """Pids of the group still running (not zombies) `within_s` after the run exited."""
    deadline = time.time() + within_s
    while True:
      left = live_processes(pgid=self.process.pid)
      if not left or time.time() > deadline:
        return left
      time.sleep(0.1)

  def finish(self, timeout: float) -> tuple[int | None, float]:
    start = time.time()
    try:
      code = self.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      code = None
      os.killpg(self.process.pid, signal.SIGKILL)
      self.process.wait()
    self._reader.join(timeout=5)
    return code, time.time() - start


def live_processes(*, pgid: int | None = None, ppid: int | None = None) -> list[int]:
  """Pids (Linux /proc) in process group `pgid` or with parent `ppid`, zombies left out."""
  found = []
  for entry in pathlib.Path('/proc').iterdir():
    if not entry.name.isdigit():
      continue
    try:
      fields = (entry / 'stat').read_text().rsplit(')', 1)[1].split()
    except OSError:
      continue
    state, parent, group = fields[0], int(fields[1]), int(fields[2])
    if state != 'Z' and (group == pgid or parent == ppid):
      found.append(int(entry.name))
  return found


def _final_state(workdir: pathlib.Path):
  import orbax.checkpoint as ocp
  directory = workdir / 'checkpoints'
  step = max(int(p.name) for p in directory.iterdir() if p.name.isdigit())
  state = ocp.StandardCheckpointer().restore(directory / str(step) / 'state')
  data = json.loads((directory / str(step) / 'data' / 'process_0-of-1.json').read_text())
  return step, state, data


def _bitwise_equal(a, b) -> bool:
  import jax
  import numpy as np
  return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(np.array_equal(x, y)), a, b)))


def run_moments(scale: Scale, workdir: pathlib.Path, data_root: pathlib.Path, seed: int = 0,
                log=print) -> dict:
  """Interrupts one lineage at every moment, resumes it to the end, compares with a straight run."""
  rng = random.Random(seed)
  flags = ['--config', 'configs/default.py', f'--config.data.root={data_root}',
           '--config.train.progress_bar=false', '--config.data.num_workers=1', *scale.flags]
  interrupted = workdir / 'interrupted'
  moments = []
  for moment in scale.moments:
    run = Run([*flags, '--workdir', str(interrupted)])
    reached = run.wait_for(moment.after, data_root)
    row = {'phase': moment.phase, 'after': moment.after}
    if not reached:
      row.update(outcome='ended before the moment', exit_code=run.finish(60)[0])
      moments.append(row)
      log(f'  {moment.phase}: the run ended before the moment')
      continue
    delay = rng.uniform(*moment.delay)
    time.sleep(delay)
    progress = [l for l in run.lines if re.search(r'step \d+/\d+:', l)]
    os.killpg(run.process.pid, signal.SIGTERM)
    code, seconds = run.finish(LIMIT_S * 2)
    last = next((l for l in reversed(run.lines) if l.startswith(('preempted', 'error'))), '')
    row.update(delay_s=round(delay, 3), exit_code=code, seconds_to_exit=round(seconds, 2),
               message=last, last_logged=progress[-1].split('] ')[-1] if progress else '',
               group_left_running=run.group_left())
    row['ok'] = (code == EXIT_PREEMPTED and seconds < LIMIT_S and last.startswith('preempted')
                 and not row['group_left_running'])
    moments.append(row)
    log(f"  {moment.phase}: exit {code} in {seconds:.1f} s: {last}")
  resumed = Run([*flags, '--workdir', str(interrupted)])
  resumed_code, _ = resumed.finish(3600)
  straight = Run([*flags, '--workdir', str(workdir / 'straight')])
  straight_code, _ = straight.finish(3600)
  result = {'moments': moments, 'resumed_exit_code': resumed_code,
            'straight_exit_code': straight_code}
  if resumed_code == 0 and straight_code == 0:
    step, state, data = _final_state(interrupted)
    want_step, want_state, want_data = _final_state(workdir / 'straight')
    got = json.loads((interrupted / 'results.json').read_text())
    want = json.loads((workdir / 'straight' / 'results.json').read_text())
    result.update(
        final_step=step, straight_step=want_step,
        params_bitwise_equal=_bitwise_equal(state['params'], want_state['params']),
        opt_state_bitwise_equal=_bitwise_equal(state['opt_state'], want_state['opt_state']),
        data_position_equal=data == want_data,
        metrics_equal={k: got[k] == want[k] for k in ('test_top1', 'test_top5', 'eval_top1')},
        test_top1=got['test_top1'])
  result['all_ok'] = (all(m.get('ok') for m in moments) and result.get('params_bitwise_equal')
                      and result.get('opt_state_bitwise_equal') and result.get('data_position_equal')
                      and all(result.get('metrics_equal', {0: False}).values()))
  return result


def markdown(result: dict, command: str, seconds: float) -> str:
  rows = ['| # | phase | signal after | exit code | seconds to exit | what the run printed |',
          '|---|---|---|---|---|---|']
  for i, m in enumerate(result['moments'], 1):
    when = m.get('last_logged') or 'before the first logged step'
    rows.append(f"| {i} | {m['phase']} | {when} (+{m.get('delay_s', 0)} s) | {m.get('exit_code')} "
                f"| {m.get('seconds_to_exit', '')} | `{m.get('message', m.get('outcome', ''))}` |")
  return '\n'.join([
      '# SIGTERM to the process group at moments across a run', '',
      f'`{command}`: {seconds / 60:.1f} min on this machine (2 CPU cores, jax CPU).', '',
      *rows, '',
      f"Resumed to the end: exit {result['resumed_exit_code']}; final step "
      f"{result.get('final_step')} vs {result.get('straight_step')} uninterrupted. Parameters "
      f"bitwise equal: {result.get('params_bitwise_equal')}; optimizer state: "
      f"{result.get('opt_state_bitwise_equal')}; data position: "
      f"{result.get('data_position_equal')}; test/eval metrics equal: "
      f"{result.get('metrics_equal')}. All checks passed: {result['all_ok']}.", ''])


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--quick', action='store_true', help='3 moments of a tiny run')
  parser.add_argument('--workdir', default='', help='where the runs go (default: a temp dir)')
  parser.add_argument('--seed', type=int, default=0, help='randomises the moments')
  args = parser.parse_args()
  workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix='preemption_'))
  if workdir.exists():
    shutil.rmtree(workdir)
  workdir.mkdir(parents=True)
  scale = QUICK if args.quick else SMALL
  start = time.time()
  result = run_moments(scale, workdir, workdir / 'data' / 'synthetic_actions', args.seed)
  seconds = time.time() - start
  command = 'python experiments/preemption_moments.py' + (' --quick' if args.quick else '')
  out = workdir if args.quick else RESULTS
  (out / 'preemption_moments.json').write_text(json.dumps(
      {'command': command, 'wall_seconds': seconds, **result}, indent=2))
  (out / 'preemption_moments.md').write_text(markdown(result, command, seconds))
  print(markdown(result, command, seconds))
  sys.exit(0 if result['all_ok'] else 1)


if __name__ == '__main__':
  main()
