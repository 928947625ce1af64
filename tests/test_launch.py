"""The launch scripts, which cannot reach a TPU or a cluster here: their commands.

`--dry-run` prints every command in order; the tests read them back. With a
fake `gcloud` (or `srun`, `python`) first on PATH, the scripts also run for
real, which shows the VM is deleted after a failure and after Ctrl-C, and
that each SLURM task gets its own --process_id.
"""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO

VIDJAX_ARGS = ['--config', 'configs/default.py', '--workdir', '/mnt/shared/runs/v4-32',
               '--config.train.batch_size=256', '--config.model.lrcn.cnn_features=(8,16)']
TPU = ['gcloud', 'compute', 'tpus', 'tpu-vm']

sys.path.insert(0, str(REPO / 'launch'))
import tpu_vm  # noqa: E402


def _fake(bin_dir, name, body):
  path = bin_dir / name
  path.write_text(f'#!{sys.executable}\nimport json, os, sys, time\n{body}\n')
  path.chmod(0o755)
  return path


@pytest.fixture
def fake_gcloud(tmp_path):
  """A gcloud that records its arguments; FAKE_GCLOUD_RUN=fail|sleep for the vidjax step."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  log = tmp_path / 'gcloud.jsonl'
  _fake(bin_dir, 'gcloud', f'''
with open({str(log)!r}, 'a') as f:
  f.write(json.dumps(sys.argv[1:]) + '\\n')
if any('vidjax.main' in a for a in sys.argv):
  if os.environ.get('FAKE_GCLOUD_RUN') == 'fail':
    sys.exit(3)
  if os.environ.get('FAKE_GCLOUD_RUN') == 'sleep':
    time.sleep(60)
''')
  env = {**os.environ, 'PATH': f'{bin_dir}:{os.environ["PATH"]}'}
  return env, log


def _calls(log):
  return [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []


def _tpu_vm(*args, env, **kwargs):
  return subprocess.run(['bash', str(REPO / 'launch' / 'tpu_vm.sh'), *args], env=env,
                        capture_output=True, text=True, timeout=60, **kwargs)


def test_tpu_dry_run_for_a_v4_32_pod_slice(fake_gcloud):
  env, log = fake_gcloud
  done = _tpu_vm('--name', 'vj', '--zone', 'us-central2-b', '--accelerator-type', 'v4-32',
                 '--nfs', '10.0.0.2:/vidjax', '--dry-run', '--', *VIDJAX_ARGS, env=env)
  assert done.returncode == 0, done.stderr
  assert not _calls(log)  # Nothing ran.
  header, *lines = done.stdout.splitlines()
  assert header == '# v4-32: 4 worker(s); commands in order:'
  commands = [shlex.split(line) for line in lines]

  create, *middle, run, delete = commands
  assert create[:6] == [*TPU, 'create', 'vj']
  assert {'--zone=us-central2-b', '--accelerator-type=v4-32',
          '--version=tpu-ubuntu2204-base'} <= set(create)
  assert delete == [*TPU, 'delete', 'vj', '--zone=us-central2-b', '--quiet']
  # Every remote command goes to all workers; the code gets there before the install.
  remote = [c for c in commands if c[4] in ('ssh', 'scp')]
  assert all('--worker=all' in c for c in remote)
  scripts = [c[c.index('--command') + 1] for c in remote if c[4] == 'ssh']
  copy = next(i for i, s in enumerate(scripts) if 'tar -xzf vidjax.tar.gz' in s)
  jax_version = re.search(r'^jax==(\S+)', (REPO / 'requirements.txt').read_text(), re.M).group(1)
  install = next(i for i, s in enumerate(scripts)
                 if f'pip install -q -r requirements.txt "jax[tpu]=={jax_version}"' in s)
  mount = next(i for i, s in enumerate(scripts) if 'mount -t nfs 10.0.0.2:/vidjax' in s)
  assert copy < install < mount < len(scripts) - 1
  assert commands.index(create) == 0 and ['tar', '-czf'] == commands[1][:2]
  # The run: the very vidjax command line given, on every worker, no per-host flags.
  assert run[4:8] == ['ssh', 'vj', '--zone=us-central2-b', '--worker=all']
  script = shlex.split(run[run.index('--command') + 1])
  assert script[:3] == ['cd', 'vidjax', '&&']
  assert script[3:] == ['.venv/bin/python', '-m', 'vidjax.main', *VIDJAX_ARGS]


def test_tpu_dry_run_with_a_git_repo_and_fetch(fake_gcloud):
  env, _ = fake_gcloud
  done = _tpu_vm('--name', 'vj', '--zone', 'europe-west4-a', '--accelerator-type', 'v5litepod-8',
                 '--project', 'p1', '--repo', 'https://example.com/vidjax.git', '--branch', 'v1',
                 '--fetch', 'results', '--dry-run', '--', '--config', 'configs/default.py',
                 '--workdir', 'runs/v5e', env=env)
  assert done.returncode == 0, done.stderr
  assert 'warning' not in done.stderr  # One host: any workdir will do.
  commands = [shlex.split(l) for l in done.stdout.splitlines()[1:]]
  assert '--version=v2-alpha-tpuv5-lite' in commands[0] and '--project=p1' in commands[0]
  clone = commands[1][commands[1].index('--command') + 1]
  assert 'git clone --depth=1 --branch=v1 https://example.com/vidjax.git vidjax' in clone
  assert commands[-2] == [*TPU, 'scp', '--recurse', 'vj:vidjax/runs/v5e', 'results',
                          '--zone=europe-west4-a', '--project=p1', '--worker=0']
  assert commands[-1][4] == 'delete'


def test_a_pod_without_a_shared_directory_is_warned_about(fake_gcloud):
  env, _ = fake_gcloud
  done = _tpu_vm('--name', 'vj', '--zone', 'z', '--accelerator-type', 'v4-32', '--dry-run', '--',
                 '--config', 'configs/default.py', '--workdir', 'runs/x', env=env)
  assert 'must be one directory they all share' in done.stderr


@pytest.mark.parametrize('accelerator, hosts', [('v2-8', 1), ('v3-32', 4), ('v4-8', 1),
                                                ('v4-32', 4), ('v5p-128', 16), ('v5litepod-8', 1),
                                                ('v5litepod-16', 4), ('v6e-256', 64),
                                                ('tpu7x-8', None)])
def test_workers_per_slice(accelerator, hosts):
  assert tpu_vm.workers(accelerator) == hosts


def test_the_vm_is_deleted_after_a_failed_run(fake_gcloud):
  env, log = fake_gcloud
  done = _tpu_vm('--name', 'vj', '--zone', 'z', '--accelerator-type', 'v4-8', '--repo',
                 'https://example.com/vidjax.git', '--', *VIDJAX_ARGS,
                 env={**env, 'FAKE_GCLOUD_RUN': 'fail'})
  assert done.returncode == 3
  verbs = [c[3] for c in _calls(log)]
  assert verbs == ['create', 'ssh', 'ssh', 'ssh', 'delete']  # Create, clone, install, run, delete.
  assert 'failed (exit code 3)' in done.stderr


def test_ctrl_c_deletes_the_vm(fake_gcloud):
  env, log = fake_gcloud
  launcher = subprocess.Popen(
      ['bash', str(REPO / 'launch' / 'tpu_vm.sh'), '--name', 'vj', '--zone', 'z',
       '--accelerator-type', 'v4-8', '--repo', 'https://example.com/vidjax.git', '--', *VIDJAX_ARGS],
      env={**env, 'FAKE_GCLOUD_RUN': 'sleep'}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)
  try:
    deadline = time.monotonic() + 30
    while not any('vidjax.main' in ' '.join(c) for c in _calls(log)):
      assert time.monotonic() < deadline and launcher.poll() is None, 'the run step never started'
      time.sleep(0.1)
    launcher.send_signal(signal.SIGINT)
    _, err = launcher.communicate(timeout=20)
  finally:
    if launcher.poll() is None:
      launcher.kill()
  assert launcher.returncode == 130, err
  assert _calls(log)[-1][:4] == ['compute', 'tpus', 'tpu-vm', 'delete']


# --------------------------------------------------------------------- SLURM

def test_slurm_dry_run_prints_the_srun_line():
  env = {**os.environ, 'SLURM_JOB_NODELIST': 'gpu[017-020],cpu1', 'SLURM_JOB_NUM_NODES': '4',
         'SLURM_JOB_ID': '123456', 'PATH': '/usr/bin:/bin'}  # No scontrol: parsed here.
  done = subprocess.run(['bash', str(REPO / 'launch' / 'slurm_gpu.sbatch'), '--dry-run',
                         '--config', 'configs/default.py', '--workdir', '/shared/runs/gpu'],
                        env=env, capture_output=True, text=True, timeout=30)
  assert done.returncode == 0, done.stderr
  assert done.stdout.strip() == (
      "srun --nodes=4 --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c 'exec python -m vidjax.main "
      "--config configs/default.py --workdir /shared/runs/gpu "
      "--coordinator_address=gpu017:62016 --num_processes=4 --process_id=$SLURM_PROCID'")


def test_slurm_tasks_each_get_their_process_id(tmp_path):
  """Through a fake srun (runs each task) and a fake python (records its argv)."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  argv_log = tmp_path / 'argv.jsonl'
  _fake(bin_dir, 'srun', '''
import subprocess
nodes = int(next(a for a in sys.argv if a.startswith('--nodes=')).split('=')[1])
task = sys.argv[sys.argv.index('bash'):]
for rank in range(nodes):
  subprocess.run(task, env={**os.environ, 'SLURM_PROCID': str(rank)}, check=True)
''')
  python = _fake(bin_dir, 'python', f'''
with open({str(argv_log)!r}, 'a') as f:
  f.write(json.dumps(sys.argv[1:]) + '\\n')
''')
  env = {**os.environ, 'PATH': f'{bin_dir}:/usr/bin:/bin', 'SLURM_JOB_NODELIST': 'n[3-4]',
         'SLURM_JOB_NUM_NODES': '2', 'SLURM_JOB_ID': '7', 'PYTHON': str(python),
         'SLURM_SUBMIT_DIR': str(tmp_path)}
  args = ['--config', 'configs/default.py', '--workdir', '/shared/run one',
          '--config.model.lrcn.cnn_features=(8,16)']
  done = subprocess.run(['bash', str(REPO / 'launch' / 'slurm_gpu.sbatch'), *args], env=env,
                        capture_output=True, text=True, timeout=30)
  assert done.returncode == 0, done.stderr
  runs = [json.loads(l) for l in argv_log.read_text().splitlines()]
  assert runs == [['-m', 'vidjax.main', *args, '--coordinator_address=n3:61447',
                   '--num_processes=2', f'--process_id={rank}'] for rank in (0, 1)]
