"""Devices: start-up, the mesh, per-process input, FSDP, checkpoints across device counts.

On the 8 simulated CPU devices of conftest: each process's input is its
rows of the single-process batches; an FSDP step computes what a
replicated step does; a checkpoint saved on 8 devices restores onto 4 (and
back), replicated or FSDP, with its arrays equal, then trains on.
(tests/test_multihost.py runs 2 real processes.)
"""
import json

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from tests.conftest import classifier, tiny_config
from vidjax import checkpoint, parallel, steps, train
from vidjax.data import pipeline
from vidjax.data.records import Record
from vidjax.errors import UserError
from vidjax.tasks import classification

SMALL = {'model.name': 'single_frame'}  # The quickest model to compile.


# ----------------------------------------------------------------- start-up

@pytest.mark.parametrize('environ, expected', [
    ({}, ''),
    ({'SLURM_NTASKS': '1', 'SLURM_JOB_ID': '7', 'SLURM_STEP_NODELIST': 'n1', 'SLURM_PROCID': '0',
      'SLURM_LOCALID': '0'}, ''),
    ({'SLURM_NTASKS': '4', 'SLURM_JOB_ID': '7', 'SLURM_STEP_NODELIST': 'n[1-4]',
      'SLURM_PROCID': '2', 'SLURM_LOCALID': '0'}, 'slurm'),
    ({'SLURM_NTASKS': '4', 'SLURM_JOB_ID': '7'}, ''),  # sbatch's own shell, outside srun.
    ({'TPU_WORKER_HOSTNAMES': 'localhost'}, ''),
    ({'TPU_WORKER_HOSTNAMES': 'w-0,w-1,w-2,w-3'}, 'tpu'),
])
def test_cluster_detection_from_the_environment(environ, expected):
  assert parallel.cluster_detected(environ, tpu_vm_workers=lambda: 0) == expected


def test_cluster_detection_on_a_tpu_vm_asks_the_slice_size():
  assert parallel.cluster_detected({}, tpu_vm_workers=lambda: 4) == 'tpu'
  assert parallel.cluster_detected({}, tpu_vm_workers=lambda: 1) == ''


def test_one_host_does_not_start_jax_distributed(monkeypatch):
  monkeypatch.setattr(parallel, 'cluster_detected', lambda: '')
  monkeypatch.setattr(jax.distributed, 'initialize',
                      lambda *a, **k: pytest.fail('jax.distributed.initialize was called'))
  parallel.initialize()
  assert jax.process_count() == 1


def test_explicit_flags_are_checked_before_connecting():
  with pytest.raises(UserError, match='--num_processes'):
    parallel.initialize('localhost:1234', num_processes=2, process_id=-1)


# ------------------------------------------------------- per-process input

def _train_batches(records, names, process_index, process_count, count, state=None):
  data = tiny_config('').data
  with data.unlocked():  # Every random stage on.
    data.train_crop = 'random_resized'
    data.flip = True
    data.color_jitter = (0.3, 0.3, 0.3)
  failures = pipeline.FailureCounter('train', 0.5)
  targets, mix = classification.training_targets(data, names, seed=5)
  it = iter(pipeline.train_dataset(records, data, batch_size=4, seed=5, failures=failures,
                                   targets=targets, batch_fn=mix, process_index=process_index,
                                   process_count=process_count))
  if state is not None:
    it.set_state(state)
  batches = [next(it) for _ in range(count)]
  return batches, it.get_state(), failures


def test_each_process_reads_its_rows_of_the_single_process_batches(tiny_actions_root, tmp_path):
  lines = (tiny_actions_root / 'train.csv').read_text().splitlines()[1:11]
  names = (tiny_actions_root / 'classes.txt').read_text().split()
  records = [Record(str(tiny_actions_root / p), {'label': names.index(c)})
             for p, c in (l.split(',') for l in lines)]
  records.append(Record(str(tmp_path / 'missing.mp4'), {'label': 0}))  # Fails: replaced in its row.
  one, _, failures = _train_batches(records, names, 0, 1, 4)
  assert str(tmp_path / 'missing.mp4') in failures.failed  # 16 rows of an 11-video epoch.
  halves = [_train_batches(records, names, p, 2, 4) for p in (0, 1)]
  for b, batch in enumerate(one):
    for key in ('video', 'label'):
      joined = np.concatenate([halves[0][0][b][key], halves[1][0][b][key]])
      assert joined.tobytes() == batch[key].tobytes(), (b, key)
  # The position is global: 2 processes' checkpoint resumes in 1, and back.
  assert halves[0][1] == halves[1][1] == {'clips_read': 16, 'batches': 4}
  _, state_2, _ = _train_batches(records, names, 1, 2, 2)
  resumed, _, _ = _train_batches(records, names, 0, 1, 2, state=state_2)
  for got, want in zip(resumed, one[2:]):
    assert got['video'].tobytes() == want['video'].tobytes()
  with pytest.raises(UserError, match='not divisible by the 3 processes'):
    _train_batches(records, names, 0, 3, 1)


