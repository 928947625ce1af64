"""experiments/detection_table.py: both rows read back from finished runs (--reuse).

The session's tiny detection run (tests/conftest.py, 4 steps; the detection
task's own tests check it) is copied in as both rows' workdirs: its numbers
stand for both, so only the table's plumbing is checked here, never a
result. Training a row goes through `reproduction.run`, which
tests/test_reproductions.py runs in a subprocess.
"""
import contextlib
import io
import json
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, TINY_DETECTION

sys.path.insert(0, str(REPO / 'experiments'))
import detection_table  # noqa: E402



def _table(text: str, heading: str) -> dict:
  """{first cell: cells} of the markdown table under `heading`."""
  block = text.split(heading, 1)[1].split('\n## ', 1)[0]
  rows = [[c.strip() for c in line.strip('|').split('|')] for line in block.splitlines()
          if line.startswith('|') and not line.startswith('|---')]
  return {cells[0]: cells for cells in rows[1:]} | {'header': rows[0]}


def _invoke(tmp, root, *args):
  """`python experiments/detection_table.py ARGS`, run as `main(ARGS)` in this process with its
  stdout and stderr captured: these tests only reuse rows, so a subprocess would only import jax
  again."""
  overrides = [a for o in [f'data.root={root}', *TINY_DETECTION]
               for a in ('--override', o)]
  argv = ['--workdir_root', str(tmp / 'runs'), '--out', str(tmp / 'out'), *overrides, *args]
  stdout, stderr = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
    code = detection_table.main(argv)
  assert code == 0, stderr.getvalue()[-4000:]
  return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope='module')
def tables(tmp_path_factory, tiny_detection_run):
  root, trained, *_ = tiny_detection_run
  tmp = tmp_path_factory.mktemp('detection_table')
  for row in detection_table.ROWS:
    shutil.copytree(trained, tmp / 'runs' / row.key)
  mtime = (tmp / 'runs' / 'single_frame' / 'results.json').stat().st_mtime
  done = _invoke(tmp, root, '--reuse')
  return tmp, done, mtime


def test_reuse_reads_both_rows_without_training(tables):
  tmp, done, mtime = tables
  assert (tmp / 'runs' / 'single_frame' / 'results.json').stat().st_mtime == mtime
  assert 'training in' not in done.stderr
  assert done.stderr.count(': reused ') == len(detection_table.ROWS)


def test_table_has_both_rows_and_agrees_with_its_json(tables):
  tmp, done, *_ = tables
  text = (tmp / 'out' / 'detection_table.md').read_text()
  assert done.stdout == text
  doc = json.loads((tmp / 'out' / 'detection_table.json').read_text())
  assert [r['key'] for r in doc['rows']] == [row.key for row in detection_table.ROWS]
  assert all(r['reused'] for r in doc['rows'])
  test = _table(text, '## Test split')
  column = test['header'].index('test mAP@[.5:.95]')
  for record in doc['rows']:
    assert record['step'] == 4 and record['num_params'] > 0
    assert ('--config.model.yolo.temporal=attention' in record['command']) == (
        record['key'] == 'attention')
    for split in ('test', 'eval'):
      for key in detection_table.SCALARS:
        low = -float('inf') if key == 'MOTA' else 0.0  # MOTA is negative past 100% errors.
        assert low <= record[split][key] <= 1, (split, key)
    assert test[record['name']][column] == f"{record['test']['mAP']:.3f}"
    assert [p['step'] for p in record['curve']][-1] == 4
  assert 'COCO val2017' in text and 'MOT17 test' in text and 'ByteTrack' in text
  per_class = _table(text, '## Per-class test AP50')
  assert per_class['header'][-1] == 'any class'
  for record in doc['rows']:
    assert per_class[record['name']][-1] == f"{record['test']['agnostic_AP50']:.3f}"
  assert re.search(r'train/val/test 4/1/1 videos', text) and '7 classes' in text
  assert 'python -m vidjax.main --config configs/detection.py --workdir' in text


def test_targets_follow_the_numbers(tables):
  tmp, *_ = tables
  text = (tmp / 'out' / 'detection_table.md').read_text()
  targets = _table(text, "## The issue's targets")
  doc = json.loads((tmp / 'out' / 'detection_table.json').read_text())
  for record in doc['rows']:
    cells = targets[record['name']]
    for target, cell in zip(detection_table.TARGETS, cells[1:]):
      value = (record['wall_seconds'] / 60 if target.metric == 'minutes'
               else record[target.split][target.metric])
      met = value <= target.threshold if target.at_most else value >= target.threshold
      assert cell.startswith('met' if met else 'not met'), (target.label, cell)
    assert cells[-1] == ('met' if all(c.startswith('met') for c in cells[1:-1]) else 'not met')


def test_target_checks_and_reuse_decision(tmp_path):
  record = {'wall_seconds': 1900.0, 'test': {'AP50': 0.95, 'mAP': 0.64, 'IDF1': 0.8,
                                             'HOTA': None}}
  met = {k: v['met'] for k, v in detection_table.target_checks(record).items()}
  assert list(met.values()) == [True, False, False, True, False]
  config = detection_table.load_config(['--config.train.num_steps=7'])
  assert detection_table.finished(tmp_path, config) is None  # No results.json.
  (tmp_path / 'results.json').write_text(json.dumps({'task': 'detection', 'step': 6}))
  assert detection_table.finished(tmp_path, config) is None  # Stopped early.
  (tmp_path / 'results.json').write_text(json.dumps({'task': 'detection', 'step': 7}))
  assert detection_table.finished(tmp_path, config)['step'] == 7


def test_rescore_scores_a_reused_row_again_with_the_config_as_it_is_now(tmp_path,
                                                                         tiny_detection_run):
  """--rescore: the same weights through `--mode evaluate`, its evaluation.json in the table;
  the boxes (mAP) stay the run's and results.json is not touched."""
  root, trained, *_ = tiny_detection_run
  tmp, workdir = tmp_path, tmp_path / 'runs' / 'single_frame'
  shutil.copytree(trained, workdir)
  before = json.loads((workdir / 'results.json').read_text())
  with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()) as err:
    detection_table.main(['--rescore', '--rows', 'single_frame'])
  assert '--rescore scores reused rows again: give --reuse too' in err.getvalue()
  done = _invoke(tmp, root, '--rows', 'single_frame', '--reuse', '--rescore',
                 '--override', 'detection.track_class_aware=true')
  assert 'scoring single_frame again' in done.stderr
  (record,) = json.loads((tmp / 'out' / 'detection_table.json').read_text())['rows']
  again = json.loads((workdir / 'evaluation.json').read_text())
  assert record['rescored'] and record['test'] == again['test'] and record['eval'] == again['eval']
  assert record['test']['mAP'] == pytest.approx(before['test']['mAP'], abs=1e-6)
  assert json.loads((workdir / 'results.json').read_text()) == before
  assert 'Scored again (--rescore)' in done.stdout
