"""`python -m vidjax.convert`: a checkpoint into a config's model, with a line per parameter."""
import subprocess
import sys

import numpy as np

from tests.conftest import REPO, TINY_CLASSIFIER_FLAGS
from vidjax.pretrained import init_from


def _convert(*args):
  return subprocess.run([sys.executable, '-m', 'vidjax.convert', *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300,
                        env={'JAX_PLATFORMS': 'cpu', 'PATH': '', 'HOME': str(REPO)})


def test_convert_a_workdir_then_refuse_to_overwrite(trained_workdir, tiny_actions_root, tmp_path):
  out = tmp_path / 'converted'
  flags = ['--config', 'configs/default.py', f'--config.data.root={tiny_actions_root}',
           *TINY_CLASSIFIER_FLAGS, '--out', str(out)]
  result = _convert(str(trained_workdir), *flags)
  assert result.returncode == 0, result.stderr[-3000:]
  source, _ = init_from.read_vidjax(trained_workdir)
  assert f'{len(source)} entries: {len(source)} matched, 0 resampled' in result.stdout
  assert 'matched   cnn/conv_0/kernel (3, 3, 3, 8) <- cnn/conv_0/kernel' in result.stdout
  converted, origin = init_from.read_vidjax(out)
  assert origin.endswith('params.npz') and converted.keys() == source.keys()
  for name in source:
    np.testing.assert_array_equal(converted[name], source[name])
  assert (out / 'conversion.txt').read_text().count('\n') == len(source) + 2

  again = _convert(str(trained_workdir), *flags)
  assert again.returncode == 2 and again.stderr.strip().splitlines() == [
      f'error: --out {out} exists and is not empty; choose a new folder']


def test_a_missing_source_writes_nothing(tmp_path):
  out = tmp_path / 'never'
  result = _convert(str(tmp_path / 'missing.pth'), '--config', 'configs/default.py',
                    '--num_classes', '5', '--out', str(out))
  assert result.returncode == 2 and 'does not exist' in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
