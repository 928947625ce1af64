"""Task 'denoising': the loop, the protocol's fixed noise and scores, predict, the configs."""
import functools
import json
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO
from vidjax import config as config_lib
from vidjax import predict, tasks, train
from vidjax.errors import UserError
from vidjax.metrics import restoration
from vidjax.tasks import denoising, denoising_eval

TINY = ['data.denoise_videos_per_split=(2,1,1)', 'data.denoise_frames=8', 'data.denoise_size=32',
        'data.height=32', 'data.width=32', 'data.num_workers=0', 'train.batch_size=4',
        'eval.batch_size=4', 'train.num_steps=4', 'train.log_every=2', 'train.eval_every=2',
        'train.checkpoint_every=2', 'train.progress_bar=false', 'denoise.eval_sigmas=(10,30)',
        'mesh.data=1']


def tiny_config(root, *overrides, model='fastdvdnet'):
  return config_lib.load(f"{REPO / 'configs' / 'denoising.py'}:{model}",
                         [f'data.root={root}', *TINY, *overrides])


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """(config, workdir, final) of a 4-step FastDVDnet run on a tiny embedded set."""
  root = tmp_path_factory.mktemp('data') / 'synthetic_denoise'
  workdir = tmp_path_factory.mktemp('denoise')
  config = tiny_config(root)
  final = train.train_and_evaluate(config, workdir)
  return config, workdir, final


def test_a_run_reports_every_sigma_beside_the_noisy_input(trained):
  config, workdir, final = trained
  test = final['test']
  assert sorted(test['sigmas']) == [10, 30] and test['num_sequences'] == 1
  for sigma, r in test['sigmas'].items():
    # AWGN of std sigma/255 on [0, 1] frames: PSNR = 20 log10(255 / sigma), whatever the frames.
    assert r['noisy_psnr'] == pytest.approx(20 * np.log10(255 / sigma), abs=0.15)
    assert np.isfinite(r['psnr']) and 0 < r['ssim'] <= 1
  results = json.loads((workdir / 'results.json').read_text())
  assert set(results['test']['sigmas']) == {'10', '30'}
  assert (workdir / 'examples_test.png').stat().st_size > 0
  # The periodic evaluation ran at sigma 30 only.
  history = (workdir / 'metrics.jsonl').read_text()
  assert 'eval_periodic/psnr_sigma30' in history and 'eval_periodic/psnr_sigma10' not in history


def test_the_protocol_noise_is_fixed_and_scores_repeat(trained):
  config, workdir, final = trained
  task, model, params, mesh, _ = predict.restore_params(config, str(workdir))
  again = task.evaluator(model, mesh)(params, 'test')
  for sigma in (10, 30):
    assert again['sigmas'][sigma]['psnr'] == final['test']['sigmas'][sigma]['psnr']
  shape = (3, 8, 8, 3)
  np.testing.assert_array_equal(restoration.eval_noise(shape, 30, 0, 1),
                                restoration.eval_noise(shape, 30, 0, 1))
  assert not np.array_equal(restoration.eval_noise(shape, 30, 0, 1),
                            restoration.eval_noise(shape, 30, 0, 2))


def test_windows_mirror_at_the_ends_as_fastdvdnet():
  np.testing.assert_array_equal(denoising_eval.window_indices(6, 5)[[0, 1, 5]],
                                [[2, 1, 0, 1, 2], [1, 0, 1, 2, 3], [3, 4, 5, 4, 3]])
  # Fewer frames than the window: mirrored, then clipped; one frame is repeated.
  np.testing.assert_array_equal(denoising_eval.window_indices(2, 5), [[0, 1, 0, 1, 0],
                                                                      [1, 0, 1, 0, 0]])
  np.testing.assert_array_equal(denoising_eval.window_indices(1, 5), [[0] * 5])
  frames = np.arange(2 * 5 * 6 * 1, dtype=np.float32).reshape(2, 5, 6, 1)
  padded = denoising_eval.pad_to_multiple(frames)
  assert padded.shape == (2, 8, 8, 1)
  np.testing.assert_array_equal(padded[:, :5, :6], frames)


