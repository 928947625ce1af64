"""A run's config that differs from its checkpoint's is the user's mismatch, not a broken step.

Evaluate and predict read only the parameters, so another optimizer config
works there; train refuses it in one line; no good checkpoint is ever moved
to `checkpoints_broken/`. A step that truly cannot be read still is.
"""
import logging
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.conftest import run_vidjax as vidjax
from tests.conftest import tiny_flags
from vidjax import checkpoint as checkpoint_lib

TINY = [f for f in tiny_flags('') if not f.startswith('--config.data.root')]


def _listing(workdir: pathlib.Path) -> tuple[list[str], bool]:
  steps = sorted(p.name for p in (workdir / 'checkpoints').iterdir())
  return steps, (workdir / 'checkpoints_broken').exists()


@pytest.fixture(scope='module')
def adamw_workdir(trained_workdir, tmp_path_factory):
  """A copy of the session's 4-step run (adamw, the same TINY flags): a bug here must not
  break the other tests of that workdir, and a copy costs no second training."""
  return shutil.copytree(trained_workdir, tmp_path_factory.mktemp('adamw') / 'run')


def test_evaluate_and_predict_with_another_optimizer_then_train_refuses(adamw_workdir,
                                                                         tiny_actions_root):
  common = ['--config', 'configs/default.py', '--workdir', adamw_workdir,
            f'--config.data.root={tiny_actions_root}', *TINY, '--config.optim.name=sgd']
  before = _listing(adamw_workdir)
  assert before == (['4'], False)

  result = vidjax(*common, '--config.train.num_steps=4', '--mode', 'evaluate')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'test top-1 / top-5' in result.stdout and 'step 4' in result.stdout

  video = sorted((tiny_actions_root / 'videos' / 'test').glob('*.mp4'))[0]
  result = vidjax(*common, '--config.train.num_steps=4', '--mode', 'predict', '--video', video)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.splitlines()[0] == str(video)
  assert _listing(adamw_workdir) == before

  result = vidjax(*common, '--config.train.num_steps=8')
  assert result.returncode == 2, result.stderr[-3000:]
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr[-3000:]
  assert 'optim.name' in lines[0] and 'adamw' in lines[0], lines[0]
  assert _listing(adamw_workdir) == before


# In-process: the checkpoint module alone, on small trees shaped as the loop's state.

PARAMS = {'params': {'dense': {'kernel': jnp.ones((3, 2)), 'bias': jnp.zeros((2,))}}}


def _state(optimizer, params=PARAMS, step=4):
  return {'step': jnp.int32(step), 'params': params, 'opt_state': optimizer.init(params)}


def _abstract(tree):
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def _save(workdir, states_and_meta):
  ckpt = checkpoint_lib.Checkpointer(workdir)
  for step, state, meta in states_and_meta:
    ckpt.save(step, state, meta, force=True)
  ckpt.close()


def test_checkpoint_without_optim_meta_names_optim_and_moves_nothing(tmp_path):
  _save(tmp_path, [(4, _state(optax.adamw(1e-3)), {'model': 'm'})])  # Meta from before 'optim'.
  ckpt = checkpoint_lib.Checkpointer(tmp_path)
  sgd = _abstract(_state(optax.sgd(1e-3, momentum=0.9)))
  with pytest.raises(checkpoint_lib.CheckpointError) as e:
    ckpt.restore_latest(sgd, meta={'model': 'm', 'optim': {'name': 'sgd'}})
  message = str(e.value)
  assert '\n' not in message
  assert 'step 4 was written with other optim.* settings (such as optim.name)' in message
  assert 'the checkpoint has no opt_state.0.trace but has opt_state.0.count' in message
  assert message.endswith('rerun with the optim settings the run was trained with, or use a '
                          'new --workdir')
  params, step = ckpt.restore_params(sgd['params'], {'model': 'm', 'optim': {'name': 'sgd'}})
  ckpt.close()
  assert step == 4
  jax.tree.map(np.testing.assert_array_equal, params, PARAMS)
  assert _listing(tmp_path) == (['4'], False)


