"""experiments/denoising_table.py --quick: one 4-step model, NLM and TV, sigma 30.

The run checks the table's plumbing and the one claim it must never get
wrong: the baselines see the models' noise (our noisy row equals the
trained run's results.json noisy PSNR). The numbers of a 4-step model mean
nothing, so none is checked beyond that.
"""
import contextlib
import io
import json
import subprocess

import pytest

from experiments import denoising_table as dt


def _table(text: str, heading: str) -> dict:
  """{first cell: cells} of the markdown table under `heading`."""
  block = text.split(heading, 1)[1].split('\n## ', 1)[0]
  rows = [[c.strip() for c in line.strip('|').split('|')] for line in block.splitlines()
          if line.startswith('|') and not line.startswith('|---')]
  return {cells[0]: cells for cells in rows[1:]} | {'header': rows[0]}


@pytest.fixture(scope='module')
def quick(tmp_path_factory):
  """`python experiments/denoising_table.py --quick`, run as `main` in this process (its
  output captured): the model still trains in its own `python -m vidjax.main` (on one CPU
  device, as the environment below says), so only a second import of jax is saved."""
  tmp = tmp_path_factory.mktemp('denoising_table')
  argv = ['--quick', '--workdir_root', str(tmp / 'runs'), '--out', str(tmp / 'out')]
  stdout, stderr = io.StringIO(), io.StringIO()
  with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(stdout), \
      contextlib.redirect_stderr(stderr):
    for key, value in {'VIDJAX_CACHE': str(tmp / 'cache'), 'JAX_PLATFORMS': 'cpu',
                       'XLA_FLAGS': '--xla_backend_optimization_level=0',
                       'PYTHONUNBUFFERED': '1'}.items():
      env.setenv(key, value)
    code = dt.main(argv)
  done = subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())
  assert done.returncode == 0, done.stderr[-4000:]
  text = (tmp / 'out' / 'denoising_table.md').read_text()
  doc = json.loads((tmp / 'out' / 'denoising_table.json').read_text())
  return done, text, doc


def test_quick_rows_and_json_agree(quick):
  done, text, doc = quick
  assert done.stdout == text
  assert 'command: python experiments/denoising_table.py --quick' in done.stderr
  assert 'hardware: ' in done.stderr
  assert doc['sigmas'] == [30]
  assert [m['key'] for m in doc['models']] == ['fastdvdnet']
  assert list(doc['baselines']) == ['noisy', 'nl_means', 'tv']
  rows = _table(text, '## Test split')
  assert rows['header'] == ['row', 'sigma 30', 'train minutes']
  model = doc['models'][0]
  assert model['train_seconds'] > 0 and not model['reused']
  cell = rows[f"fastdvdnet: {dt.MODELS['fastdvdnet']}"]
  assert cell[1] == (f"{model['test']['sigmas']['30']['psnr']:.2f} / "
                     f"{model['test']['sigmas']['30']['ssim']:.4f}")
  assert cell[2] == f"{model['train_seconds'] / 60:.1f}"
  for name in ('noisy', 'nl_means', 'tv'):
    scores = doc['baselines'][name]['30']
    cells = rows[f'{name}: {dt.BASELINES[name]}']
    assert cells[1] == f"{scores['psnr']:.2f} / {scores['ssim']:.4f}"
    assert scores['seconds_per_sequence'] >= 0
  # Any denoiser beats the noisy input on the smooth synthetic frames.
  assert doc['baselines']['nl_means']['30']['psnr'] > doc['baselines']['noisy']['30']['psnr'] + 3
  bm3d = next(k for k in rows if k.startswith('bm3d: '))
  assert 'not run' in bm3d and rows[bm3d][1] == '-'
  assert set(_table(text, '## Baseline time per sequence')) == {'header', 'noisy', 'nl_means',
                                                                 'tv'}


def test_quick_noisy_row_is_the_models_noise(quick):
  _, text, doc = quick
  check = doc['noisy_check']
  assert check['passed'] is True and len(check['checks']) == 2
  assert all(c['abs_diff_db'] <= 1e-4 for c in check['checks'])
  ours = doc['baselines']['noisy']['30']
  theirs = doc['models'][0]['test']['sigmas']['30']
  assert ours['psnr'] == pytest.approx(theirs['noisy_psnr'], abs=1e-4)
  assert ours['ssim'] == pytest.approx(theirs['noisy_ssim'], abs=1e-4)
  assert '**Same noise as the models:** passed' in text


def test_quick_targets_and_published_tables(quick):
  _, text, doc = quick
  targets = _table(text, "## The issue's targets at sigma 30")
  assert targets['header'] == ['target', 'margin (dB)', 'status', 'why not run']
  assert [t['target'] for t in doc['targets']] == [t[0] for t in dt.TARGETS]
  nlm = targets['multi-frame CNN - NLM >= 1.0 dB']
  margin = (doc['models'][0]['test']['sigmas']['30']['psnr']
            - doc['baselines']['nl_means']['30']['psnr'])
  assert nlm[1] == f'{margin:.2f}' and nlm[2] == ('met' if margin >= 1.0 else 'not met')
  for label in ('multi-frame CNN - BM3D >= 0.5 dB', 'multi-frame CNN - single-frame >= 0.3 dB',
                'VAE - noisy >= 6 dB'):
    assert targets[label][1:3] == ['-', 'not run'] and targets[label][3]
  published = _table(text, '## Published PSNR (dB), DAVIS-2017 test-dev 480p')
  assert published['FastDVDnet'][2:] == ['38.71', '35.77', '34.04', '32.82', '31.86']
  assert published['RVRT'][2:] == ['40.57', '38.05', '36.57', '35.47', '34.57']
  assert 'another dataset' in text


def test_target_checks_margins_and_statuses():
  rows = {'fastdvdnet': {30: {'psnr': 31.0}}, 'nl_means': {30: {'psnr': 30.5}},
          'bm3d': {30: {'psnr': 30.0}}, 'single_frame': {30: {'psnr': 30.6}},
          'vae': {30: {'psnr': 26.0}}, 'noisy': {30: {'psnr': 18.6}}}
  got = {c['target']: c for c in dt.target_checks(rows, 'why')}
  assert got['multi-frame CNN - NLM >= 1.0 dB']['status'] == 'not met'
  assert got['multi-frame CNN - BM3D >= 0.5 dB']['status'] == 'met'
  assert got['multi-frame CNN - single-frame >= 0.3 dB']['margin_db'] == pytest.approx(0.4)
  assert got['VAE - noisy >= 6 dB']['status'] == 'met'
  del rows['bm3d']
  missing = {c['target']: c for c in dt.target_checks(rows, 'pip install bm3d')}
  assert missing['multi-frame CNN - BM3D >= 0.5 dB']['status'] == 'not run'
  assert missing['multi-frame CNN - BM3D >= 0.5 dB']['why'] == 'pip install bm3d'


def test_noisy_check_fails_on_other_noise():
  noisy = {30: {'psnr': 18.6, 'psnr_per_sequence': {'a': 18.6}}}
  model = {'key': 'm', 'test': {'sigmas': {'30': {'noisy_psnr': 18.6,
                                                  'noisy_psnr_per_sequence': {'a': 18.6}}}}}
  assert dt.noisy_check(noisy, [model])['passed'] is True
  model['test']['sigmas']['30']['noisy_psnr_per_sequence']['a'] = 18.601
  assert dt.noisy_check(noisy, [model])['passed'] is False
  assert dt.noisy_check(noisy, [])['passed'] is None
