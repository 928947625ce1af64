"""experiments/bench_augment.py --quick: the old-vs-new augmentation table, end to end.

It checks the plumbing, not the speed: one row with ordered, positive
timings, outputs equal, the markdown is what was printed, and the JSON and
the markdown agree.
"""
import json
import subprocess
import sys

from tests.conftest import REPO


def test_quick_bench_augment_writes_a_well_formed_table(tmp_path):
  proc = subprocess.run(
      [sys.executable, 'experiments/bench_augment.py', '--quick', '--out', str(tmp_path)],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads((tmp_path / 'bench_augment.json').read_text())
  markdown = (tmp_path / 'bench_augment.md').read_text()
  assert markdown == proc.stdout.split('\nwrote ')[0] + '\n'
  assert 'python experiments/bench_augment.py --quick' in markdown

  [row] = result['rows']
  assert row['input'] == '4x24x32x3' and row['output'] == '4x16x16x3' and row['outputs_equal']
  for key in ('old_ms', 'new_ms', 'speedup'):
    assert 0 < row[key]['min'] <= row[key]['median'] <= row[key]['max'], row
  assert set(row['stages_ms']) == {'random_resized_crop', 'horizontal_flip', 'color_jitter'}
  cells = next(line for line in markdown.splitlines() if line.startswith('| 4x24x32x3 | 4x16'))
  assert f"{row['speedup']['median']:.2f}x" in cells
  assert len({line.count('|') for line in markdown.splitlines()
              if line.startswith('| input | output') or line.startswith('| 4x24x32x3 | 4x16')}) == 1
