"""Faults a long run meets: preemption, kill -9, broken checkpoints, NaNs.

Each test compares against an uninterrupted run of the same config: resume
must be bitwise exact on CPU (same data, RNG stream, step and schedule).
"""
import json
import logging
import pathlib
import random
import shutil
import signal
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from tests.conftest import run_vidjax, tiny_config, tiny_flags
from vidjax import train
from vidjax.preemption import PREEMPTED_EXIT_CODE

STEPS = 12


def _flags(root, workdir):
  return ['--config', 'configs/default.py', '--workdir', workdir, *tiny_flags(root),
          f'--config.train.num_steps={STEPS}', '--config.train.checkpoint_every=2',
          '--config.train.log_every=1']


def _final_checkpoint(workdir: pathlib.Path):
  """The state and data position of the newest step, as saved (no target)."""
  directory = workdir / 'checkpoints'
  step = max(int(p.name) for p in directory.iterdir() if p.name.isdigit())
  state = ocp.StandardCheckpointer().restore(directory / str(step) / 'state')
  data = (directory / str(step) / 'data' / 'process_0-of-1.json').read_text()
  return step, state, json.loads(data)


def _assert_bitwise_equal(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.fixture(scope='module')
def uninterrupted(tiny_actions_root, tmp_path_factory):
  workdir = tmp_path_factory.mktemp('uninterrupted')
  result = run_vidjax(*_flags(tiny_actions_root, workdir))
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def _wait_for_step(workdir: pathlib.Path, step: int, process, timeout=240):
  """Blocks until the run has logged `step` (or ended)."""
  history = workdir / 'metrics.jsonl'
  deadline = time.time() + timeout
  while time.time() < deadline and process.poll() is None:
    if history.exists() and any(json.loads(l).get('step', 0) >= step
                                for l in history.read_text().splitlines() if l.strip()):
      return
    time.sleep(0.05)


def test_kill_9_at_random_steps_then_resume_is_bitwise_exact(uninterrupted, tiny_actions_root,
                                                             tmp_path):
  workdir = tmp_path / 'killed'
  kills = random.Random(0).sample(range(2, STEPS - 1), 3)
  for kill_after in sorted(kills):
    process = run_vidjax(*_flags(tiny_actions_root, workdir), wait=False)
    _wait_for_step(workdir, kill_after, process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
  result = run_vidjax(*_flags(tiny_actions_root, workdir))
  assert result.returncode == 0, result.stderr[-3000:]
  step, state, data = _final_checkpoint(workdir)
  want_step, want_state, want_data = _final_checkpoint(uninterrupted)
  assert step == want_step == STEPS
  _assert_bitwise_equal(state['params'], want_state['params'])
  _assert_bitwise_equal(state['opt_state'], want_state['opt_state'])
  assert data == want_data
  got = json.loads((workdir / 'results.json').read_text())
  want = json.loads((uninterrupted / 'results.json').read_text())
  for key in ('test_top1', 'test_top5', 'eval_top1', 'eval_top5'):
    assert got[key] == want[key], key


def test_sigterm_saves_exits_75_and_resumes_exactly(uninterrupted, tiny_actions_root, tmp_path):
  workdir = tmp_path / 'preempted'
  process = run_vidjax(*_flags(tiny_actions_root, workdir), wait=False)
  _wait_for_step(workdir, 3, process)
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == PREEMPTED_EXIT_CODE, stderr[-3000:]
  message = [l for l in stderr.splitlines() if l.startswith('preempted:')]
  assert len(message) == 1 and 'run the same command to resume' in message[0]
  saved_step = int(message[0].split('saved step ')[1].split()[0])
  assert 3 <= saved_step < STEPS
  assert (workdir / 'checkpoints' / str(saved_step)).is_dir()
  result = run_vidjax(*_flags(tiny_actions_root, workdir))
  assert result.returncode == 0, result.stderr[-3000:]
  _, state, _ = _final_checkpoint(workdir)
  _, want_state, _ = _final_checkpoint(uninterrupted)
  _assert_bitwise_equal(state['params'], want_state['params'])


def _damage_truncate(step_dir: pathlib.Path):
  files = sorted((p for p in (step_dir / 'state').rglob('*') if p.is_file() and p.stat().st_size > 100),
                 key=lambda p: -p.stat().st_size)
  files[0].write_bytes(files[0].read_bytes()[: files[0].stat().st_size // 2])


def _damage_delete_arrays(step_dir: pathlib.Path):
  for path in (step_dir / 'state').rglob('*'):
    if path.is_file() and ('ocdbt' in str(path) or path.parent.name == 'd'):
      path.unlink()


def _damage_empty_dir(step_dir: pathlib.Path):
  shutil.rmtree(step_dir)
  step_dir.mkdir()


@pytest.fixture(scope='module')
def six_steps(tiny_actions_root, tmp_path_factory):
  """(params of an uninterrupted 6-step run, a workdir with checkpoints 3 and 6): trained once."""
  tmp = tmp_path_factory.mktemp('six_steps')
  config = tiny_config(tiny_actions_root, **{'train.num_steps': 6, 'train.checkpoint_every': 3})
  straight = train.train_and_evaluate(config, tmp / 'straight')
  assert sorted(p.name for p in (tmp / 'straight' / 'checkpoints').iterdir()) == ['3', '6']
  return jax.device_get(straight['state'].params), tmp / 'straight'


@pytest.mark.parametrize('damage', [_damage_truncate, _damage_delete_arrays, _damage_empty_dir])
def test_broken_newest_checkpoint_falls_back_to_the_newest_good_one(damage, six_steps,
                                                                     tiny_actions_root,
                                                                     tmp_path, caplog):
  straight_params, template = six_steps
  config = tiny_config(tiny_actions_root, **{'train.num_steps': 6, 'train.checkpoint_every': 3})
  workdir = tmp_path / 'broken'
  shutil.copytree(template, workdir)
  damage(workdir / 'checkpoints' / '6')
  with caplog.at_level(logging.INFO, logger='vidjax'):
    resumed = train.train_and_evaluate(config, workdir)
  broken_lines = [r.message for r in caplog.records if 'cannot be restored' in r.message]
  assert len(broken_lines) == 1 and '/checkpoints/6 cannot be restored' in broken_lines[0]
  assert any('resumed from' in r.message and 'at step 3' in r.message for r in caplog.records)
  assert (workdir / 'checkpoints_broken' / '6').exists()  # Kept, not deleted.
  _assert_bitwise_equal(jax.device_get(resumed['state'].params), straight_params)


def test_left_over_tmp_directory_is_ignored(tiny_actions_root, tmp_path, caplog):
  config = tiny_config(tiny_actions_root, **{'train.num_steps': 6, 'train.checkpoint_every': 3,
                                             'train.stop_after_steps': 3})
  train.train_and_evaluate(config, tmp_path)
  # What a machine that vanished mid-save leaves behind.
  shutil.copytree(tmp_path / 'checkpoints' / '3', tmp_path / 'checkpoints' / '6.orbax-checkpoint-tmp-1')
  with caplog.at_level(logging.INFO, logger='vidjax'):
    final = train.train_and_evaluate(tiny_config(tiny_actions_root, **{'train.num_steps': 6,
                                                                       'train.checkpoint_every': 3}),
                                     tmp_path)
  assert any('resumed from' in r.message and 'at step 3' in r.message for r in caplog.records)
  assert int(final['state'].step) == 6


def test_injected_nan_stops_at_its_step_and_keeps_the_last_good_checkpoint(tiny_actions_root, tmp_path):
  config = tiny_config(tiny_actions_root, **{'train.num_steps': 8, 'train.checkpoint_every': 2,
                                             'train.log_every': 4, 'train.inject_nan_at_step': 4})
  with pytest.raises(train.NonFiniteError, match='non-finite loss at step 4;'):
    train.train_and_evaluate(config, tmp_path)
  steps = sorted(int(p.name) for p in (tmp_path / 'checkpoints').iterdir() if p.name.isdigit())
  assert steps == [2]  # Nothing was saved past the NaN.
  state = ocp.StandardCheckpointer().restore(tmp_path / 'checkpoints' / '2' / 'state')
  assert int(state['nonfinite_step']) == -1
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state['params']))


def test_injected_nan_is_skipped_when_asked(tiny_actions_root, tmp_path):
  config = tiny_config(tiny_actions_root, **{'train.num_steps': 6, 'train.inject_nan_at_step': 2,
                                             'train.on_nonfinite': 'skip'})
  final = train.train_and_evaluate(config, tmp_path)
  assert int(final['state'].nonfinite_count) == 1 and int(final['state'].step) == 6
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(final['state'].params))


@pytest.fixture
def small_disk(tmp_path):
  """A 4 MB tmpfs: a real 'No space left on device' (needs root and mount)."""
  import subprocess
  mount = tmp_path / 'small_disk'
  mount.mkdir()
  done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4M', 'tmpfs', str(mount)],
                        capture_output=True, text=True)
  if done.returncode:
    pytest.skip(f'cannot mount a tmpfs here: {done.stderr.strip()}')
  yield mount
  subprocess.run(['umount', str(mount)], capture_output=True)


def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(small_disk, tiny_actions_root):
  workdir = small_disk / 'run'
  train.train_and_evaluate(tiny_config(tiny_actions_root, **{'train.num_steps': 8,
                                                             'train.checkpoint_every': 2,
                                                             'train.stop_after_steps': 4}), workdir)
  filler = small_disk / 'filler'
  filler.write_bytes(b'\0' * (shutil.disk_usage(small_disk).free - 16_000))
  config = tiny_config(tiny_actions_root, **{'train.num_steps': 8, 'train.checkpoint_every': 2})
  with pytest.raises(train.checkpoint_lib.CheckpointError) as e:
    train.train_and_evaluate(config, workdir)
  assert 'disk full while writing a checkpoint' in str(e.value)
  assert 'the newest complete checkpoint (step 4) is intact' in str(e.value)
  assert sorted(p.name for p in (workdir / 'checkpoints').iterdir()) == ['2', '4']
  filler.unlink()  # Space freed: the same command resumes from step 4 and finishes.
  final = train.train_and_evaluate(config, workdir)
  assert int(final['state'].step) == 8
