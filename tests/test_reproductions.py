"""The table reproductions' --quick: each script end to end, and the form of what it writes.

What they check is the plumbing, not the numbers (4 steps of tiny models mean
nothing): a row per model and task with 2 seeds (`--seeds 2`: enough for a
mean, a std and a min-max; the tables themselves run more), the paper's
number named by the paper's dataset, the protocol and hardware lines, every
run recorded with its command, and the runs the ViViT table shares with the
TimeSformer table reused rather than rerun. The TimeSformer table runs first
(ViViT reuses its joint rows); ViViT and LRCN then run side by side, one per
core. One more test runs a row through the default path, a subprocess. Most
of the time is compiling 14 tiny models at XLA's lowest optimisation; it
grows with the machine's load (about 60 s on 2 lightly loaded cores).
"""
import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, tiny_flags

sys.path.insert(0, str(REPO / 'experiments'))
import reproduction  # noqa: E402

TABLES = {  # name: ({task: paper cell of the first row}, model rows)
    'timesformer_table1': ({'temporal': 'SSv2 36.6', 'appearance': 'K400 76.9'},
                           ['space only (no time embedding)', 'joint space-time',
                            'divided space-time']),
    'vivit_table2': ({'temporal': 'EK 43.1', 'appearance': 'K400 80.0'},
                     ['1 spatio-temporal (joint)', '2 factorised encoder',
                      '3 factorised self-attention']),
    'lrcn_table': ({'temporal': '-', 'appearance': 'UCF-101 67.37'},
                   ['single frame (order-blind)', 'LRCN']),
}


