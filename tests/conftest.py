"""Shared test set-up: 8 simulated CPU devices, parsed absl flags, tiny data.

XLA_FLAGS must be set before jax is imported, so it happens here, first.
Every test that builds a mesh can then use 1 device or all 8.

The session, and every run it starts in a subprocess, share one persistent
compilation cache and compile without most of XLA's optimisations: dozens of
tests train the same tiny models afresh (each run jits its own step), and
compiling costs more than the steps they take.
"""
import os
import tempfile

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=8').strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
_JAX_CACHE = os.path.join(tempfile.gettempdir(), f'vidjax-tests-jax-cache-{os.getpid()}')
os.environ['JAX_COMPILATION_CACHE_DIR'] = _JAX_CACHE
os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0.2'
# Tests check what is computed, not how fast: XLA's optimisation passes cost more compile time
# on these tiny models than they save in run time (the benchmarks in experiments/ keep them on).
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')
# Nor the huge pages `python -m vidjax.main` trains with (vidjax/allocator.py): they pay off over
# many steps, and these runs are a few steps each (test_allocator.py turns them back on).
os.environ.setdefault('VIDJAX_HUGEPAGES', '0')

import pathlib  # noqa: E402

import pytest  # noqa: E402
from absl import flags  # noqa: E402

# grain's mp_prefetch reads absl flags; tests do not run under absl.app.run.
flags.FLAGS.mark_as_parsed()

REPO = pathlib.Path(__file__).resolve().parent.parent
TINY_CLIPS_PER_CLASS = (3, 1, 1)


# The README runs the suite on both cores (pytest-xdist, `-n 2 --dist loadfile`): a file is one unit
# of work, handed out in collection order. The longest files go first, so that no worker is left
# running one of them alone at the end (per-file times from `--durations`).
LONGEST_FIRST = ('test_preemption.py', 'test_reproductions.py', 'test_reliability.py',
                 'test_gpu_session.py', 'test_bench.py', 'test_localization_task.py',
                 'test_detection_task.py', 'test_multihost.py', 'test_detection_table.py',
                 'test_main.py', 'test_train.py', 'test_lrcn.py', 'test_shi_table1.py')


def pytest_collection_modifyitems(items):
  rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # Stable: files stay whole.


def pytest_sessionfinish(session, exitstatus):
  import shutil
  shutil.rmtree(_JAX_CACHE, ignore_errors=True)


@pytest.fixture(scope='session')
def tiny_actions_root(tmp_path_factory) -> pathlib.Path:
  """The embedded action dataset at 3/1/1 clips per class (36/12/12 videos)."""
  from vidjax.data import synthetic_actions
  root = tmp_path_factory.mktemp('data') / 'synthetic_actions'
  synthetic_actions.ensure_dataset(root, clips_per_class=TINY_CLIPS_PER_CLASS)
  return root


def tiny_flags(root) -> list[str]:
  """`tiny_config` as command-line overrides, for runs in a subprocess."""
  return [f'--config.data.root={root}', '--config.data.num_frames=4', '--config.data.height=32',
          '--config.data.width=32', '--config.data.num_workers=0',
          '--config.model.lrcn.cnn_features=(8,16)', '--config.model.lrcn.cnn_embed_dim=32',
          '--config.model.lrcn.lstm_hidden_size=16', '--config.train.batch_size=8',
          '--config.eval.batch_size=8', '--config.train.progress_bar=false',
          f'--config.data.synthetic_clips_per_class={TINY_CLIPS_PER_CLASS}']


TINY_CLASSIFIER_FLAGS = [*(f for f in tiny_flags('') if not f.startswith('--config.data.root')),
                         '--config.train.num_steps=4']


@pytest.fixture(scope='session')
def trained_workdir(tiny_actions_root, tmp_path_factory) -> pathlib.Path:
  """A tiny LRCN trained for 4 steps through the command line, shared by every test of a
  trained classification workdir (evaluate, predict, export). Tests must not change it."""
  workdir = tmp_path_factory.mktemp('run')
  result = run_vidjax('--config', 'configs/default.py', '--workdir', str(workdir),
                      f'--config.data.root={tiny_actions_root}', *TINY_CLASSIFIER_FLAGS)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'test top-1 / top-5' in result.stdout
  return workdir