def test_training_noise_comes_from_the_key():
  clean = jnp.full((2, 5, 8, 8, 3), 0.5)
  make = functools.partial(denoising.noisy_training_input, noise='gaussian',
                           train_sigma=(5.0, 55.0), poisson_a=0.0, poisson_b=0.0)
  a, sigma_a = make(clean, jax.random.key(0))
  b, _ = make(clean, jax.random.key(0))
  c, _ = make(clean, jax.random.key(1))
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  assert np.all((sigma_a >= 5) & (sigma_a <= 55))
  std = float(jnp.std(a[0] - clean[0])) * 255
  assert std == pytest.approx(float(sigma_a[0]), rel=0.1)
  maps = denoising.noise_map_like(a, sigma_a, blind=False)
  assert maps.shape == (2, 8, 8, 1) and float(maps[1, 0, 0, 0]) == pytest.approx(sigma_a[1] / 255)
  assert not np.any(denoising.noise_map_like(a, sigma_a, blind=True))


def test_predict_writes_the_denoised_video_and_refuses_unknown_sigmas(trained, tmp_path, capsys):
  config, workdir, _ = trained
  config = config.copy_and_resolve_references()  # Changed below; the fixture's stays as it was.
  run = tmp_path / 'run'
  shutil.copytree(workdir, run)
  video = str(sorted(pathlib.Path(config.data.root).glob('videos/test_*.mp4'))[0])
  with config.unlocked():
    config.denoise.add_noise_sigma = 30.0
  written = predict.predict(config, str(run), [video, str(tmp_path / 'missing.mp4')])
  assert len(written) == 1 and written[0].stat().st_size > 0
  assert (run / 'predictions' / 'test_0000_strip.png').exists()
  out = capsys.readouterr().out
  assert 'noisy 18.' in out and 'missing.mp4: does not exist' in out
  with config.unlocked():
    config.denoise.add_noise_sigma = 80.0
  with pytest.raises(UserError, match='outside the range this model was trained on'):
    predict.predict(config, str(run), [video])
  with config.unlocked():
    config.denoise.add_noise_sigma = 0.0
  with pytest.raises(UserError, match='needs the noise level'):
    predict.predict(config, str(run), [video])


def test_the_vae_variant_builds_and_trains_on_the_elbo(tmp_path):
  for model in ('vae',):  # The single-frame twin's network is tests/test_denoisers.py's.
    config = tiny_config(tmp_path, model=model)
    task = tasks.get(config)
    net = task.build_model(task.meta())
    video = jnp.zeros((1, *task.input_shape), jnp.uint8)  # apply_kwargs: a batch-1 noise map.
    params = net.init({'params': jax.random.key(0), 'dropout': jax.random.key(1)},
                      video.astype(jnp.float32), **task.apply_kwargs)
    value, metrics = task.loss_fn(net)(params, {'video': video + 128}, jax.random.key(2))
    assert np.isfinite(float(value)) and float(metrics['psnr']) > 0
    if model == 'vae':
      assert float(metrics['kl']) > 0


def test_the_full_scale_davis_config_is_the_fastdvdnet_recipe():
  config = config_lib.load(str(REPO / 'configs' / 'davis_fastdvdnet.py'))
  assert config.task == 'denoising' and config.data.dataset == 'davis2017'
  assert tuple(config.model.fastdvdnet.features) == (32, 64, 128)
  assert config.model.fastdvdnet.interm == 30 and config.data.num_frames == 5
  assert (config.data.height, config.train.batch_size) == (96, 64)
  assert tuple(config.denoise.train_sigma) == (5.0, 55.0)
  assert config.train.num_steps == 320_000
  task = tasks.get(config)
  net = task.summary_model()
  params = jax.eval_shape(functools.partial(net.init, **task.apply_kwargs),
                          {'params': jax.random.key(0), 'dropout': jax.random.key(1)},
                          jnp.zeros((1, *task.input_shape)))
  count = sum(np.prod(p.shape) for p in jax.tree.leaves(params))
  assert 2_000_000 < count < 3_000_000  # FastDVDnet: about 2.5M (without batch norm here).


def test_bad_settings_are_one_line_errors(tmp_path):
  for override, message in [('data.num_frames=4', 'must be odd'),
                            ('data.height=30', 'multiples of 4'),
                            ("denoise.noise='speckle'", 'use one of gaussian'),
                            ("model.fastdvdnet.align='flow'", 'use one of none, translation')]:
    with pytest.raises(UserError, match=message):
      tasks.get(tiny_config(tmp_path, override))