@pytest.fixture(scope='module')
def quick_tables(tmp_path_factory):
  """{name: (markdown, json)} of the three scripts' --quick, written to one folder."""
  tmp = tmp_path_factory.mktemp('reproductions')
  out = tmp / 'results'
  env = {**os.environ, 'XLA_FLAGS': '', 'JAX_PLATFORMS': 'cpu', 'VIDJAX_CACHE': str(tmp / 'cache'),
         'JAX_COMPILATION_CACHE_DIR': str(tmp / 'jax_cache')}

  def start(name):
    return subprocess.Popen([sys.executable, f'experiments/{name}.py', '--quick', '--seeds', '2',
                             '--out', str(out), '--workdir', str(tmp / 'runs')], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

  def finish(proc):
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output[-4000:]
    return output

  logs = {'timesformer_table1': finish(start('timesformer_table1'))}
  side_by_side = {name: start(name) for name in ('vivit_table2', 'lrcn_table')}
  logs.update({name: finish(proc) for name, proc in side_by_side.items()})
  return {name: ((out / f'{name}.md').read_text(), json.loads((out / f'{name}.json').read_text()),
                 logs[name]) for name in TABLES}


@pytest.mark.parametrize('name', TABLES)
def test_json_has_every_run_and_row(quick_tables, name):
  _, doc, _ = quick_tables[name]
  papers, models = TABLES[name]
  assert doc['complete'] and doc['quick'] and doc['seeds'] == [0, 1]
  assert [t['name'] for t in doc['tasks']] == ['temporal', 'appearance']
  assert [(r['task'], r['name']) for r in doc['rows']] == [
      (task, model) for task in ('temporal', 'appearance') for model in models]
  for row in doc['rows']:
    assert row['seeds'] == [0, 1] and not row['failed_seeds'] and len(row['test_top1']) == 2
    assert 0 <= row['test_top1_mean'] <= 1 and row['test_top1_std'] >= 0
    assert row['num_params'] > 0 and row['gflops_per_clip'] > 0 and row['step_ms'] > 0
  assert [r['paper_top1'] for r in doc['rows'] if r['name'] == models[0]] == list(papers.values())
  assert len(doc['runs']) == len(doc['rows']) * 2
  for run in doc['runs']:
    assert run['command'].startswith('python -m vidjax.main --config configs/')
    assert f"--config.seed={run['seed']}" in run['command'] and 'error' not in run
  assert len({r['key'] for r in doc['runs']}) == len(doc['runs'])
  fields = doc['protocol_fields']
  assert fields['resolution'] == [32, 32] and fields['views_per_video'] == 1
  assert fields['steps'] == reproduction.QUICK.steps and fields['batch'] == reproduction.QUICK.batch
  assert doc['hardware_fields']['cores'] == os.cpu_count()


@pytest.mark.parametrize('name', TABLES)
def test_markdown_states_protocol_hardware_and_the_papers_datasets(quick_tables, name):
  text, doc, _ = quick_tables[name]
  papers, models = TABLES[name]
  lines = text.splitlines()
  protocol = next(line for line in lines if line.startswith('**Protocol.** '))
  quick = reproduction.QUICK
  for words in ('4 frames at stride 2', '32x32', 'clip-level = video-level',
                f'{quick.steps} steps at batch {quick.batch}', 'QUICK SMOKE TEST'):
    assert words in protocol, words
  hardware = next(line for line in lines if line.startswith('**Hardware.** '))
  assert f'{os.cpu_count()} cores' in hardware and 'load average' in hardware
  sections = text.split('\n## ')
  for task, paper in papers.items():
    section = next(s for s in sections if s.startswith(f'{task.capitalize()} task'))
    table = [line for line in section.splitlines() if line.startswith('| ')]
    assert 'mean ± std (2 seeds)' in table[0] and 'paper top-1 % (paper dataset)' in table[0]
    assert [line.split(' | ')[0][2:] for line in table[1:]] == models
    for line in table[1:]:
      cells = line.split(' | ')
      assert re.fullmatch(r'\d+\.\d ± \d+\.\d', cells[1]), cells[1]
      assert len(cells[2].split(', ')) == 2  # Per seed.
      # The paper's number is always named by its dataset, never shown bare.
      assert re.fullmatch(r'(SSv2|EK|K400|UCF-101) \d+(\.\d+)?|-', cells[3]), cells[3]
    assert table[1].split(' | ')[3] == paper
  assert '## What it shows' in text and doc['findings']


def test_shared_rows_are_reused_not_rerun(quick_tables):
  _, doc, log = quick_tables['vivit_table2']
  joint = [r for r in doc['runs'] if r['row'] == '1 spatio-temporal (joint)']
  assert len(joint) == 2 * 2 and {r['computed_in'] for r in joint} == {'timesformer_table1'}
  assert log.count('reused from timesformer_table1.json') == 2 * 2  # 2 tasks x 2 seeds.
  _, first, _ = quick_tables['timesformer_table1']
  assert {r['key'] for r in joint} <= {r['key'] for r in first['runs']}


def test_run_key_ignores_order_and_data_root_but_not_the_seed_or_the_data():
  a = ['--config.data.root=/x', '--config.train.num_steps=5', '--config.seed=0']
  b = ['--config.train.num_steps=5', '--config.data.root=/y', '--config.seed=0']
  assert reproduction.run_key('c.py', a, 0) == reproduction.run_key('c.py', b, 0)
  assert reproduction.run_key('c.py', a, 0) != reproduction.run_key('c.py', a, 1)
  assert reproduction.run_key('c.py', a, 0) != reproduction.run_key('d.py', a, 0)
  assert reproduction.run_key('c.py', a, 0, 'v1') != reproduction.run_key('c.py', a, 0, 'v2')


def test_run_in_a_subprocess_reports_results_or_the_error(tiny_actions_root, tmp_path):
  """The default path (a `python -m vidjax.main` subprocess per run), which --quick skips."""
  env = {'XLA_FLAGS': '', 'JAX_PLATFORMS': 'cpu',
         'JAX_COMPILATION_CACHE_DIR': str(tmp_path / 'jax_cache')}
  overrides = [*tiny_flags(tiny_actions_root), '--config.train.num_steps=4',
               '--config.train.log_every=2', '--config.train.eval_every=4']
  done = reproduction.run('configs/default.py', overrides, tmp_path / 'ok', env=env)
  assert 'error' not in done, done
  assert 0 <= done['test_top1'] <= 1 and done['num_params'] > 0 and done['step_ms'] > 0
  assert done['command'].startswith('python -m vidjax.main --config configs/default.py ')
  failed = reproduction.run('configs/default.py', ['--config.optim.lerning_rate=1'],
                            tmp_path / 'typo', env=env)
  assert "did you mean 'optim.learning_rate'" in failed['error'] and 'test_top1' not in failed
