"""`python -m vidjax.summary`: a config's cost without training, for every task."""
import subprocess
import sys

from tests.conftest import REPO
from vidjax import config as config_lib
from vidjax import summary


def test_classifier_and_forecaster_counts():
  lrcn = summary.summarize(config_lib.load(str(REPO / 'configs' / 'default.py')), num_classes=12)
  assert lrcn['clip_shape'] == (8, 64, 64, 3) and lrcn['num_params'] == 325_020
  assert 0.01 < lrcn['gflops_per_clip'] < 1.0

  # Shi et al. Table 1's best row: 7,585,296 parameters in the paper.
  row = config_lib.load(str(REPO / 'configs' / 'moving_mnist_convlstm.py') + ':5x5-128-5x5-64-5x5-64')
  forecaster = summary.summarize(row, num_classes=12)
  assert forecaster['clip_shape'] == (10, 64, 64, 1)
  assert forecaster['num_params'] == 7_585_296
  # Encoder + forecaster: 20 cell steps on 16x16, each 4 convs-worth of 5x5 gates per layer.
  assert 20 < forecaster['gflops_per_clip'] < 50


def test_command_line_prints_one_line_and_rejects_typos():
  run = lambda *a: subprocess.run([sys.executable, '-m', 'vidjax.summary', *a], cwd=REPO,
                                  capture_output=True, text=True, timeout=300)
  ok = run('--config', 'configs/single_frame.py')
  assert ok.returncode == 0, ok.stderr
  assert 'single_frame, 193,436 parameters' in ok.stdout
  bad = run('--config', 'configs/default.py', '--config.model.lrcn.lstm_hiden_size=3')
  assert bad.returncode == 2 and 'did you mean' in bad.stderr
