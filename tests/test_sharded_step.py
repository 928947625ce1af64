"""One train step on 8 devices equals the step on 1 device, for every model family.

On 8 devices the batch is split over the mesh's `data` axis (vidjax/parallel.py)
and the gradient becomes a cross-device reduction; the loss and the updated
parameters must still be the 1-device step's, up to float summation order.
Each family starts from its real config file, shrunk, and steps with the
library's own pieces, bound as `train.train_and_evaluate` binds them: the
task's model and loss (vidjax/tasks/), the state's shardings from
`steps.abstract_state`, the batch placed by `parallel.global_batch`, and
`steps.make_update_step`, the one builder of the jitted, donated update.

The optimizer is plain SGD without clipping or weight decay, so that the
update is linear in the gradient: equal parameters then mean equal gradients.
(Adam's first step is lr * sign(g), which turns a rounding-level difference in
a near-zero gradient into a whole step; clipping would hide a gradient off by
a constant factor, such as a sum over devices where a mean belongs.)
"""

import jax
import numpy as np
import pytest

from tests.conftest import REPO
from tests.test_convlstm import _init
from vidjax import config as config_lib
from vidjax import parallel, steps, tasks

BATCH = 8  # One example per device on the 8-device mesh.
NUM_CLASSES = 5
STEP = {'optim.name': 'sgd', 'optim.learning_rate': 0.1, 'optim.schedule': 'constant',
        'optim.warmup_steps': 0, 'optim.grad_clip_norm': 0.0, 'optim.weight_decay': 0.0,
        'train.batch_size': BATCH}
CLIPS = {'data.num_frames': 4, 'data.height': 32, 'data.width': 32}  # Classification input.
CNN = {'cnn_features': (8, 16), 'cnn_embed_dim': 32}
ATTENTION = {'model.space_time_attention.' + k: v for k, v in dict(
    patch_size=8, hidden_size=16, num_layers=1, num_temporal_layers=1, num_heads=2,
    mlp_dim=32).items()}
# LLVM at -O0 halves XLA:CPU's compile time. The optimised HLO, partitioned over the mesh,
# is what is under test, and it does not change (checked on LRCN: identical text); only
# the machine code does, by 1 ulp in the parameters.
FAST_COMPILE = {'xla_backend_optimization_level': 0}
# Frame prediction's loss is a per-pixel mean, with ~30x smaller gradients: a larger step
# keeps its updates far above the parameters' float32 rounding, so that comparing the
# parameters compares the gradients.
FUTURE = {'data.moving_mnist.num_observed': 3, 'data.moving_mnist.num_future': 2,
          'optim.learning_rate': 10.0}

FAMILIES = {  # id -> (config file[:variant], overrides)
    'lrcn': ('default.py', {**CLIPS, **{f'model.lrcn.{k}': v for k, v in CNN.items()},
                            'model.lrcn.lstm_hidden_size': 16}),
    'single_frame': ('single_frame.py', {**CLIPS,
                                         **{f'model.single_frame.{k}': v for k, v in CNN.items()}}),
    'convlstm': ('convlstm.py', {**CLIPS, 'model.convlstm.stem_features': 8,
                                 'model.convlstm.stem_kernel_size': 3,
                                 'model.convlstm.hidden_sizes': (8,)}),
    **{f'space_time_attention-{p}': (f'space_time_attention.py:{p}', {**CLIPS, **ATTENTION})
       for p in ('space_only', 'joint', 'divided', 'factorized_encoder')},
    # Mean pooling, as ViViT's model 3: with CLS pooling the last block's temporal
    # attention (after the spatial one) cannot reach the CLS token, so one block would
    # leave it without a gradient.
    'space_time_attention-factorized_self_attention': (
        'space_time_attention.py:factorized_self_attention',
        {**CLIPS, **ATTENTION, 'model.space_time_attention.pooling': 'mean'}),
    'convlstm_forecaster': ('moving_mnist_convlstm.py', {
        **FUTURE, 'model.convlstm_forecaster.hidden_sizes': (4,),
        'model.convlstm_forecaster.input_kernel_size': 3,
        'model.convlstm_forecaster.state_kernel_size': 3}),
    'fc_lstm': ('moving_mnist_fc_lstm.py', {**FUTURE, 'model.fc_lstm.hidden_sizes': (16,)}),
}


