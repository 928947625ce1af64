"""Frame prediction in the loop's other machinery: early stopping.

Early stopping is the loop's, shared with classification; this test runs it
with the frame-prediction loss. (The 8-device step of every family, the
forecasters included, is in tests/test_sharded_step.py.)
"""
import json

from tests.test_frame_prediction import fp_config
from vidjax import train


def test_early_stopping_stops_keeps_the_best_and_stays_stopped(tmp_path):
  # lr 0: every evaluation equals the first, so none improves on it.
  config = fp_config(tmp_path / 'data', **{'optim.learning_rate': 0.0, 'train.eval_every': 1,
                                           'train.early_stopping_patience': 2,
                                           'train.num_steps': 8})
  workdir = tmp_path / 'run'
  final = train.train_and_evaluate(config, workdir)
  assert final['stopped_early'] and final['best_step'] == 1 and int(final['state'].step) == 3
  assert (workdir / 'early_stopping' / 'checkpoints' / '1').is_dir()
  results = json.loads((workdir / 'results.json').read_text())
  assert results['best_step'] == 1 and results['step'] == 3
  again = train.train_and_evaluate(config, workdir)  # Re-run: stopped means done.
  assert int(again['state'].step) == 3 and again['stopped_early']
  assert again['test']['bce_per_sequence'] == final['test']['bce_per_sequence']
