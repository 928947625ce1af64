"""Exact resume: a restored input iterator gives the uninterrupted run's batches.

Through the real checkpoint (orbax, `vidjax.checkpoint.Checkpointer`), with
a worker process decoding, and with every random stage on: random resized
crop, flip, colour jitter, mixup and cutmix; then resumed with another
number of workers.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import tiny_config
from vidjax import checkpoint
from vidjax.data import pipeline
from vidjax.data.records import Record
from vidjax.tasks import classification

SAVE_AT, MORE = 3, 3


def _records(root, split):
  lines = (root / f'{split}.csv').read_text().splitlines()[1:]
  names = (root / 'classes.txt').read_text().split()
  return [Record(str(root / p), {'label': names.index(label)})
          for p, label in (l.split(',') for l in lines)], names


def _iterator(records, names, workers):
  data = tiny_config('').data
  with data.unlocked():
    data.num_workers = workers
    data.train_crop = 'random_resized'
    data.flip = True
    data.color_jitter = (0.3, 0.3, 0.3)
    data.mixup_alpha = 0.8
    data.cutmix_alpha = 1.0
  failures = pipeline.FailureCounter('train', 0.5)
  targets, mix = classification.training_targets(data, names, seed=7)
  return iter(pipeline.train_dataset(records, data, batch_size=4, seed=7, failures=failures,
                                     targets=targets, batch_fn=mix))


def test_resumed_batches_equal_the_uninterrupted_run_byte_for_byte(tiny_actions_root, tmp_path):
  records, names = _records(tiny_actions_root, 'train')
  records = records[:10]  # Epochs of 10 videos: the run crosses an epoch boundary.
  state = {'w': jnp.arange(3.0)}
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                          state)

  straight = _iterator(records, names, workers=1)
  expected = [next(straight) for _ in range(SAVE_AT + MORE)]
  straight.close()

  first = _iterator(records, names, workers=1)
  for batch, want in zip([next(first) for _ in range(SAVE_AT)], expected):
    assert batch['video'].tobytes() == want['video'].tobytes()
  ckpt = checkpoint.Checkpointer(tmp_path)
  ckpt.save(SAVE_AT, state, {'run': 'test'}, checkpoint.DataPosition(first), force=True)
  ckpt.close()
  next(first)  # Reading on after the save must not change what was saved.
  first.close()

  for workers in (1, 0):  # The same worker count, and another one.
    resumed = _iterator(records, names, workers=workers)
    ckpt = checkpoint.Checkpointer(tmp_path)
    restored, step = ckpt.restore_latest(abstract, resumed)
    ckpt.close()
    assert step == SAVE_AT
    np.testing.assert_array_equal(restored['w'], state['w'])
    got = [next(resumed) for _ in range(MORE)]
    resumed.close()
    for batch, want in zip(got, expected[SAVE_AT:]):
      assert sorted(batch) == ['label', 'target', 'video']
      for key in batch:
        assert batch[key].dtype == want[key].dtype and batch[key].shape == want[key].shape
        assert batch[key].tobytes() == want[key].tobytes(), (workers, key)
  # And an uninterrupted stream does not depend on the number of workers.
  in_process = _iterator(records, names, workers=0)
  for want in expected:
    batch = next(in_process)
    assert all(batch[k].tobytes() == want[k].tobytes() for k in want)


def test_state_is_small_and_a_foreign_state_is_refused(tiny_actions_root):
  records, names = _records(tiny_actions_root, 'train')
  it = _iterator(records[:6], names, workers=0)
  next(it)
  assert it.get_state() == {'clips_read': 4, 'batches': 1}
  with pytest.raises(ValueError, match='not a vidjax training stream position'):
    it.set_state({'next_index': 3})
