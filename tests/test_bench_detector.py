"""experiments/bench_detector.py --quick: the detector's fps table, end to end.

It checks the plumbing, not the speed: a row per temporal mode x batch size
with positive, ordered fps, the markdown is what was printed, and the JSON
and the markdown agree. One CPU device at XLA -O0 (as tests/test_bench.py):
most of the time is compiling the two tiny rows.
"""
import json
import os
import subprocess
import sys

from tests.conftest import REPO

MODES, BATCHES = ('none', 'attention'), (2,)


def test_quick_bench_detector_writes_a_well_formed_table(tmp_path):
  env = {**os.environ, 'XLA_FLAGS': '--xla_backend_optimization_level=0', 'JAX_PLATFORMS': 'cpu'}
  proc = subprocess.run(
      [sys.executable, 'experiments/bench_detector.py', '--quick', '--out', str(tmp_path),
       '--temporal', ','.join(MODES), '--batch', ','.join(map(str, BATCHES))],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads((tmp_path / 'bench_detector.json').read_text())
  markdown = (tmp_path / 'bench_detector.md').read_text()
  assert markdown == proc.stdout.split('\nwrote ')[0] + '\n'
  assert 'python experiments/bench_detector.py --quick' in markdown and result['jax'] in markdown

  rows = {(r['temporal'], r['batch']): r for r in result['rows']}
  assert set(rows) == {(m, b) for m in MODES for b in BATCHES}
  table = {tuple(line.split(' | ')[:2]): line.split(' | ')
           for line in markdown.splitlines() if line.startswith('| ') and '---' not in line}
  for (mode, batch), r in rows.items():
    assert 'error' not in r, r
    assert 0 < r['fps_min'] <= r['fps_median'] <= r['fps_max'], r
    assert r['compile_s'] > 0 and r['num_params'] > 0 and r['gflops_per_frame'] > 0, r
    assert r['frames_read_per_detected'] == (1 if mode == 'none' else result['num_frames'])
    cells = table[(f'| {mode}', str(batch))]  # The markdown row says what the JSON says.
    assert cells[6:9] == [f"{r[k]:.1f}" for k in ('fps_median', 'fps_min', 'fps_max')], cells
  assert rows[('none', 2)]['vs_none'] == 1.0
  assert len({line.count('|') for line in markdown.splitlines() if line.startswith('|')}) == 1
