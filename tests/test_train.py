"""The training loop: sharded steps, exact resume, outputs, the NaN guard."""
import json

import jax
import ml_collections
import numpy as np
import pytest

from tests.conftest import classifier, tiny_config
from vidjax import parallel, steps, train


def _steps_on_mesh(config, mesh, batches):
  task, model = classifier(config)
  tx, schedule = steps.make_optimizer(config.optim, config.train.num_steps)
  state, abstract = steps.create_state(config, model, tx, mesh)
  step = steps.make_update_step(config, task.loss_fn(model), tx, schedule, abstract, mesh)
  losses = []
  for batch in batches:
    state, metrics = step(state, parallel.global_batch(batch, mesh))
    losses.append(float(metrics['loss']))
  return losses, jax.device_get(state.params)


def test_sharded_step_equals_single_device(tmp_path):
  assert jax.device_count() == 8, 'conftest sets 8 simulated CPU devices'
  config = tiny_config(tmp_path)
  rng = np.random.default_rng(0)
  batches = [{'video': rng.integers(0, 256, (16, 4, 32, 32, 3), dtype=np.uint8),
              'label': rng.integers(0, 12, (16,), dtype=np.int32)} for _ in range(3)]
  one_losses, one_params = _steps_on_mesh(config, parallel.make_mesh(1, 1), batches)
  eight_losses, eight_params = _steps_on_mesh(config, parallel.make_mesh(-1, 1), batches)
  np.testing.assert_allclose(eight_losses, one_losses, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               eight_params, one_params)
  assert one_losses[0] != one_losses[-1]  # The steps really updated something.


def _losses(workdir):
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return {r['step']: r['train/loss'] for r in rows if 'train/loss' in r}


def test_resume_is_bitwise_equal_to_uninterrupted_run(tiny_actions_root, tmp_path):
  straight = train.train_and_evaluate(tiny_config(tiny_actions_root), tmp_path / 'straight')
  stopped = train.train_and_evaluate(tiny_config(tiny_actions_root, **{'train.stop_after_steps': 3}),
                                     tmp_path / 'resumed')
  assert stopped['stopped_at'] == 3
  resumed = train.train_and_evaluate(tiny_config(tiny_actions_root), tmp_path / 'resumed')
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed['state'].params),
               jax.device_get(straight['state'].params))
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed['state'].opt_state),
               jax.device_get(straight['state'].opt_state))
  assert _losses(tmp_path / 'resumed') == _losses(tmp_path / 'straight')
  assert resumed['test']['top1'] == straight['test']['top1']


def test_run_writes_its_outputs_and_metrics(tiny_actions_root, tmp_path, capsys):
  final = train.train_and_evaluate(tiny_config(tiny_actions_root, **{'data.num_workers': 1}), tmp_path)
  for name in ('training_curves.png', 'confusion_test.png', 'results.json', 'classes.json'):
    assert (tmp_path / name).stat().st_size > 0, name
  assert list((tmp_path / 'tensorboard').glob('events.out.tfevents.*'))
  results = json.loads((tmp_path / 'results.json').read_text())
  assert results['test_num_videos'] == 12 and results['eval_num_videos'] == 12
  assert results['gflops_per_clip'] > 0 and results['num_params'] > 0
  assert final['test']['confusion'].sum() == 12
  out = capsys.readouterr().out
  assert 'test top-1 / top-5' in out and 'GFLOPs/clip' in out
  # A finished run, re-run in its workdir, trains no more and evaluates again.
  again = train.train_and_evaluate(tiny_config(tiny_actions_root), tmp_path)
  assert int(again['state'].step) == 6


def test_nonfinite_loss_stops_with_the_step(tiny_actions_root, tmp_path):
  config = tiny_config(tiny_actions_root, **{'optim.learning_rate': 1e30, 'optim.grad_clip_norm': 0.0,
                                             'optim.warmup_steps': 0})
  with pytest.raises(train.NonFiniteError, match=r'non-finite (loss|gradients) at step \d+'):
    train.train_and_evaluate(config, tmp_path)


@pytest.mark.parametrize('name', ['rmsprop', 'adamw'])
def test_adaptive_optimizers_ignore_the_loss_scale(name):
  """A per-pixel-mean loss has gradients ~1e-5: an eps inside the square root (optax's
  rmsprop default) would outweigh g^2 and shrink the steps; the update must not notice."""
  optim = ml_collections.ConfigDict(dict(
      name=name, learning_rate=1e-3, warmup_steps=0, schedule='constant', weight_decay=0.0,
      momentum=0.9, grad_clip_norm=0.0, layer_decay=1.0))
  tx, _ = steps.make_optimizer(optim, num_steps=10)
  params = {'w': np.zeros(64, np.float32)}
  rng = np.random.default_rng(0)
  grads = (rng.choice([-1, 1], 64) * rng.uniform(0.5, 2.0, 64)).astype(np.float32)
  updates = {}
  for scale in (1.0, 1e-5):
    state = tx.init(params)
    for _ in range(3):
      update, state = tx.update({'w': grads * scale}, state, params)
    updates[scale] = np.asarray(update['w'])
  np.testing.assert_allclose(updates[1e-5], updates[1.0], rtol=0.01)


def test_progress_bar_counts_finished_steps(tiny_actions_root, tmp_path, monkeypatch):
  """The bar moves to step k - 1 once step k is queued and k - 1 has finished, and to k at each
  log (which waits for it): never ahead of the device, as a bar moved at dispatch would be."""
  import tqdm

  class Recorder:
    def __init__(self, total, initial, **_):
      self.n, self.total, self.seen = initial, total, []

    def update(self, k):
      self.n += k
      self.seen.append(self.n)

    def set_postfix(self, **_):
      pass

    def close(self):
      bars.append(self)

  bars = []
  monkeypatch.setattr(tqdm, 'tqdm', Recorder)
  config = tiny_config(tiny_actions_root, **{'train.progress_bar': True, 'train.log_every': 3})
  train.train_and_evaluate(config, tmp_path)
  assert len(bars) == 1 and bars[0].total == 6
  assert bars[0].seen == [1, 2, 3, 4, 5, 6]  # Step 1 shows only once step 2 is queued.
