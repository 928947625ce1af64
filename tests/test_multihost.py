"""Two processes train exactly as one: the real CLI under jax.distributed on CPU.

Process 0 and 1 each simulate 2 CPU devices and meet through
`--coordinator_address localhost:PORT`; a single process with 4 devices
trains on the same global batches from the same seed. The command lines
differ only in those flags, plus FSDP parameters in the 2-process run (so
each process writes its own shards of the checkpoint). The loss of every
step must agree to float tolerance, and the multi-view evaluation of a
split of 11 videos (6 on one process, 5 on the other, padded) must count
each video once, with the same per-video probabilities. Both checkpoints
then restore here, onto 8 devices, to the same parameters.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from tests.conftest import REPO, tiny_config, tiny_flags
from vidjax import checkpoint, parallel, steps
from vidjax.preemption import PREEMPTED_EXIT_CODE
from vidjax.models import build_model

STEPS = 4
TIMEOUT_S = 240


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _start(args, devices, log_path, new_session=False):
  """`python -m vidjax.main ARGS` on `devices` simulated CPU devices, output to a file.

  With `new_session` the process leads its own process group, as one host of a job does.
  """
  env = {**os.environ, 'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}',
         'JAX_PLATFORMS': 'cpu', 'PYTHONUNBUFFERED': '1'}
  log = open(log_path, 'w')
  process = subprocess.Popen([sys.executable, '-m', 'vidjax.main', *map(str, args)], cwd=REPO,
                             env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                             start_new_session=new_session)
  process.log_path = log_path
  log.close()
  return process


def _wait_all(processes, timeout):
  """Waits for every process; on a failure or the timeout kills the rest and fails."""
  deadline = time.monotonic() + timeout
  timed_out = False
  try:
    while any(p.poll() is None for p in processes):
      if any(p.poll() not in (None, 0) for p in processes):
        break
      if time.monotonic() > deadline:
        timed_out = True
        break
      time.sleep(0.2)
  finally:
    killed = [p for p in processes if p.poll() is None]
    for p in killed:
      p.kill()
      p.wait()
  failures = []
  for p in processes:
    if p.returncode == 0:
      continue
    if p in killed:
      reason = f'killed after {timeout} s' if timed_out else 'killed: another process failed'
    else:
      reason = f'exit code {p.returncode}'
    tail = '\n'.join(open(p.log_path).read().splitlines()[-25:])
    failures.append(f'--- {p.log_path.name} ({reason}), last lines:\n{tail}')
  if failures:
    pytest.fail('\n'.join(failures))


def _history(workdir):
  rows = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return {k: [(r['step'], r[k]) for r in rows if k in r] for k in {k for r in rows for k in r}}


@pytest.fixture(scope='module')
def uneven_root(tiny_actions_root, tmp_path_factory):
  """The tiny set as a CSV dataset with 11 eval and 11 test videos."""
  root = tmp_path_factory.mktemp('uneven') / 'data'
  shutil.copytree(tiny_actions_root, root)
  for split in ('val', 'test'):
    lines = (root / f'{split}.csv').read_text().splitlines()
    (root / f'{split}.csv').write_text('\n'.join(lines[:-1]) + '\n')
  return root


def test_two_processes_train_and_evaluate_like_one(uneven_root, tmp_path):
  # single_frame: the smallest model to compile; the test is about the parallelism.
  common = ['--config', 'configs/default.py', *tiny_flags(uneven_root), '--config.data.dataset=csv',
            '--config.model.name=single_frame', '--config.model.single_frame.cnn_features=(8,16)',
            '--config.model.single_frame.cnn_embed_dim=32',
            f'--config.train.num_steps={STEPS}', '--config.train.log_every=1',
            '--config.train.eval_every=1000', '--config.data.eval_num_clips=2']
  port = _free_port()
  one = _start([*common, '--workdir', tmp_path / 'one'], 4, tmp_path / 'one.log')
  two = [_start([*common, '--workdir', tmp_path / 'two', '--config.mesh.param_sharding=fsdp',
                 '--coordinator_address', f'localhost:{port}', '--num_processes', 2,
                 '--process_id', i], 2,
                tmp_path / f'two_{i}.log') for i in (0, 1)]
  _wait_all([one, *two], TIMEOUT_S)

  single, multi = _history(tmp_path / 'one'), _history(tmp_path / 'two')
  # Process 0 alone writes the history: each step once.
  assert [s for s, _ in multi['train/loss']] == list(range(1, STEPS + 1))
  np.testing.assert_allclose([v for _, v in multi['train/loss']],
                             [v for _, v in single['train/loss']], rtol=1e-5)
  assert len({v for _, v in single['train/loss']}) > 1  # It really trained.
  for key in ('eval/loss', 'test/loss', 'eval/top1', 'test/top1', 'test/top5'):
    np.testing.assert_allclose(multi[key][-1][1], single[key][-1][1], rtol=1e-5, err_msg=key)
  results = {name: json.loads((tmp_path / name / 'results.json').read_text())
             for name in ('one', 'two')}
  assert results['two']['processes'] == 2 and results['two']['devices'] == 4
  for split in ('eval', 'test'):  # 11 videos x 2 views over 2 processes: each video once.
    assert results['two'][f'{split}_num_videos'] == results['one'][f'{split}_num_videos'] == 11

  # Both processes wrote their share of the checkpoint; only process 0 logs progress.
  data = tmp_path / 'two' / 'checkpoints' / str(STEPS) / 'data'
  assert sorted(p.name for p in data.glob('process_*')) == ['process_0-of-2.json',
                                                            'process_1-of-2.json']
  log0, log1 = (open(p.log_path).read() for p in two)
  assert 'process 0 of 2 up' in log0 and f'step {STEPS}/{STEPS}: loss' in log0
  assert 'process 1 of 2 up' in log1
  for quiet in ('step 1/', 'eval: top1', 'model single_frame', 'epoch', 'wall time'):
    assert quiet not in log1, quiet

  # Each run's final checkpoint restores in this process (1 process, 8 devices).
  config = tiny_config(uneven_root, **{'model.name': 'single_frame', 'train.num_steps': STEPS})
  model = build_model(config.model, 12)
  tx, _ = steps.make_optimizer(config.optim, config.train.num_steps)
  _, abstract = steps.abstract_state(config, model, tx, parallel.make_mesh())
  params = {}
  for name in ('one', 'two'):
    ckpt = checkpoint.Checkpointer(tmp_path / name)
    state, step = ckpt.restore_latest(abstract)
    ckpt.close()
    assert step == STEPS
    params[name] = jax.device_get(state.params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               params['two'], params['one'])


def test_group_sigterm_on_one_host_stops_both_at_the_same_step(tiny_actions_root, tmp_path):
  """SIGTERM to one process's whole group (it and its decode worker): both hosts save one step."""
  common = ['--config', 'configs/default.py', *tiny_flags(tiny_actions_root),
            '--config.model.name=single_frame', '--config.model.single_frame.cnn_features=(8,16)',
            '--config.model.single_frame.cnn_embed_dim=32', '--config.data.num_workers=1',
            '--config.train.num_steps=500', '--config.train.log_every=1',
            '--config.train.eval_every=1000', '--config.train.checkpoint_every=1000',
            '--workdir', tmp_path / 'run']
  port = _free_port()
  hosts = [_start([*common, '--coordinator_address', f'localhost:{port}', '--num_processes', 2,
                   '--process_id', i], 2, tmp_path / f'host_{i}.log', new_session=True)
           for i in (0, 1)]
  deadline = time.monotonic() + TIMEOUT_S
  while 'step 3/500' not in open(hosts[0].log_path).read():
    assert time.monotonic() < deadline and all(h.poll() is None for h in hosts), (
        open(hosts[0].log_path).read()[-2000:])
    time.sleep(0.1)
  os.killpg(hosts[1].pid, signal.SIGTERM)
  try:
    codes = [h.wait(timeout=90) for h in hosts]
  finally:
    for h in hosts:
      if h.poll() is None:
        os.killpg(h.pid, signal.SIGKILL)
  logs = [open(h.log_path).read() for h in hosts]
  assert codes == [PREEMPTED_EXIT_CODE] * 2, [l[-2000:] for l in logs]
  saved = [re.findall(r'^preempted: saved step (\d+)', l, re.M) for l in logs]
  assert saved[0] == saved[1] and len(saved[0]) == 1, saved
  assert (tmp_path / 'run' / 'checkpoints' / saved[0][0]).is_dir()
