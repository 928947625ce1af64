"""Frame prediction through the one training loop: outputs, pictures, exact resume.

A ConvLSTM with one 4-channel layer on 8 val / 8 test sequences: seconds per
run on CPU, with the loop, checkpoints and evaluation all real.
"""
import json

import jax
import numpy as np
import pytest

from tests.conftest import REPO
from vidjax import config as config_lib
from vidjax import train

STEPS = 4


CONFIG = str(REPO / 'configs' / 'moving_mnist_convlstm.py')
TINY = {  # configs/moving_mnist_convlstm.py shrunk to run in seconds on CPU.
    'data.moving_mnist.num_val': 8, 'data.moving_mnist.num_test': 8,
    'data.moving_mnist.train_sequences': 64, 'model.convlstm_forecaster.hidden_sizes': (4,),
    'model.convlstm_forecaster.input_kernel_size': 3,
    'model.convlstm_forecaster.state_kernel_size': 3, 'model.convlstm_forecaster.unroll': 1,
    'train.batch_size': 8, 'eval.batch_size': 8,
    'train.num_steps': STEPS, 'train.log_every': 1, 'train.eval_every': 1000,
    'train.checkpoint_every': 2, 'train.progress_bar': False, 'train.early_stopping_patience': 0,
}


def fp_config(root, **overrides):
  """The tiny frame-prediction config, with `a.b=value` overrides."""
  overrides = {'data.root': str(root), **TINY, **overrides}
  return config_lib.load(CONFIG, [f'{k}={v}' for k, v in overrides.items()])


def fp_flags(root) -> list[str]:
  """The same, as command-line flags."""
  return ['--config', CONFIG, f'--config.data.root={root}',
          *(f'--config.{k}={v}' for k, v in TINY.items())]


@pytest.fixture(scope='module')
def data_root(frame_prediction_run):
  return frame_prediction_run[0]


@pytest.fixture(scope='module')
def trained(frame_prediction_run):
  """One uninterrupted run (the session's, conftest.py): (config, workdir, final, console output)."""
  root, workdir, final, out = frame_prediction_run
  return fp_config(root), workdir, final, out


def _losses(workdir):
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return {r['step']: r['train/loss'] for r in rows if 'train/loss' in r}


def test_run_writes_metrics_baselines_and_pictures(trained):
  _, workdir, final, out = trained
  for name in ('training_curves.png', 'per_step_metrics.png', 'predictions_test.png',
               'predictions_test_3digits.png'):
    assert (workdir / name).stat().st_size > 5000, name
  results = json.loads((workdir / 'results.json').read_text())
  assert results['step'] == STEPS and results['row_name'] == 'ConvLSTM(3x3)-3x3-4'
  for split in ('eval', 'test', 'test_3digits'):
    assert results[f'{split}_num_sequences'] == 8
    assert len(results[f'{split}_bce_per_step']) == 10 and len(results[f'{split}_ssim_per_step']) == 10
    np.testing.assert_allclose(sum(results[f'{split}_bce_per_step']),
                               results[f'{split}_bce_per_sequence'], rtol=1e-9)
    base = results[f'{split}_baselines']
    # Hard "nothing moves" predictions pay for every moved pixel; the blur pays less.
    assert base['last_frame']['bce_per_sequence'] > base['mean_frame']['bce_per_sequence'] > 0
  assert results['paper_row'] == 'ConvLSTM(5x5)-5x5-256' and results['paper_row_is_ours'] is False
  assert final['test']['examples']['predicted'].shape == (4, 10, 64, 64, 1)
  assert 'test BCE / sequence' in out and 'Shi et al. 2015, Table 1' in out and 'mean frame' in out


def test_resume_is_bitwise_equal_to_uninterrupted_run(trained, data_root, tmp_path):
  _, straight_dir, straight, _ = trained
  stopped = train.train_and_evaluate(fp_config(data_root, **{'train.stop_after_steps': 1}), tmp_path)
  assert stopped['stopped_at'] == 1  # Mid-way between checkpoints: the data position must be exact.
  resumed = train.train_and_evaluate(fp_config(data_root), tmp_path)
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed['state'].params),
               jax.device_get(straight['state'].params))
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed['state'].opt_state),
               jax.device_get(straight['state'].opt_state))
  assert _losses(tmp_path) == _losses(straight_dir)
  assert resumed['test']['bce_per_sequence'] == straight['test']['bce_per_sequence']


def test_public_test_file_replaces_the_generated_test_split(data_root, tmp_path):
  from vidjax.data import moving_mnist
  from vidjax.errors import UserError
  from vidjax.data import moving_mnist_splits
  rng = np.random.default_rng(0)
  public = rng.integers(0, 256, size=(20, 3, 64, 64), dtype=np.uint8)  # mnist_test_seq.npy layout
  np.save(tmp_path / 'mnist_test_seq.npy', public)
  config = fp_config(data_root, **{'data.moving_mnist.public_test_file': tmp_path / 'mnist_test_seq.npy'})
  paths = moving_mnist_splits.fixed_set_paths(config.data, data_root)
  assert paths['test'] == str(tmp_path / 'mnist_test_seq.npy')
  np.testing.assert_array_equal(moving_mnist.load_public_npy(paths['test'])[1, :, ..., 0], public[:, 1])
  assert paths['val'] != paths['test'] and paths['test_3digits'] != paths['test']

  np.save(tmp_path / 'wrong.npy', public[:, :, :32])  # Not 64x64.
  config = fp_config(data_root, **{'data.moving_mnist.public_test_file': tmp_path / 'wrong.npy'})
  with pytest.raises(UserError, match='public_test_file.*expected uint8'):
    moving_mnist_splits.fixed_set_paths(config.data, data_root)
