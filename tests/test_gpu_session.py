"""experiments/gpu_session.py: the GPU script runs end to end (--quick, on CPU) within its budget.

One real `--quick` run (the three parts, each in its own process, the training
stopped by SIGTERM at the end of its share and then evaluated) checks every
table and file the device run would bring back. The budget's enforcement is
checked on a part that never ends.
"""
import json
import os
import subprocess
import sys
import time

import pytest

from experiments import gpu_session
from tests.conftest import REPO


@pytest.fixture(scope='module')
def quick(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('gpu_session')
  # -O0: tiny models compile in half the time; nothing checked here depends on it.
  env = {**os.environ, 'XLA_FLAGS': '--xla_backend_optimization_level=0', 'JAX_PLATFORMS': 'cpu',
         'VIDJAX_CACHE': str(tmp / 'data')}
  env.pop('OUT', None)
  begin = time.time()
  proc = subprocess.run([sys.executable, 'experiments/gpu_session.py', '--quick', '--out',
                         str(tmp / 'out')], cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  out = tmp / 'out'
  return out, json.loads((out / 'gpu_session.json').read_text()), time.time() - begin


def test_every_part_measures_within_the_budget(quick):
  out, result, wall = quick
  assert result['wall_s'] <= result['budget_s'] + 5 and wall < result['budget_s'] + 30
  assert {n: p['status'] for n, p in result['parts'].items()} == {
      'bench': 'done', 'moving_mnist': 'done', 'default': 'done'}
  rows = result['bench']['rows']
  assert [r['key'] for r in rows][:2] == ['timesformer_divst_b', 'vivit_fe_b']
  measured = [r for r in rows if 'step_s' in r]
  assert measured and all(r['dtype'] == 'float32' and 0 < r['mfu'] < 1.5 for r in measured)
  assert all('skipped' in r or 'step_s' in r for r in rows), rows  # No row failed.
  m = result['moving_mnist']
  assert m['steps'] >= 1 and m['train_exit'] == 75, m  # Stopped by SIGTERM, then evaluated.
  assert m['test_bce_per_sequence'] > 0 and 'mean_frame' in m['baselines']
  assert (out / 'predictions_test.png').stat().st_size > 1000
  assert [r['dtype'] for r in result['default']['rows']] == ['float32', 'bfloat16']
  assert all(r['steps_per_s'] > 0 for r in result['default']['rows'])


def test_markdown_has_each_table(quick):
  out, result, _ = quick
  text = (out / 'gpu_session.md').read_text()
  assert text == gpu_session.markdown(result) + '\n'
  for heading in ('## Train step at full size', '## Moving MNIST', "## The main job's train step"):
    assert heading in text
  assert '| TimeSformer-divST-B |' in text and '3,670.85' in text
  assert len(os.listdir(out)) <= 8  # What the device tool brings back: 8 files, 2 folders deep.


def test_a_part_past_its_share_is_killed_and_what_it_wrote_stays(tmp_path):
  marker = tmp_path / 'written'
  child = f"import subprocess, sys, time; open({str(marker)!r}, 'w').write('x'); " \
          "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
  begin = time.time()
  with open(tmp_path / 'log', 'w') as log:
    status = gpu_session.run_part([sys.executable, '-c', child], time.time() + 3, log)
  assert status['status'] == 'timed out at the end of its share'
  assert time.time() - begin < 10 and marker.read_text() == 'x'
