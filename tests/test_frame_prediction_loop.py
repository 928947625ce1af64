"""Frame prediction in the loop's other machinery: early stopping, and the sharded step.

Early stopping and the 8-device step are the loop's, shared with
classification; these tests run them with the frame-prediction loss.
"""
import functools
import json

import jax
import numpy as np

from tests.test_frame_prediction import fp_config
from vidjax import parallel, train
from vidjax.models import build_forecaster
from vidjax.tasks import frame_prediction as fp


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


def _steps_on_mesh(config, mesh, batches):
  model = build_forecaster(config.model)
  tx, schedule = train.make_optimizer(config.optim, config.train.num_steps)
  state, abstract = train.create_state(config, model, tx, mesh)
  state_sharding = jax.tree.map(lambda s: s.sharding, abstract)
  loss_fn = functools.partial(fp.loss, model=model, num_observed=10, num_future=10)
  step = jax.jit(functools.partial(train.update_step, loss_fn=loss_fn, tx=tx, schedule=schedule,
                                   seed=0),
                 in_shardings=(state_sharding, parallel.batch_sharding(mesh)),
                 out_shardings=(state_sharding, parallel.replicated(mesh)), donate_argnums=(0,))
  losses = []
  for batch in batches:
    state, metrics = step(state, parallel.global_batch(batch, mesh))
    losses.append(float(metrics['loss']))
  return losses, jax.device_get(state.params)


def test_sharded_step_equals_single_device(tmp_path):
  assert jax.device_count() == 8, 'conftest sets 8 simulated CPU devices'
  config = fp_config(tmp_path)
  source = fp.train_source(config)
  batches = [{'video': np.stack([source[8 * b + i] for i in range(8)])} for b in range(2)]
  one_losses, one_params = _steps_on_mesh(config, parallel.make_mesh(1, 1), batches)
  eight_losses, eight_params = _steps_on_mesh(config, parallel.make_mesh(-1, 1), batches)
  np.testing.assert_allclose(eight_losses, one_losses, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               eight_params, one_params)
  assert one_losses[0] != one_losses[-1]
