"""Stop signals to the whole process group, dead decode workers, orphans: never a hang.

A cluster's preemption notice reaches every process of the job, the decode
workers too. These tests send it as a cluster does (`os.killpg`), kill a
worker alone (as the OOM killer would), and kill the main process with
SIGKILL, on the tiny embedded dataset with one decode worker process.
"""
import os
import pathlib
import re
import signal
import sys

import pytest

from tests.conftest import REPO, tiny_flags

sys.path.insert(0, str(REPO / 'experiments'))
import preemption_moments as moments  # noqa: E402


def _flags(root, workdir, steps=20):
  return ['--config', 'configs/default.py', '--workdir', str(workdir), *tiny_flags(root),
          '--config.data.num_workers=1', f'--config.train.num_steps={steps}',
          '--config.train.log_every=1', '--config.train.checkpoint_every=4']


def _decode_workers(main_pid: int) -> list[int]:
  """The main process's spawned children that decode (not multiprocessing's resource tracker)."""
  workers = []
  for pid in moments.live_processes(ppid=main_pid):
    try:
      command = pathlib.Path(f'/proc/{pid}/cmdline').read_bytes().decode(errors='replace')
    except OSError:
      continue
    if 'spawn_main' in command and 'resource_tracker' not in command:
      workers.append(pid)
  return workers


def _wait_for_workers(run, timeout=60):
  import time
  deadline = time.time() + timeout
  while time.time() < deadline and run.process.poll() is None:
    found = _decode_workers(run.process.pid)
    if found:
      return found
    time.sleep(0.1)
  raise AssertionError('no decode worker process appeared')


def test_group_sigterm_at_three_moments_stops_cleanly_and_resumes_exactly(tiny_actions_root,
                                                                          tmp_path):
  """Start-up (nothing to save), mid-epoch and an evaluation: exit 75 fast, then bitwise resume."""
  result = moments.run_moments(moments.QUICK, tmp_path, tiny_actions_root)
  for row in result['moments']:
    assert row['exit_code'] == moments.EXIT_PREEMPTED, row
    assert row['seconds_to_exit'] < moments.LIMIT_S, row
    assert row['message'].startswith('preempted'), row
    assert not row['group_left_running'], row
  assert 'nothing needed saving' in result['moments'][0]['message']
  assert 'saved step' in result['moments'][1]['message']
  assert result['params_bitwise_equal'] and result['opt_state_bitwise_equal']
  assert result['data_position_equal'] and all(result['metrics_equal'].values())
  assert result['all_ok']


def test_a_killed_decode_worker_saves_the_step_and_stops_with_one_line(tiny_actions_root,
                                                                       tmp_path):
  workdir = tmp_path / 'run'
  run = moments.Run(_flags(tiny_actions_root, workdir, steps=200))
  assert run.wait_for(r'step 3/\d+:', tiny_actions_root)
  worker = _wait_for_workers(run)[0]
  os.kill(worker, signal.SIGKILL)  # As the out-of-memory killer would.
  code, seconds = run.finish(timeout=90)
  assert code == moments.EXIT_PREEMPTED and seconds < 30, run.lines[-20:]
  last = run.lines[-1]
  assert re.fullmatch(r'a decode worker process was killed by SIGKILL \(the out-of-memory killer '
                      r'sends it\): saved step \d+ to .*; run the same command to resume', last), last
  saved = int(last.split('saved step ')[1].split()[0])
  assert (workdir / 'checkpoints' / str(saved)).is_dir()
  assert not [l for l in run.lines if l.startswith('Traceback')]
  # The same command goes on from there.
  again = moments.Run([*_flags(tiny_actions_root, workdir, steps=saved + 2)])
  code, _ = again.finish(timeout=240)
  assert code == 0, again.lines[-20:]
  assert any('resumed from' in l and f'at step {saved}' in l for l in again.lines)
  # Neither the stop nor the normal exit with a decode worker warns of leaked shared memory;
  # the workdir's console.log holds both runs, the stop's one line included.
  assert not [l for l in run.lines + again.lines if 'leaked shared_memory' in l]
  log = (workdir / 'console.log').read_text()
  assert log.count('\n=== ') + log.startswith('=== ') == 2 and last in log


@pytest.mark.skipif(not pathlib.Path('/proc/self/stat').exists(), reason='reads /proc')
def test_no_worker_outlives_a_kill_9_of_its_run(tiny_actions_root, tmp_path):
  run = moments.Run(_flags(tiny_actions_root, tmp_path / 'run', steps=200))
  assert run.wait_for(r'step 2/\d+:', tiny_actions_root)
  children = _wait_for_workers(run) + moments.live_processes(ppid=run.process.pid)
  run.process.send_signal(signal.SIGKILL)
  run.finish(timeout=30)
  import time
  deadline = time.time() + 5
  while time.time() < deadline and set(children) & set(moments.live_processes(pgid=run.process.pid)):
    time.sleep(0.1)
  left = set(children) & set(moments.live_processes(pgid=run.process.pid))
  assert not left, f'processes outlived their run by 5 s: {sorted(left)}'
