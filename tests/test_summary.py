"""`python -m vidjax.summary`: a config's cost without training, for every task."""
import subprocess
import sys

import pytest

from tests.conftest import REPO
from vidjax import config as config_lib
from vidjax import summary
from vidjax.errors import UserError


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


def test_layer_rows_sum_to_the_whole_model_and_count_every_scan_step():
  """LRCN: a CNN per frame, then an LSTM scanned over 8 frames (flax traces its cell once)."""
  lrcn = summary.summarize(config_lib.load(str(REPO / 'configs' / 'default.py')), depth=2)
  assert (lrcn['num_classes'], lrcn['classes_from']) == (12, 'synthetic_actions (published)')
  rows = {r['path']: r for r in lrcn['layers']}
  assert sum(r['params'] for r in rows.values()) == lrcn['num_params']  # Exactly.
  # flax's per-module count lowers each module alone; the total is compiled whole: 0.03% apart.
  assert sum(r['flops'] for r in rows.values()) / 1e9 == pytest.approx(lrcn['gflops_per_clip'],
                                                                       rel=0.005)
  cell = rows['lstm_0/cell']
  assert cell['calls'] == 8 and not cell['has_children'] and rows['lstm_0']['has_children']
  assert abs(rows['lstm_0']['flops']) < 0.001 * cell['flops']  # All of the RNN is its 8 steps.
  # The CNN runs once per frame (frames_per_call=1): 8 calls on one frame each, all counted.
  conv = rows['cnn/conv_0']
  assert conv['output'] == (1, 32, 32, 16) and conv['params'] == 432 and conv['calls'] == 8
  # 3x3 stride 2 'SAME' on 64 px pads one side: per axis 31 outputs see 3 taps, 1 sees 2 (95).
  assert conv['flops'] == 8 * 2 * 95 * 95 * 3 * 16
  assert rows['']['flops'] < 0.001 * lrcn['gflops_per_clip'] * 1e9  # Nothing left uncounted.
  assert not any(r['depth'] > 2 for r in rows.values())
  lines = summary.layer_table(lrcn)
  assert any(line.split()[:2] == ['cell', 'x8'] for line in lines)
  assert any(line.split()[:2] == ['conv_0', 'x8'] for line in lines)
  assert lines[-1].startswith('sum of rows: 325,020 parameters')


def test_class_count_from_the_data_root_or_a_hint(tmp_path):
  config = config_lib.load(str(REPO / 'configs' / 'single_frame.py'))
  config.data.dataset = 'csv'
  with pytest.raises(UserError, match='no published class count.*pass --num_classes'):
    summary.summarize(config)
  (tmp_path / 'train.csv').write_text('path,label\na.mp4,run\nb.mp4,jump\nc.mp4,walk\n')
  config.data.root = str(tmp_path)
  found = summary.summarize(config)
  assert (found['num_classes'], found['classes_from']) == (3, f'from {tmp_path}')
  assert summary.summarize(config, num_classes=5)['classes_from'] == '--num_classes'


def test_command_line_prints_the_summary_table_and_rejects_typos():
  run = lambda *a: subprocess.run([sys.executable, '-m', 'vidjax.summary', *a], cwd=REPO,
                                  capture_output=True, text=True, timeout=300)
  ok = run('--config', 'configs/single_frame.py', '--depth', '1')
  assert ok.returncode == 0, ok.stderr
  lines = ok.stdout.splitlines()
  assert 'single_frame, 193,436 parameters' in lines[0]
  assert lines[1] == '12 classes: synthetic_actions (published)'
  assert lines[2].split() == ['layer', 'module', 'output', 'parameters', 'GFLOPs', '%']
  assert lines[-1].startswith('sum of rows: 193,436 parameters')
  bad = run('--config', 'configs/default.py', '--config.model.lrcn.lstm_hiden_size=3')
  assert bad.returncode == 2 and 'did you mean' in bad.stderr
