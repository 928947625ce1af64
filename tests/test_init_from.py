"""Starting a run from a checkpoint (`config.init.*`, vidjax/pretrained/init_from.py)."""
import numpy as np
import pytest

from tests.conftest import TINY_CLASSIFIER_FLAGS, run_vidjax
from vidjax.errors import UserError
from vidjax.pretrained import init_from, mapping


def _fresh():
  return {'params': {'cnn': {'kernel': np.zeros((3, 4), np.float32)},
                     'lstm': {'bias': np.zeros(4, np.float32)},
                     'head': {'kernel': np.zeros((4, 5), np.float32)}}}


def test_match_by_path_takes_what_fits_and_says_so():
  source = {'cnn/kernel': np.ones((3, 4)), 'head/kernel': np.ones((4, 5)), 'extra/w': np.ones(2)}
  flat, entries = init_from.match_by_path(source, _fresh(), 'src')
  assert flat['cnn/kernel'].dtype == np.float32 and flat['cnn/kernel'].sum() == 12
  assert not flat['lstm/bias'].any()
  assert mapping.counts(entries) == {'matched': 2, 'resampled': 0, 'inflated': 0, 'new': 1,
                                     'ignored': 1}
  init_from.check_head(entries, reinit_head=False, origin='src')  # The head came along.
  params = init_from.unflatten_like(flat, _fresh())
  assert params['params']['head']['kernel'].sum() == 20
  assert 'matched   cnn/kernel (3, 4) <- cnn/kernel' in mapping.format_table(entries)


def test_a_head_of_another_class_count_needs_reinit_head():
  source = {'cnn/kernel': np.ones((3, 4)), 'head/kernel': np.ones((4, 7))}
  _, entries = init_from.match_by_path(source, _fresh(), 'src')
  with pytest.raises(UserError, match=r'head/kernel \(4, 5\) cannot come from src \(checkpoint '
                                      r'has \(4, 7\)\); set --config.init.reinit_head=true'):
    init_from.check_head(entries, reinit_head=False, origin='src')
  init_from.check_head(entries, reinit_head=True, origin='src')


def test_another_shape_or_architecture_is_one_line():
  with pytest.raises(mapping.MappingError, match=r'cnn/kernel is \(3, 8\) in src but \(3, 4\)'):
    init_from.match_by_path({'cnn/kernel': np.ones((3, 8))}, _fresh(), 'src')
  with pytest.raises(mapping.MappingError, match='no parameter of src fits this model'):
    init_from.match_by_path({'encoder/w': np.ones(3)}, _fresh(), 'src')


def test_missing_or_unknown_sources(tmp_path):
  for path, message in [(tmp_path / 'nope', 'does not exist'),
                        (tmp_path, 'neither checkpoints/'),
                        (tmp_path / 'w.ckpt', "unknown kind of file '.ckpt'")]:
    if path.suffix:
      path.write_bytes(b'x')
    with pytest.raises(UserError, match=message):
      init_from.read_vidjax(path)
  (tmp_path / 'params.npz').write_bytes(b'not a zip')
  with pytest.raises(UserError, match='is not a readable .npz'):
    init_from.read_vidjax(tmp_path)


def test_a_run_starts_from_another_runs_parameters(trained_workdir, tiny_actions_root, tmp_path):
  """At learning rate 0 the one step changes nothing: the new run's parameters are the source's."""
  workdir = tmp_path / 'fine_tuned'
  result = run_vidjax('--config', 'configs/default.py', '--workdir', str(workdir),
                      f'--config.data.root={tiny_actions_root}', *TINY_CLASSIFIER_FLAGS,
                      f'--config.init.checkpoint={trained_workdir}', '--config.train.num_steps=1',
                      '--config.optim.learning_rate=0', '--config.optim.weight_decay=0')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'initialised from' in result.stderr + result.stdout
  source, _ = init_from.read_vidjax(trained_workdir)
  started, _ = init_from.read_vidjax(workdir)
  assert source.keys() == started.keys()
  for name in source:
    np.testing.assert_array_equal(started[name], source[name], err_msg=name)
  listing = (workdir / 'init.txt').read_text()
  assert f'{len(source)} matched' in listing and 'matched   head/kernel' in listing

  # Another CNN width: one line, exit 2, and no checkpoint written.
  other = tmp_path / 'other'
  result = run_vidjax('--config', 'configs/default.py', '--workdir', str(other),
                      f'--config.data.root={tiny_actions_root}', *TINY_CLASSIFIER_FLAGS,
                      f'--config.init.checkpoint={trained_workdir}',
                      '--config.model.lrcn.cnn_embed_dim=24')
  errors = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
  assert result.returncode == 2 and len(errors) == 1 and 'Traceback' not in result.stderr
  assert 'cnn/embed/bias is (32,) in' in errors[0] and 'but (24,) in this model' in errors[0], errors
  assert not list((other / 'checkpoints').glob('[0-9]*'))


def test_evaluate_a_checkpoint_never_trained_here(trained_workdir, tiny_actions_root, tmp_path):
  """--mode evaluate on an empty workdir with init.checkpoint: a released model's evaluation."""
  workdir = tmp_path / 'released'
  result = run_vidjax('--config', 'configs/default.py', '--workdir', str(workdir),
                      f'--config.data.root={tiny_actions_root}', *TINY_CLASSIFIER_FLAGS,
                      f'--config.init.checkpoint={trained_workdir}', '--mode', 'evaluate')
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'init.checkpoint {trained_workdir} (step 4)' in result.stdout
  import json
  ours = json.loads((workdir / 'evaluation.json').read_text())
  trained = json.loads((trained_workdir / 'results.json').read_text())  # Its final evaluation.
  for split in ('eval', 'test'):  # The same numbers as the run's own final evaluation.
    assert {k: v for k, v in ours[split].items() if k != 'split'} == trained[split]
