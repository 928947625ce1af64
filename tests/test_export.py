"""`--mode export`: the serialized function runs with jax alone, at any batch size, and
gives the trained model's own logits and probabilities."""
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.conftest import TINY_CLASSIFIER_FLAGS, classifier, run_vidjax, tiny_config
from vidjax import export, predict
from vidjax.data import clips
from vidjax.errors import UserError
from vidjax.tasks.classification import normalize

# Runs the written loader as a user would, then checks that nothing of vidjax's stack loaded.
_USER = '''
import runpy, sys
script, export_dir, *runs = sys.argv[1:]
for clips_path, out_path in zip(runs[::2], runs[1::2]):
  sys.argv = [script, export_dir, clips_path, out_path]
  runpy.run_path(script, run_name='__main__')
loaded = sorted({m.split('.')[0] for m in sys.modules} & {'vidjax', 'flax', 'optax', 'orbax'})
assert not loaded, loaded
'''


@pytest.fixture(scope='module')
def exported(trained_workdir, tiny_actions_root, tmp_path_factory):
  """(workdir, the run's stdout): `--mode export` on a copy of the shared trained workdir."""
  workdir = tmp_path_factory.mktemp('export') / 'run'
  shutil.copytree(trained_workdir, workdir)
  result = run_vidjax('--config', 'configs/default.py', '--workdir', str(workdir),
                      f'--config.data.root={tiny_actions_root}', *TINY_CLASSIFIER_FLAGS,
                      '--mode', 'export')
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir, result.stdout


def test_exported_function_matches_the_model_at_two_batch_sizes(exported, tiny_actions_root,
                                                                 tmp_path):
  workdir, stdout = exported
  out = workdir / 'export'
  assert str(out / 'model.jax_export') in stdout and 'batch symbolic' in stdout
  config = tiny_config(tiny_actions_root, **{'train.num_steps': 4})
  videos = sorted((tiny_actions_root / 'videos' / 'test').glob('*.mp4'))[:3]
  video = np.stack([clips.read_clip_for_prediction(str(v), config.data) for v in videos])
  np.save(tmp_path / 'one.npy', video[:1])
  np.save(tmp_path / 'three.npy', video)
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'XLA_FLAGS': ''}
  result = subprocess.run(
      [sys.executable, '-c', _USER, str(out / 'run_exported.py'), str(out),
       tmp_path / 'one.npy', tmp_path / 'one.npz', tmp_path / 'three.npy', tmp_path / 'three.npz'],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'probabilities (3, 12) float32' in result.stdout

  _, model, params, _, _ = predict.restore_params(config, str(workdir))
  apply = jax.jit(lambda p, x: model.apply(p, normalize(x, config.data.mean, config.data.std),
                                           train=False))
  for name, rows in [('one', 1), ('three', 3)]:
    got = np.load(tmp_path / f'{name}.npz')
    # The same function, compiled for a symbolic batch: float32 rounding apart (XLA:CPU
    # picks its conv kernels by shape, and LRCN's CNN sees one frame of each clip per call).
    logits = np.asarray(apply(params, video[:rows]))
    np.testing.assert_allclose(got['logits'], logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got['probabilities'], jax.nn.softmax(logits), rtol=1e-4, atol=1e-5)


def test_description_says_how_to_make_the_input(exported):
  workdir, _ = exported
  meta = json.loads((workdir / 'export' / 'model.json').read_text())
  assert meta['format'] == 'vidjax-export' and meta['format_version'] == export.FORMAT_VERSION
  assert meta['task'] == 'classification' and meta['model'] == 'lrcn'
  assert meta['checkpoint'] == 'step 4' and meta['vidjax_version'] and len(meta['sha256']) == 64
  assert meta['input'] == {'shape': ['b', 4, 32, 32, 3], 'dtype': 'uint8',
                           'layout': 'batch, time, height, width, channels',
                           'batch': 'symbolic: any batch size'}
  pre = meta['preprocessing']
  assert (pre['frames'], pre['sampling'], pre['frame_stride'], pre['height'], pre['width']) == (
      4, 'dense', 2, 32, 32)
  assert pre['mean'] == [0.5] * 3 and pre['std'] == [0.25] * 3 and pre['crop'] == 'none'
  assert meta['class_names'] == json.loads((workdir / 'classes.json').read_text())
  assert meta['outputs']['probabilities']['shape'] == ['b', 12]
  assert meta['outputs']['logits']['shape'] == ['b', 12]


def test_other_models_export_with_a_symbolic_batch():
  """single_frame with random parameters (no training): the function is the model's."""
  config = tiny_config('', **{'model.name': 'single_frame'})
  task, model = classifier(config, num_classes=5)
  video = np.random.default_rng(0).integers(0, 256, (3, *task.input_shape), dtype=np.uint8)
  rng = np.random.default_rng(1)  # Random parameters of the model's shapes: no init to compile.
  shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False),
                          jax.ShapeDtypeStruct((1, *task.input_shape), np.float32))
  params = jax.tree.map(lambda s: (0.1 * rng.standard_normal(s.shape)).astype(s.dtype), shapes)
  fn = export.inference_function(task, model, params)
  exported, note = export.export_function(fn, task.input_shape)
  assert note == 'symbolic: any batch size'
  loaded = jax.export.deserialize(exported.serialize())
  want = jax.jit(fn)(video)
  for rows in (1, 3):
    got = loaded.call(video[:rows])
    np.testing.assert_allclose(got['logits'], want['logits'][:rows], rtol=1e-5, atol=1e-6)


def test_a_task_without_a_clip_input_is_one_line(tmp_path):
  with pytest.raises(UserError, match="supports tasks whose model reads one video clip"):
    export.export(tiny_config('', task='localization'), str(tmp_path))


def test_docstring_shows_the_loader_in_full():
  body = export.LOADER.split('def run_exported')[1].split('\n\n\n')[0]
  for line in body.strip().splitlines():
    assert line.strip() in export.__doc__, line


def test_a_model_without_a_symbolic_batch_is_exported_at_batch_1():
  def fn(video):  # int() of a symbolic dimension fails, as a shape-bound model's would.
    return {'y': video.astype(np.float32).sum(axis=(1, 2)) * int(video.shape[0])}
  exported, note = export.export_function(fn, (2, 3))
  assert note.startswith('fixed at 1') and exported.in_avals[0].shape == (1, 2, 3)
