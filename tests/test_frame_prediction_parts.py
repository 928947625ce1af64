"""The frame-prediction task's parts, each alone: configs, data stream, files, early stopping.

No training here (tests/test_frame_prediction.py runs the loop); every test
takes a second or two on CPU.
"""
import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO
from vidjax import config as config_lib
from vidjax import early_stopping, parallel
from vidjax.errors import UserError
from vidjax.models import build_forecaster
from vidjax.data import registry
from vidjax.tasks import frame_prediction as fp
from vidjax.tasks import frame_prediction_files as files
from vidjax.tasks import frame_prediction_report as figures

CONVLSTM = str(REPO / 'configs' / 'moving_mnist_convlstm.py')
FC_LSTM = str(REPO / 'configs' / 'moving_mnist_fc_lstm.py')


def _num_params(config) -> int:
  model = build_forecaster(config.model)
  shapes = jax.eval_shape(functools.partial(model.init, num_future=10), jax.random.key(0),
                          jax.ShapeDtypeStruct((1, 10, 64, 64, 1), jnp.float32))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))


@pytest.mark.parametrize('row', list(figures.PAPER_TABLE_1))
def test_paper_rows_build_the_paper_models(row):
  """Every Table 1 row is a config variant, named back to itself, with the paper's size."""
  counts = {'FC-LSTM-2048-2048': 142_667_776, 'ConvLSTM(5x5)-5x5-256': 13_524_496,
            'ConvLSTM(5x5)-5x5-128-5x5-128': 10_042_896,
            'ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64': 7_585_296,
            'ConvLSTM(9x9)-1x1-128-1x1-128': 11_550_224,
            'ConvLSTM(9x9)-1x1-128-1x1-64-1x1-64': 8_830_480}
  if row.startswith('FC-LSTM'):
    config = config_lib.load(f"{FC_LSTM}:{row.removeprefix('FC-LSTM-')}")
  else:
    config = config_lib.load(f"{CONVLSTM}:{row.removeprefix('ConvLSTM')}")
  assert figures.row_name(config.model) == row
  assert figures.paper_row(config.model) == (row, True)
  assert _num_params(config) == counts[row]


def test_cpu_config_names_its_nearest_paper_row():
  config = config_lib.load(CONVLSTM)
  assert figures.row_name(config.model) == 'ConvLSTM(5x5)-5x5-32-5x5-32'
  assert figures.paper_row(config.model) == ('ConvLSTM(5x5)-5x5-128-5x5-128', False)
  small_1x1 = config_lib.load(f'{CONVLSTM}:(9x9)-1x1-16-1x1-8-1x1-8')  # Not a paper row...
  assert figures.paper_row(small_1x1.model) == ('ConvLSTM(9x9)-1x1-128-1x1-64-1x1-64', False)
  assert config.task == 'frame_prediction' and config.optim.name == 'rmsprop'
  with pytest.raises(config_lib.ConfigError, match="unknown Table 1 row '5x5-12a'"):
    config_lib.load(f'{CONVLSTM}:5x5-12a')


def _tiny_config(**moving_mnist):
  config = config_lib.load(CONVLSTM)
  with config.unlocked():
    config.seed = 3
    for key, value in moving_mnist.items():
      config.data.moving_mnist[key] = value
  return config


def test_training_stream_resumes_and_splits_rows_by_process():
  config = _tiny_config(train_sequences=50)
  it = iter(fp.train_stream(config, batch_size=4))
  first = [next(it)['video'] for _ in range(3)]
  assert first[0].shape == (4, 20, 64, 64, 1) and first[0].dtype == np.uint8
  state = it.get_state()
  after = [next(it)['video'] for _ in range(2)]
  resumed = iter(fp.train_stream(config, batch_size=4))
  resumed.set_state(state)
  for want in after:
    np.testing.assert_array_equal(next(resumed)['video'], want)
  # Two processes read the rows of the same global batches.
  halves = [next(iter(fp.train_stream(config, batch_size=4, process_index=p, process_count=2)))
            ['video'] for p in range(2)]
  np.testing.assert_array_equal(np.concatenate(halves), first[0])
  # The sequences are the source's, shuffled: a pure function of (seed, index).
  source = registry.load_split(config.data, 'train', config.seed).source
  assert any(np.array_equal(first[0][0], source[i]) for i in range(50))