def test_optim_name_in_meta_is_named_with_the_fix(tmp_path):
  _save(tmp_path, [(4, _state(optax.adamw(1e-3)), {'model': 'm', 'optim': {'name': 'adamw'}})])
  ckpt = checkpoint_lib.Checkpointer(tmp_path)
  with pytest.raises(checkpoint_lib.CheckpointError) as e:
    ckpt.restore_latest(_abstract(_state(optax.sgd(1e-3, momentum=0.9))),
                        meta={'model': 'm', 'optim': {'name': 'sgd'}})
  ckpt.close()
  assert str(e.value) == (f"{tmp_path}/checkpoints was trained with optim.name='adamw', but this "
                          "config has optim.name='sgd'; rerun with --config.optim.name=adamw, or "
                          'use a new --workdir')
  assert _listing(tmp_path) == (['4'], False)


def test_a_learning_rate_change_resumes_and_is_logged(tmp_path, caplog):
  saved = {'model': 'm', 'optim': {'name': 'adamw', 'learning_rate': 1e-3}}
  _save(tmp_path, [(4, _state(optax.adamw(1e-3)), saved)])
  ckpt = checkpoint_lib.Checkpointer(tmp_path)
  with caplog.at_level(logging.INFO, logger='vidjax'):
    _, step = ckpt.restore_latest(_abstract(_state(optax.adamw(1e-3))),
                                  meta={'model': 'm', 'optim': {'name': 'adamw',
                                                                'learning_rate': 2e-4}})
  ckpt.close()
  assert step == 4
  assert any('optim.learning_rate 0.001 -> 0.0002' in r.message for r in caplog.records)


def test_other_parameter_shapes_are_a_mismatch_not_a_broken_step(tmp_path):
  _save(tmp_path, [(4, _state(optax.adamw(1e-3)), {'model': 'm'})])
  wider = {'params': {'dense': {'kernel': jnp.ones((3, 5)), 'bias': jnp.zeros((5,))}}}
  ckpt = checkpoint_lib.Checkpointer(tmp_path)
  with pytest.raises(checkpoint_lib.CheckpointError, match=r'holds another state than this config '
                     r'builds: params\.params\.dense\.bias has shape \(2,\) in the checkpoint but '
                     r'\(5,\) in this config'):
    ckpt.restore_params(_abstract(wider), {'model': 'm'})
  ckpt.close()
  assert _listing(tmp_path) == (['4'], False)


def _delete_arrays(step_dir: pathlib.Path):
  for path in (step_dir / 'state').rglob('*'):
    if path.is_file() and ('ocdbt' in str(path) or path.parent.name == 'd'):
      path.unlink()


def _delete_tree_metadata(step_dir: pathlib.Path):
  (step_dir / 'state' / '_METADATA').unlink()


@pytest.mark.parametrize('damage', [_delete_arrays, _delete_tree_metadata])
@pytest.mark.parametrize('params_only', [False, True])
def test_a_truly_broken_newest_step_is_still_set_aside(damage, params_only, tmp_path, caplog):
  meta = {'model': 'm', 'optim': {'name': 'adamw'}}
  older = {'params': {'dense': {'kernel': jnp.full((3, 2), 2.0), 'bias': jnp.ones((2,))}}}
  _save(tmp_path, [(2, _state(optax.adamw(1e-3), older, 2), meta),
                   (4, _state(optax.adamw(1e-3)), meta)])
  damage(tmp_path / 'checkpoints' / '4')
  ckpt = checkpoint_lib.Checkpointer(tmp_path)
  abstract = _abstract(_state(optax.adamw(1e-3)))
  with caplog.at_level(logging.INFO, logger='vidjax'):
    if params_only:  # Evaluate and predict, even under another optimizer.
      params, step = ckpt.restore_params(abstract['params'], {**meta, 'optim': {'name': 'sgd'}})
    else:
      state, step = ckpt.restore_latest(abstract, meta=meta)
      params = state['params']
  ckpt.close()
  assert step == 2
  jax.tree.map(np.testing.assert_array_equal, params, older)
  assert any('/checkpoints/4 cannot be restored' in r.message for r in caplog.records)
  assert _listing(tmp_path) == (['2'], True)
  assert (tmp_path / 'checkpoints_broken' / '4').is_dir()
