"""Static shapes: 20 train steps of every family compile the step exactly once.

A recompilation inside the loop costs seconds to minutes per step (the
bench's compile column), and it is silent: the loop just gets slower. It
happens when something the step depends on changes between calls -- a
shape, a dtype, a weak type, a Python scalar that is traced, a sharding.
So the loop's pattern is replayed here for every family (new host batches
placed with `parallel.global_batch`, the donated state fed back, metrics
fetched every few steps as train.py does), with the step built by the one
builder the loop uses (`steps.make_update_step`); and the loop itself is run
and the step it really ran is checked. Compilations are counted two ways:
JAX's compile log (`jax_log_compiles`) and the jitted step's cache size.
"""
import logging

import jax
import numpy as np
import pytest

from tests.conftest import classifier, tiny_config
from vidjax import parallel, steps, train

STEPS = 20
STA = 'model.space_time_attention.'
FAMILIES = {
    'lrcn': {},
    'single_frame': {},
    'convlstm': {'model.convlstm.stem_features': 8, 'model.convlstm.hidden_sizes': (8, 8)},
    'space_time_attention': {STA + 'attention': 'divided', STA + 'hidden_size': 16,
                             STA + 'num_layers': 1, STA + 'num_heads': 2, STA + 'mlp_dim': 32,
                             STA + 'patch_size': 16},
}


class _CompileLog(logging.Handler):
  """Collects JAX's 'Compiling <name> ...' log lines."""

  def __init__(self):
    super().__init__(logging.DEBUG)
    self.names: list[str] = []

  def emit(self, record):
    message = record.getMessage()
    if message.startswith('Compiling '):
      self.names.append(message.split()[1])


@pytest.fixture
def compile_log():
  handler = _CompileLog()
  logger = logging.getLogger('jax')
  logger.addHandler(handler)
  with jax.log_compiles(True):
    yield handler
  logger.removeHandler(handler)


@pytest.mark.parametrize('family', list(FAMILIES))
def test_no_recompilation_across_20_steps(family, tmp_path, compile_log):
  config = tiny_config(tmp_path, **{'model.name': family, **FAMILIES[family]})
  num_classes, batch_size = 12, 2
  mesh = parallel.make_mesh(1, 1)  # One of conftest's 8 CPU devices.
  task, model = classifier(config, num_classes)
  tx, schedule = steps.make_optimizer(config.optim, config.train.num_steps)
  state, abstract = steps.create_state(config, model, tx, mesh)
  step_fn = steps.make_update_step(config, task.loss_fn(model), tx, schedule, abstract, mesh)
  rng = np.random.default_rng(0)
  d = config.data

  def host_batch():  # What the pipeline yields: uint8 video, int32 labels, fresh each step.
    return {'video': rng.integers(0, 256, (batch_size, d.num_frames, d.height, d.width, 3),
                                  dtype=np.uint8),
            'label': rng.integers(0, num_classes, (batch_size,), dtype=np.int32)}

  pending, losses = [], []
  compiled_after_first = None
  for i in range(STEPS):
    state, metrics = step_fn(state, parallel.global_batch(host_batch(), mesh))
    pending.append(metrics)
    if i == 0:
      jax.block_until_ready(state)
      compiled_after_first = len(compile_log.names)
    if (i + 1) % 5 == 0:  # The loop's metric fetch, every log_every steps.
      losses += [float(m['loss']) for m in jax.device_get(pending)]
      pending = []
  assert int(state.step) == STEPS
  assert all(np.isfinite(losses)) and len(losses) == STEPS
  assert any('update_step' in name for name in compile_log.names[:compiled_after_first]), (
      'the compile log did not see the first compilation; the counter is broken')
  recompiled = compile_log.names[compiled_after_first:]
  assert not recompiled, f'compiled again after step 1: {recompiled}'
  assert step_fn._cache_size() == 1


def test_the_training_loop_compiles_its_step_once(tiny_actions_root, tmp_path, compile_log):
  """The step train_and_evaluate really runs: 20 steps, logs, a checkpoint, evaluations."""
  config = tiny_config(tiny_actions_root, **{'train.num_steps': STEPS, 'train.log_every': 5,
                                             'train.eval_every': 10,
                                             'train.checkpoint_every': 10})
  final = train.train_and_evaluate(config, tmp_path / 'run')
  assert int(final['state'].step) == STEPS
  updates = [name for name in compile_log.names if 'update_step' in name]
  assert len(updates) == 1, compile_log.names
  assert final['step_fn']._cache_size() == 1




def test_seeds_share_one_compiled_step(tmp_path):
  """The seed is an argument of the loop's step, not a constant in it: two seeds lower to
  the same program (so the persistent compilation cache serves both), and a traced seed
  makes the same key, so dropout draws what the seed baked in as a constant drew before."""
  mesh = parallel.make_mesh(1, 1)
  programs = []
  for seed in (0, 7):
    config = tiny_config(tmp_path, **{'seed': seed, 'model.lrcn.dropout': 0.5})
    task, model = classifier(config)
    tx, schedule = steps.make_optimizer(config.optim, config.train.num_steps)
    _, abstract = steps.abstract_state(config, model, tx, mesh, task)
    step_fn = steps.make_update_step(config, task.loss_fn(model), tx, schedule, abstract, mesh)
    d = config.data
    batch = {'video': jax.ShapeDtypeStruct((2, d.num_frames, d.height, d.width, 3), np.uint8,
                                           sharding=parallel.batch_sharding(mesh)),
             'label': jax.ShapeDtypeStruct((2,), np.int32, sharding=parallel.batch_sharding(mesh))}
    programs.append(step_fn.lower(abstract, batch).as_text())
    traced = jax.jit(jax.random.key)(step_fn.seed)
    np.testing.assert_array_equal(jax.random.key_data(traced),
                                  jax.random.key_data(jax.random.key(seed)))
  assert programs[0] == programs[1]