# --------------------------------------------------------------- the mesh

def test_mesh_shapes_and_process_order():
  mesh = parallel.make_mesh()
  assert dict(mesh.shape) == {'data': 8, 'model': 1}
  assert dict(parallel.make_mesh(-1, 2).shape) == {'data': 4, 'model': 2}
  assert dict(parallel.make_mesh(4, 1).shape) == {'data': 4, 'model': 1}
  reversed_mesh = parallel.make_mesh(devices=jax.devices()[::-1])
  assert [d.id for d in reversed_mesh.devices.flat] == sorted(d.id for d in jax.devices())
  with pytest.raises(UserError, match='does not divide'):
    parallel.make_mesh(-1, 3)


@pytest.mark.parametrize('shape, data, expected', [
    ((1024, 32), 8, P('data')),  # The largest dimension.
    ((32, 1024), 8, P(None, 'data')),
    ((3, 3, 16, 1024), 4, P(None, None, None, 'data')),
    ((1000, 64), 8, P('data')),  # 1000 = 8 x 125.
    ((1001, 64), 8, P(None, 'data')),  # The largest divisible one.
    ((1001, 63), 8, P()),  # None divisible: whole.
    ((128,), 8, P()),  # Small: whole.
    ((), 8, P()),
    ((1024, 32), 1, P()),
])
def test_fsdp_spec_by_hand(shape, data, expected):
  assert parallel.fsdp_spec(shape, data) == expected


def _model_and_optimizer(config):
  _, model = classifier(config)
  tx, schedule = steps.make_optimizer(config.optim, config.train.num_steps)
  return model, tx, schedule


def test_fsdp_shards_big_parameters_and_their_adam_moments(tmp_path):
  config = tiny_config(tmp_path, **SMALL, **{'mesh.param_sharding': 'fsdp'})
  model, tx, _ = _model_and_optimizer(config)
  _, abstract = steps.abstract_state(config, model, tx, parallel.make_mesh())
  specs = {jax.tree_util.keystr(path): (leaf.shape, leaf.sharding.spec)
           for path, leaf in jax.tree_util.tree_leaves_with_path(abstract)}
  sharded = {k: v for k, v in specs.items() if v[1] != P()}
  assert sharded, specs
  for key, (shape, spec) in specs.items():
    assert (np.prod(shape) >= parallel.FSDP_MIN_SIZE) == (spec != P()) or \
        all(d % 8 for d in shape), key
  params = [k for k in sharded if k.startswith('.params')]
  moments = [k for k in sharded if k.startswith('.opt_state')]
  assert params and len(moments) == 2 * len(params)  # Adam's mu and nu follow each one.
  with pytest.raises(UserError, match="use one of replicated, fsdp"):
    parallel.state_shardings({}, parallel.make_mesh(), 'zero3')


def _train(config, state, shardings, mesh, batches):
  """Losses of `batches` from `state`, jitted with the state's `shardings`."""
  task, model = classifier(config)
  tx, schedule = steps.make_optimizer(config.optim, config.train.num_steps)
  step = steps.make_update_step(config, task.loss_fn(model), tx, schedule, shardings, mesh,
                                donate=False)
  losses = []
  for batch in batches:
    state, metrics = step(state, parallel.global_batch(batch, mesh))
    losses.append(float(metrics['loss']))
  return losses, state