def _config(family: str):
  spec, overrides = FAMILIES[family]
  overrides = {**STEP, **overrides}
  return config_lib.load(str(REPO / 'configs' / spec), [f'{k}={v}' for k, v in overrides.items()])


def _batch(config, seed: int = 0) -> dict:
  """A random global batch of the task's input: uint8 clips (and labels)."""
  rng = np.random.default_rng(seed)
  if config.task == 'frame_prediction':
    mm = config.data.moving_mnist
    return {'video': rng.integers(0, 256, (BATCH, mm.num_observed + mm.num_future, 64, 64, 1),
                                  dtype=np.uint8)}
  data = config.data
  return {'video': rng.integers(0, 256, (BATCH, data.num_frames, data.height, data.width, 3),
                                dtype=np.uint8),
          'label': rng.integers(0, NUM_CLASSES, (BATCH,), dtype=np.int32)}


def step_on_mesh(config, mesh, batch):
  """(metrics, initial params, updated params) of one step, as train_and_evaluate runs it.

  The state has the layout `steps.abstract_state` gives it on `mesh`, with
  parameters drawn in numpy (`_init`): compiling `model.init`'s initialisers
  costs seconds per model on CPU, twice per family, and the property holds
  for any parameters.
  """
  task = tasks.get(config)
  model = task.build_model({'class_names': [f'class_{i}' for i in range(NUM_CLASSES)]})
  tx, schedule = steps.make_optimizer(config.optim, config.train.num_steps)
  _, abstract = steps.abstract_state(config, model, tx, mesh)
  params = _init(model, np.zeros((1, *task.input_shape), np.float32), **task.apply_kwargs)
  initial = jax.device_get(params)
  state = steps.TrainState(step=np.int32(0), params=params, opt_state=tx.init(params),
                           nonfinite_step=np.int32(-1), nonfinite_what=np.int32(0),
                           nonfinite_count=np.int32(0))
  state_sharding = jax.tree.map(lambda s: s.sharding, abstract)
  state = jax.device_put(state, state_sharding)  # Fails unless the trees match.
  device_batch = parallel.global_batch(batch, mesh)
  rows = {shard.data.shape[0] for shard in device_batch['video'].addressable_shards}
  assert rows == {BATCH // mesh.shape[parallel.DATA_AXIS]}  # Really split over the devices.
  step = steps.make_update_step(config, task.loss_fn(model), tx, schedule, abstract, mesh).lower(
      state, device_batch).compile(FAST_COMPILE)
  state, metrics = step(state, device_batch)
  return jax.device_get(metrics), initial, jax.device_get(state.params)


@pytest.mark.parametrize('family', list(FAMILIES))
def test_eight_device_step_equals_one_device_step(family):
  assert jax.device_count() == 8, 'conftest sets 8 simulated CPU devices'
  config = _config(family)
  batch = _batch(config)
  one, initial, one_params = step_on_mesh(config, parallel.make_mesh(1, 1), batch)
  eight, _, eight_params = step_on_mesh(config, parallel.make_mesh(-1, 1), batch)

  np.testing.assert_allclose(eight['loss'], one['loss'], rtol=1e-5)
  np.testing.assert_allclose(eight['grad_norm'], one['grad_norm'], rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               eight_params, one_params)
  # Every parameter array moved, so every gradient took part in the comparison.
  paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(initial)[0]]
  unmoved = [p for p, before, after in zip(paths, jax.tree.leaves(initial),
                                           jax.tree.leaves(one_params))
             if np.array_equal(before, after)]
  assert not unmoved, unmoved
