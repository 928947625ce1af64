"""experiments/bench.py --quick: the whole benchmark at tiny shapes, end to end.

What it checks is the plumbing, not the speed: every family has a row with
positive times and a sane MFU, the scaling points and the plot are written,
the JSON and the markdown agree, and the input-vs-compute section reads the
real pipeline. Most of the time is compiling tiny models (two compiles per
row, at XLA -O0); on a machine shared with other programs it grows with the
load.
"""
import json
import os
import subprocess
import sys

from tests.conftest import REPO

FAMILIES = ('lrcn', 'single_frame', 'convlstm', 'attention/divided', 'attention/joint',
            'attention/space_only', 'attention/factorized_encoder')


def _bench(out, *args):
  """`python experiments/bench.py --quick ARGS` on one CPU device, as training runs.

  XLA's backend optimisation is off (-O0): it halves the compile time of the
  tiny models and changes nothing this test looks at.
  """
  env = {**os.environ, 'XLA_FLAGS': '--xla_backend_optimization_level=0', 'JAX_PLATFORMS': 'cpu'}
  proc = subprocess.run([sys.executable, 'experiments/bench.py', '--quick', '--out', str(out),
                         *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc, json.loads((out / 'bench.json').read_text())


def test_quick_bench_writes_a_well_formed_table(tmp_path):
  proc, result = _bench(tmp_path, '--sections', 'table,profile,scaling')

  rows = {r['name']: r for r in result['table']}
  assert set(FAMILIES) <= set(rows), f'missing rows: {set(FAMILIES) - set(rows)}'
  for name in FAMILIES:
    row = rows[name]
    assert 'error' not in row, row
    assert row['compile_s'] > 0 and row['step_s'] > 0 and row['clips_per_s'] > 0, row
    assert 0 < row['mfu'] < 1.5, row
    assert row['train_flops'] > 0 and 2.0 < row['train_over_forward'] < 4.5, row
    assert row['memory']['peak_bytes'] > 0, row
  assert result['peak']['median'] > 0

  markdown = (tmp_path / 'bench.md').read_text()
  assert markdown == proc.stdout.split('\nwrote ')[0] + '\n'
  table = [line for line in markdown.splitlines() if line.startswith('| ')]
  for name in FAMILIES:
    assert any(line.startswith(f'| {name} |') for line in table), name
  assert 'python experiments/bench.py --quick' in markdown  # The command that reproduces it.
  for block in markdown.split('\n\n'):  # Every table: each row has its header's columns.
    rows_of_block = [line for line in block.splitlines() if line.startswith('|')]
    assert len({line.count('|') for line in rows_of_block}) <= 1, block

  points = result['scaling']['points']
  assert {p['pattern'] for p in points} == {'space_only', 'joint', 'divided'}
  assert all(p['step_s'] > 0 for p in points), points
  assert (tmp_path / 'scaling.png').stat().st_size > 1000

  profile, = result['profiles'].values()
  assert abs(sum(profile['fraction'].values()) - 1.0) < 1e-6


def test_quick_input_vs_compute_reads_the_real_pipeline(tiny_actions_root, tmp_path):
  _, result = _bench(tmp_path, '--sections', 'input', '--data_root', str(tiny_actions_root))
  io = result['input_vs_compute']
  assert all(v > 0 for v in io['best_steps_per_s'].values()), io
  assert io['input_bound_fraction'] < 1.0
  assert io['failed_videos'] == 0