def test_fsdp_step_equals_the_replicated_step(tmp_path):
  rng = np.random.default_rng(0)
  batches = [{'video': rng.integers(0, 256, (16, 4, 32, 32, 3), dtype=np.uint8),
              'label': rng.integers(0, 12, (16,), dtype=np.int32)} for _ in range(3)]
  mesh = parallel.make_mesh()
  config = tiny_config(tmp_path, **SMALL)
  model, tx, _ = _model_and_optimizer(config)
  state, abstract = steps.create_state(config, model, tx, mesh)
  replicated = jax.tree.map(lambda s: s.sharding, abstract)
  fsdp = parallel.state_shardings(abstract, mesh, 'fsdp')
  fsdp_state = jax.device_put(state, fsdp)  # The same numbers, FSDP layout.
  assert any(leaf.sharding.spec != P() for leaf in jax.tree.leaves(fsdp_state.params))

  replicated_losses, _ = _train(config, state, replicated, mesh, batches)
  fsdp_losses, fsdp_state = _train(config, fsdp_state, fsdp, mesh, batches)
  np.testing.assert_allclose(fsdp_losses, replicated_losses, rtol=1e-5)
  assert replicated_losses[0] != replicated_losses[-1]
  assert jax.tree.leaves(fsdp_state.params)[0].sharding in jax.tree.leaves(fsdp)


# ----------------------------------------------------- checkpoints, resharded

def _restore(workdir, config, mesh):
  model, tx, _ = _model_and_optimizer(config)
  _, abstract = steps.abstract_state(config, model, tx, mesh)
  ckpt = checkpoint.Checkpointer(workdir)
  try:
    state, step = ckpt.restore_latest(abstract)
  finally:
    ckpt.close()
  return state, step, abstract


def _assert_same_state(a, b):
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(a.params), jax.device_get(b.params))
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(a.opt_state),
               jax.device_get(b.opt_state))
  assert int(a.step) == int(b.step)


def test_checkpoint_moves_between_8_and_4_devices_replicated_and_fsdp(tiny_actions_root, tmp_path):
  on_8 = tiny_config(tiny_actions_root, **SMALL, **{'train.stop_after_steps': 3})
  on_4_fsdp = tiny_config(tiny_actions_root, **SMALL, **{'mesh.data': 4,
                                                         'mesh.param_sharding': 'fsdp'})
  saved = train.train_and_evaluate(on_8, tmp_path)['state']  # Steps 1-3 on 8 devices.
  assert all(len(leaf.sharding.device_set) == 8 for leaf in jax.tree.leaves(saved))

  # 8 devices, replicated -> 4 devices, FSDP: every array equal, in its new layout.
  mesh_4 = parallel.make_mesh(4, 1)
  restored, step, abstract = _restore(tmp_path, on_4_fsdp, mesh_4)
  assert step == 3
  _assert_same_state(restored, saved)
  for leaf, want in zip(jax.tree.leaves(restored), jax.tree.leaves(abstract)):
    assert leaf.sharding == want.sharding
  assert any(leaf.sharding.spec != P() for leaf in jax.tree.leaves(restored.params))

  # Training goes on from there on 4 devices, to the end.
  final = train.train_and_evaluate(on_4_fsdp, tmp_path)
  rows = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  losses = {r['step']: r['train/loss'] for r in rows if 'train/loss' in r}
  assert sorted(losses) == [1, 2, 3, 4, 5, 6] and np.isfinite(list(losses.values())).all()
  assert final['test']['num_videos'] == 12

  # 4 devices, FSDP -> 8 devices, replicated.
  back, step, _ = _restore(tmp_path, tiny_config(tiny_actions_root, **SMALL), parallel.make_mesh())
  assert step == 6
  _assert_same_state(back, final['state'])
  assert all(leaf.sharding.spec == P() and len(leaf.sharding.device_set) == 8
             for leaf in jax.tree.leaves(back))


def test_data_position_restores_in_another_number_of_processes(tmp_path):
  """A position written by 2 processes (files process_<i>-of-2.json) restores in 1."""

  class Position:
    state = None

    def get_state(self):
      return json.dumps({'clips_read': 48, 'batches': 6}).encode()

    def set_state(self, state):
      self.state = state

    def start_prefetch(self):
      pass

  state = {'w': jax.numpy.arange(3.0)}
  ckpt = checkpoint.Checkpointer(tmp_path)
  ckpt.save(6, state, {'run': 'test'}, Position(), force=True)
  ckpt.close()
  data = tmp_path / 'checkpoints' / '6' / 'data'
  (data / 'process_0-of-1.json').rename(data / 'process_0-of-2.json')
  (data / 'process_1-of-2.json').write_text((data / 'process_0-of-2.json').read_text())
  target = Position()
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                          state)
  ckpt = checkpoint.Checkpointer(tmp_path)
  _, step = ckpt.restore_latest(abstract, target)
  ckpt.close()
  assert step == 6 and target.state == {'clips_read': 48, 'batches': 6}
