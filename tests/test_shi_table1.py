"""experiments/shi_table1.py: the Table 1 reproduction writes a well-formed table.

One real `--quick` run of the FC-LSTM row with 2 seeds (`--seeds 2`: enough
for a mean, a std and seeds that differ; every seed a real `python -m
vidjax.main` in a subprocess, ~7 s of CPU each) checks the runner,
results.json's fields and the written markdown and JSON. The whole --quick
table is 18 such runs, ~2.5 min on 2 idle cores, too long for a test: the
full table's shape (every row, every seed, the paper's points) is checked
on those real runs copied into all six rows. Every row's config is loaded, at every scale, paper
included: a bad key is caught without training.
"""
import copy
import json
import os
import pathlib
import subprocess
import sys

import pytest

from experiments import shi_table1 as table
from tests.conftest import REPO

SEEDS = [0, 1]


@pytest.fixture(scope='module')
def quick(tmp_path_factory):
  """(md, json, stdout) of `shi_table1.py --quick --only fc` on one CPU device."""
  tmp = tmp_path_factory.mktemp('shi_table1')
  # -O0: tiny models compile in half the time; nothing checked here depends on it.
  env = {**os.environ, 'XLA_FLAGS': '--xla_backend_optimization_level=0', 'JAX_PLATFORMS': 'cpu'}
  proc = subprocess.run(
      [sys.executable, 'experiments/shi_table1.py', '--quick', '--only', 'fc', '--seeds',
       str(len(SEEDS)), '--workdir',
       str(tmp / 'runs'), '--out', str(tmp / 'out' / 'shi_table1'), '--data_root',
       str(tmp / 'data')], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  out = tmp / 'out'
  return (out / 'shi_table1.md').read_text(), json.loads((out / 'shi_table1.json').read_text()), \
      proc.stdout


def _table(markdown: str) -> list[list[str]]:
  """The markdown table's data rows, as cells (the header and the rule dropped)."""
  lines = [line for line in markdown.splitlines() if line.startswith('|')]
  assert len({line.count('|') for line in lines}) == 1, 'rows with different column counts'
  return [[cell.strip() for cell in line.strip('|').split('|')] for line in lines[2:]]


def _check(markdown: str, result: dict, names: list[str]) -> None:
  """Every row and both baselines, SEEDS each, mean ± std, paper column, protocol, hardware."""
  rows = _table(markdown)
  assert [r[0] for r in rows] == names + ['last frame (trivial)', 'mean frame (trivial)']
  for cells, row in zip(rows, result['rows']):
    assert [r['seed'] for r in row['runs']] == SEEDS
    assert ' ± ' in cells[2] and ' ± ' in cells[3], cells  # Test and 3-digit mean ± std.
    assert len(cells[4].split(', ')) == len(SEEDS), cells  # One test number per seed.
    assert cells[5] == row['paper_row'] and cells[6] == f"{table.PAPER_TABLE_1[row['paper_row']]:,.2f}"
    assert row['summary']['test']['n'] == len(SEEDS) and row['summary']['test']['std'] >= 0
  for cells in rows[-2:]:
    assert ' ± ' in cells[2] and ' ± ' in cells[3], cells
  assert "Command: `python experiments/shi_table1.py" in markdown
  protocol = next(line for line in markdown.splitlines() if line.startswith('Protocol: '))
  for part in ('observed ->', 'predicted frames', 'val /', 'test sequences', 'steps at batch',
               'rmsprop lr 0.001, decay 0.9', 'early stopping: validation', 'seeds ' + ', '.join(map(str, SEEDS))):
    assert part in protocol, part
  hardware = next(line for line in markdown.splitlines() if line.startswith('Hardware: '))
  assert f'{os.cpu_count()} cores' in hardware and 'load average' in hardware
  assert '6,379.42' in markdown  # The paper's 3-digit number.


def test_quick_run_writes_a_well_formed_table(quick):
  markdown, result, stdout = quick
  assert result['scale'] == 'quick' and [r['key'] for r in result['rows']] == ['fc']
  assert markdown in stdout  # What is printed is what is written.
  _check(markdown, result, ['FC-LSTM-8-8'])
  assert '2 observed -> 2 predicted' in markdown and 'batch 2' in markdown
  for run in result['rows'][0]['runs']:
    assert 'error' not in run, run
    assert 0 < run['test'] < 1e5 and 0 < run['test_3digits'] < 1e5
    assert run['best_step'] in (1, 2) and run['steps'] == 2
    assert run['cpu_s'] > 0 and 'python -m vidjax.main' in run['command']
    assert not (pathlib.Path(run['workdir']) / 'checkpoints').exists()  # Removed after the run.
  seeds = [r['test'] for r in result['rows'][0]['runs']]
  assert len(set(seeds)) > 1, 'seeds gave identical numbers: --config.seed did not reach the run'
  for name in ('last_frame', 'mean_frame'):
    assert result['baselines'][name]['test']['n'] == len(SEEDS)
  assert 'not measured' in markdown  # The points compare rows that --only fc left out.


def test_the_full_table_has_every_row_and_the_papers_points(quick):
  """The real FC-LSTM runs, copied into all six rows, through summarize / markdown."""
  _, result, _ = quick
  runs = result['rows'][0]['runs']
  full = copy.deepcopy(result)
  full['rows'] = []
  for i, (key, paper_row, _, name) in enumerate(table.ROWS):
    shifted = [{**r, 'test': r['test'] - 100 * i} for r in runs]  # Deeper rows "better".
    full['rows'].append({'key': key, 'name': name, 'paper_row': paper_row,
                         'paper': table.PAPER_TABLE_1[paper_row], 'runs': shifted,
                         'summary': table.summarize(shifted)})
  full['baselines'] = table.baselines(full['rows'])
  full['orderings'] = table.orderings(full['rows'])
  markdown = table.markdown(full)
  _check(markdown, full, [row[3] for row in table.ROWS])
  assert len(full['orderings']) == len(table.POINTS)
  points = markdown.split("The paper's points")[1]
  assert 'ConvLSTM beats FC-LSTM' in points and 'holds (+200)' in points
  assert 'reversed (-200)' in points  # 1x1 rows come later in ROWS, so lower here.


def test_every_rows_config_loads_at_every_scale():
  for scale, column in table.COLUMN.items():
    names = set()
    for row in table.ROWS:
      spec, model = table.row_config(row[column], scale)
      config = table.load_config(spec, {**model, **table.LOOP[scale]})
      family = config.model.name
      names.add(family)
      assert config.model[family].hidden_sizes == tuple(
          int(h) for h in row[column].split('-') if h.isdigit()), (scale, row)
    assert names == {'fc_lstm', 'convlstm_forecaster'}
  paper = table.load_config(*table.row_config('ConvLSTM(9x9)-1x1-128-1x1-64-1x1-64', 'paper'))
  c = paper.model.convlstm_forecaster
  assert (c.input_kernel_size, c.state_kernel_size) == (9, 1)
  assert paper.train.batch_size == 16 and paper.data.moving_mnist.num_test == 3000
