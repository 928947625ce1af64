"""Moving MNIST follows the published protocol and is reproducible by index."""
import os
import pickle

import numpy as np
import pytest

from vidjax.data import moving_mnist as mm


def test_shape_dtype_and_determinism():
  a = mm.generate_sequences(4, seed=0)
  assert a.shape == (4, 20, 64, 64) and a.dtype == np.uint8
  assert np.array_equal(a, mm.generate_sequences(4, seed=0))
  assert not np.array_equal(a, mm.generate_sequences(4, seed=1))
  # Two real digits per frame: plenty of ink, and the full 0..255 range.
  assert a.max() == 255 and (a > 0).mean() > 0.05


def test_sequence_is_a_function_of_seed_stream_index():
  a = mm.generate_sequences(5, seed=3)
  assert np.array_equal(mm.generate_sequences(2, seed=3, start_index=3), a[3:])
  source = mm.MovingMNISTSource(100, seed=3)
  assert np.array_equal(source[4][..., 0], a[4])
  # Same seed, other stream: val is not a copy of the first training sequences.
  val = mm.MovingMNISTSource(100, split='val', seed=3)
  assert not np.array_equal(val[0], source[0])


def test_train_and_test_digits_are_disjoint_and_balanced():
  pool, test = mm._split_indices()
  assert len(set(pool)) == 4000 and len(set(test)) == 1000
  assert not set(pool) & set(test)
  _, labels = mm._all_digits()
  assert np.array_equal(np.bincount(labels[pool[:500]]), np.full(10, 50))
  assert np.array_equal(np.bincount(labels[test]), np.full(10, 100))
  assert mm.load_digits('train').shape == (500, 28, 28)
  assert mm.load_digits('train', train_pool_size=4000).shape == (4000, 28, 28)
  assert mm.load_digits('test').shape == (1000, 28, 28)
  with pytest.raises(ValueError, match='train_pool_size'):
    mm.load_digits('train', train_pool_size=4001)


def test_fold_reflects_at_both_walls():
  # limit 36: 40 is 4 past the far wall -> 32; -3 -> 3; 75 = 72 + 3 -> 3.
  np.testing.assert_allclose(mm._fold(np.array([0., 10., 36., 40., -3., 75.]), 36),
                             [0., 10., 36., 32., 3., 3.])


def _positions(video, digit):
  """Top-left corner per frame of a single digit, from its ink bounding box."""
  rows, cols = np.nonzero(digit)
  out = []
  for frame in video:
    fr, fc = np.nonzero(frame)
    out.append((fr.min() - rows.min(), fc.min() - cols.min()))
    assert np.array_equal(frame[out[-1][0]:out[-1][0] + 28,
                                out[-1][1]:out[-1][1] + 28], digit)
  return np.array(out)


@pytest.mark.parametrize('speed_range', [(3.0, 5.0), (3.6, 3.6)])
def test_single_digit_moves_at_speed_and_bounces_inside(speed_range):
  digit = mm.load_digits('train')[:1]
  bounced = 0
  for i in range(5):
    video = mm.render_sequence(mm.rng_for(7, 0, i), digit, num_digits=1,
                               num_frames=60, speed_range=speed_range)
    pos = _positions(video, digit[0])  # [T, 2]
    assert pos.min() >= 0 and pos.max() <= 36  # always fully inside
    step = np.diff(pos, axis=0)
    # Rounding moves each coordinate by at most 1 px around the true path.
    assert np.abs(step).max() <= speed_range[1] + 1
    speed = np.linalg.norm(step, axis=1)
    assert np.median(speed) >= speed_range[0] - 1.5
    bounced += np.any(np.diff(np.sign(step[:, 0])) != 0)
  assert bounced >= 3  # 60 frames at 3+ px cross the 36 px range: walls hit


def test_overlap_is_pixelwise_max():
  digits = np.stack([np.full((28, 28), 100, np.uint8),
                     np.full((28, 28), 200, np.uint8)])
  seen = set()
  for i in range(20):
    video = mm.render_sequence(mm.rng_for(0, 0, i), digits, num_digits=2)
    seen |= set(np.unique(video).tolist())
  assert seen <= {0, 100, 200} and 200 in seen  # no sums (300 wraps to 44)


def test_three_digit_out_of_domain_source_uses_test_digits():
  source = mm.MovingMNISTSource(10, split='test_3digits')
  assert source.num_digits == 3 and len(source.digits) == 1000
  assert source[0].shape == (20, 64, 64, 1) and source[0].dtype == np.uint8


def test_source_is_picklable_indexable_and_grain_ready():
  source = mm.MovingMNISTSource(50, seed=5)
  clone = pickle.loads(pickle.dumps(source))
  assert len(clone) == 50 and np.array_equal(clone[49], source[49])
  with pytest.raises(IndexError):
    source[50]
  grain = pytest.importorskip('grain')
  ds = grain.MapDataset.source(source).shuffle(seed=0).batch(4)
  assert ds[0].shape == (4, 20, 64, 64, 1)


def test_public_npy_round_trip_and_validation(tmp_path):
  seqs = mm.generate_sequences(3, seed=0)  # [N, T, 64, 64]
  path = str(tmp_path / 'x.npy')
  mm.write_public_npy(path, seqs)
  raw = np.load(path)
  assert raw.shape == (20, 3, 64, 64) and raw.dtype == np.uint8  # time-major
  assert np.array_equal(raw[:, 1], seqs[1])
  loaded = mm.load_public_npy(path)
  assert loaded.shape == (3, 20, 64, 64, 1)
  assert np.array_equal(loaded[..., 0], seqs)
  bad = str(tmp_path / 'bad.npy')
  np.save(bad, np.zeros((20, 3, 32, 32), np.float32))
  with pytest.raises(ValueError, match='expected uint8') as e:
    mm.load_public_npy(bad)
  assert '\n' not in str(e.value) and 'bad.npy' in str(e.value)


def test_ensure_writes_once_and_matches_sources(tmp_path):
  root = str(tmp_path / 'mm')
  paths = mm.ensure_moving_mnist(root, num_val=3, num_test=2, seed=1)
  assert set(paths) == {'val', 'test', 'test_3digits'}
  val = mm.load_public_npy(paths['val'])
  assert val.shape == (3, 20, 64, 64, 1)
  assert np.array_equal(val[2], mm.MovingMNISTSource(3, split='val', seed=1)[2])
  test = mm.load_public_npy(paths['test_3digits'])
  assert np.array_equal(
      test[1], mm.MovingMNISTSource(2, split='test_3digits', seed=1)[1])
  mtimes = {k: os.stat(p).st_mtime_ns for k, p in paths.items()}
  assert mm.ensure_moving_mnist(root, num_val=3, num_test=2, seed=1) == paths
  assert {k: os.stat(p).st_mtime_ns for k, p in paths.items()} == mtimes
  assert not [f for f in os.listdir(root) if f.startswith('.tmp-')]