def run_vidjax(*args, timeout=300, wait=True, new_session=False):
  """`python -m vidjax.main ARGS` in a subprocess, on one CPU device.

  With `new_session` the run leads its own process group, as a cluster job
  does, so a test can signal the run and its workers together (os.killpg).
  """
  import subprocess
  import sys
  env = {**os.environ, 'XLA_FLAGS': '', 'JAX_PLATFORMS': 'cpu', 'PYTHONUNBUFFERED': '1',
         'JAX_COMPILATION_CACHE_DIR': _JAX_CACHE,
         'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0'}
  command = [sys.executable, '-m', 'vidjax.main', *map(str, args)]
  if not wait:
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=new_session)
  return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def classifier(config, num_classes: int = 12):
  """(task, model) of a classification config, as the loop builds them, for `num_classes`."""
  from vidjax import tasks
  task = tasks.get(config)
  return task, task.build_model({'class_names': [f'class_{i}' for i in range(num_classes)]})


def tiny_data(**overrides):
  """`tiny_config('').data` with `data.KEY=value` overrides, for pipeline tests."""
  return tiny_config('', **{f'data.{key}': value for key, value in overrides.items()}).data


def tiny_config(root, **overrides):
  """The default config shrunk to run in seconds on CPU."""
  from vidjax import config as config_lib
  config = config_lib.load(str(REPO / 'configs' / 'default.py'))
  with config.unlocked():
    config.data.root = str(root)
    config.data.synthetic_clips_per_class = TINY_CLIPS_PER_CLASS
    config.data.num_frames = 4
    config.data.height = 32
    config.data.width = 32
    config.data.num_workers = 0
    config.model.lrcn.cnn_features = (8, 16)
    config.model.lrcn.cnn_embed_dim = 32
    config.model.lrcn.lstm_hidden_size = 16
    config.model.single_frame.cnn_features = (8, 16)
    config.model.single_frame.cnn_embed_dim = 32
    config.train.batch_size = 8
    config.eval.batch_size = 8
    config.train.num_steps = 6
    config.train.log_every = 1
    config.train.eval_every = 1000
    config.train.checkpoint_every = 3
    config.train.progress_bar = False
    for key, value in overrides.items():
      node = config
      *parents, leaf = key.split('.')
      for part in parents:
        node = node[part]
      node[leaf] = value
  return config


TINY_DETECTION = ['data.objects_videos_per_split=(4,1,1)', 'data.objects_frames_per_video=(16,24)',
                  'data.height=64', 'data.width=64', 'data.num_workers=0',
                  'model.yolo.widths=(8,16,32)', 'model.yolo.strides=(8,16)',
                  'train.batch_size=8', 'eval.batch_size=8', 'train.num_steps=4',
                  'train.log_every=2', 'train.checkpoint_every=2', 'train.progress_bar=false',
                  'mesh.data=1']


def tiny_detection_config(root, *overrides):
  """configs/detection.py shrunk to a tiny synthetic_objects set and detector."""
  from vidjax import config as config_lib
  return config_lib.load(str(REPO / 'configs' / 'detection.py'),
                         [f'data.root={root}', *TINY_DETECTION, *overrides])


@pytest.fixture(scope='session')
def tiny_detection_run(tmp_path_factory):
  """(data root, workdir, config, first, final) of a tiny detection run of 4 steps, in two
  invocations (the second resumes from the first's checkpoint at step 2)."""
  from vidjax import train
  root = tmp_path_factory.mktemp('data') / 'synthetic_objects'
  workdir = tmp_path_factory.mktemp('detection')
  first = train.train_and_evaluate(tiny_detection_config(root, 'train.stop_after_steps=2'),
                                   str(workdir))
  config = tiny_detection_config(root)
  final = train.train_and_evaluate(config, str(workdir))
  return root, workdir, config, first, final


@pytest.fixture(scope='session')
def frame_prediction_run(tmp_path_factory):
  """(data root, workdir, final, console output) of one uninterrupted run of the tiny
  frame-prediction config (tests/test_frame_prediction.py), trained once for the files that
  read it. Tests must not change it; a file that writes into the workdir copies it."""
  import contextlib
  import io
  from tests.test_frame_prediction import fp_config
  from vidjax import train
  root = tmp_path_factory.mktemp('moving_mnist')
  workdir = tmp_path_factory.mktemp('frame_prediction')
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    final = train.train_and_evaluate(fp_config(root), workdir)
  return root, workdir, final, out.getvalue()