def test_read_observed_accepts_the_documented_layouts(tmp_path):
  seqs = np.random.default_rng(0).integers(0, 256, (20, 3, 64, 64), dtype=np.uint8)
  public = tmp_path / 'public.npy'
  np.save(public, seqs)  # [T, N, 64, 64]: sequence 0
  observed, future = files.read_observed(str(public), 10)
  np.testing.assert_array_equal(observed[..., 0], seqs[:10, 0])
  np.testing.assert_array_equal(future[..., 0], seqs[10:, 0])
  single = tmp_path / 'single.npy'
  np.save(single, seqs[:10, 1].astype(np.float32) / 255)  # [T, 64, 64] floats in [0, 1]
  observed, future = files.read_observed(str(single), 10)
  assert observed.shape == (10, 64, 64, 1) and future is None
  np.testing.assert_array_equal(observed[..., 0], seqs[:10, 1])
  short = tmp_path / 'short.npy'
  np.save(short, seqs[:4, 0])
  with pytest.raises(UserError, match='has 4 frames; the model observes 10'):
    files.read_observed(str(short), 10)
  with pytest.raises(UserError, match='does not exist'):
    files.read_observed(str(tmp_path / 'nope.npy'), 10)
  wrong = tmp_path / 'wrong.npy'
  np.save(wrong, np.zeros((10, 32, 32), np.uint8))
  with pytest.raises(UserError, match=r'expected \[T, 64, 64\]'):
    files.read_observed(str(wrong), 10)


def test_loss_is_the_mean_per_pixel_bce_and_reports_shi_units():
  """A model that predicts p = 0.5 everywhere costs ln 2 per pixel, 10 * 4096 ln 2 per sequence."""
  class Half:
    def apply(self, params, observed, *, num_future, train, rngs=None):
      del params, train, rngs
      return jnp.zeros(observed.shape[:1] + (num_future,) + observed.shape[2:])
  video = np.random.default_rng(0).integers(0, 256, (2, 20, 64, 64, 1), dtype=np.uint8)
  value, metrics = fp.loss(None, {'video': video}, None, model=Half(), num_observed=10,
                           num_future=10)
  np.testing.assert_allclose(value, np.log(2), rtol=1e-6)
  np.testing.assert_allclose(metrics['bce_per_sequence'], 10 * 4096 * np.log(2), rtol=1e-6)


def test_early_stopping_keeps_the_best_and_survives_a_restart(tmp_path):
  mesh = parallel.make_mesh(1, 1)
  abstract = {'w': jax.ShapeDtypeStruct((3,), jnp.float32, sharding=parallel.replicated(mesh))}
  make = lambda: early_stopping.EarlyStopping(tmp_path, patience=2, eval_every=10,
                                              abstract_params=abstract, meta={'m': 1}, mesh=mesh)
  stopper = make()
  assert stopper.best_params() is None
  params = lambda v: {'w': jnp.full((3,), v, jnp.float32)}
  assert not stopper.update(10, params(1.0), 3.0)
  assert not stopper.update(20, params(2.0), 2.0)  # The best.
  assert not stopper.update(30, params(3.0), 2.5)  # One without improvement.
  stopper.close()
  again = make()  # As after a preemption: the state comes back from the workdir.
  assert (again.best_step, again.best_metric) == (20, 2.0)
  assert not again.update(30, params(3.0), 2.5)  # A repeated evaluation changes nothing.
  assert again.update(40, params(4.0), 2.1)  # Two evaluations without improvement: stop.
  assert again.should_stop(40)
  np.testing.assert_array_equal(again.best_params()['w'], [2.0, 2.0, 2.0])
  again.close()
  best, step = early_stopping.restore_best_params(tmp_path, abstract, {'m': 1}, mesh)
  assert step == 20 and float(best['w'][0]) == 2.0
  assert early_stopping.restore_best_params(tmp_path / 'none', abstract, {'m': 1}, mesh) is None


def test_strip_and_per_step_pictures_draw(tmp_path):
  rng = np.random.default_rng(0)
  observed = rng.integers(0, 256, (2, 10, 64, 64, 1), dtype=np.uint8)
  predicted = rng.random((2, 10, 64, 64, 1), dtype=np.float32)
  figures.plot_strip(observed, predicted, tmp_path / 'strip.png', truth=observed, title='t')
  figures.plot_strip(observed[:1], predicted[:1], tmp_path / 'no_truth.png')
  step = {'bce_per_step': [1.0] * 10, 'mse_per_step': [2.0] * 10, 'ssim_per_step': [0.5] * 10}
  result = {**step, 'baselines': {'last_frame': step, 'mean_frame': step}}
  figures.plot_per_step({'test': result}, tmp_path / 'steps.png', 'title')
  for name in ('strip.png', 'no_truth.png', 'steps.png'):
    assert (tmp_path / name).stat().st_size > 5000, name
  assert pathlib.Path(tmp_path / 'strip.png').read_bytes()[:4] == b'\x89PNG'
