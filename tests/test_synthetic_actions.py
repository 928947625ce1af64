"""Tests for the embedded Synthetic Actions dataset.

What they pin down: twin classes are exact time reversals; the class names say
what the frames do; a classifier blind to frame order stays near chance within
each pair while the same classifier on ordered features does not; and the
files on disk decode back to the rendered frames, split by disjoint digits,
reproducibly, generated once.
"""
import csv
import json
import os

import numpy as np
import pytest

from vidjax.data import synthetic_actions as sa

NUM_PAIRS = len(sa.CLASS_NAMES) // 2


@pytest.fixture(scope='module')
def digits():
  return sa.load_digits('train')  # [10, 350, 28, 28]


def test_class_names_are_six_reversal_pairs():
  assert len(sa.CLASS_NAMES) == 12 and len(set(sa.CLASS_NAMES)) == 12
  assert sa.CLASS_NAMES[:2] == ('move_right', 'move_left')
  assert sa.CLASS_NAMES[10:] == ('digit_a_then_b', 'digit_b_then_a')


@pytest.mark.parametrize('pair', range(NUM_PAIRS))
def test_twin_is_the_exact_time_reversal(pair, digits):
  for seed in range(3):
    forward = sa.render_clip(2 * pair, np.random.default_rng(seed), digits)
    backward = sa.render_clip(2 * pair + 1, np.random.default_rng(seed), digits)
    assert forward.shape == (16, 64, 64, 3) and forward.dtype == np.uint8
    # Not vacuous: the clip ends unlike it starts, so reversing it changes it.
    assert np.abs(forward[-1].astype(np.int16) - forward[0]).max() > 40
    np.testing.assert_array_equal(backward, forward[::-1])

    params = sa.sample_params(2 * pair, np.random.default_rng(seed),
                              num_instances=digits.shape[1])
    twin = sa.reverse(params)
    assert twin.class_index == 2 * pair + 1
    np.testing.assert_array_equal(sa.render_from_params(twin, digits),
                                  sa.render_from_params(params, digits)[::-1])


# Per-frame descriptors computed from pixels only ----------------------------

def _frame_stats(clips):
  """[N, T, 6] per-frame (mass, cx, cy, size, cos2, sin2) of the ink.

  Ink is the luma distance to the background (the median border pixel), scaled
  by the clip's largest; the dataset guarantees luma contrast. cos2/sin2 give
  the ink's orientation, doubled because an axis has no head. y points down, so
  a growing angle turns clockwise.
  """
  luma = clips @ np.array([0.299, 0.587, 0.114], np.float32)  # [N, T, H, W]
  size = luma.shape[2]
  border = np.concatenate([luma[:, :, 0], luma[:, :, -1], luma[:, :, :, 0],
                           luma[:, :, :, -1]], axis=2).reshape(len(luma), -1)
  background = np.median(border, axis=1)  # [N]
  ink = np.abs(luma - background[:, None, None, None])  # [N, T, H, W]
  ink /= ink.max(axis=(1, 2, 3), keepdims=True) + 1e-6
  # Moments from the marginals and one product, not from [N, T, H, W] temporaries.
  coords = np.arange(size, dtype=np.float32)
  along_x, along_y = ink.sum(axis=2), ink.sum(axis=3)  # [N, T, W], [N, T, H]
  mass = along_x.sum(axis=-1) + 1e-6  # [N, T]
  cx, cy = along_x @ coords / mass, along_y @ coords / mass
  sxx = along_x @ coords**2 / mass - cx**2
  syy = along_y @ coords**2 / mass - cy**2
  sxy = (ink @ coords) @ coords / mass - cx * cy
  spread = np.maximum(sxx + syy, 1e-6)
  return np.stack([mass / size**2, cx / size, cy / size, np.sqrt(spread) / size,
                   (sxx - syy) / spread, 2 * sxy / spread], axis=-1)


def _turning(stats):
  """[N, T-1] sine of twice the clockwise turn of the ink's axis per frame."""
  cos2, sin2 = stats[..., 4], stats[..., 5]
  return cos2[:, :-1] * sin2[:, 1:] - sin2[:, :-1] * cos2[:, 1:]


def _order_blind(stats):
  """[N, T*6]: each statistic's values sorted, so any shuffle of frames gives the same."""
  return np.sort(stats, axis=1).reshape(len(stats), -1)


def _order_aware(stats):
  """[N, T*6 + T-1]: the statistics in time order, plus the turn per frame."""
  return np.concatenate([stats.reshape(len(stats), -1), _turning(stats)], axis=1)


def _logistic_accuracy(x_train, y_train, x_test, y_test, steps=500):
  """Held-out accuracy of L2-regularised logistic regression fitted by gradient descent."""
  mean, std = x_train.mean(0), x_train.std(0) + 1e-6
  x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
  w, b = np.zeros(x_train.shape[1]), 0.0
  for _ in range(steps):
    p = 1 / (1 + np.exp(-(x_train @ w + b)))
    w -= 0.5 * (x_train.T @ (p - y_train) / len(y_train) + 1e-3 * w)
    b -= 0.5 * np.mean(p - y_train)
  return np.mean(((x_test @ w + b) > 0) == y_test)


@pytest.fixture(scope='module')
def stats_by_class(digits):
  """{class: (train [100, 8, 6], test [100, 8, 6])}, test clips from unseen digits."""
  test_digits = sa.load_digits('test')
  out = {}
  for c in range(len(sa.CLASS_NAMES)):
    rng = np.random.default_rng([7, c])
    train = np.stack([sa.render_clip(c, rng, digits, num_frames=8) for _ in range(100)])
    test = np.stack([sa.render_clip(c, rng, test_digits, num_frames=8) for _ in range(100)])
    out[c] = (_frame_stats(train), _frame_stats(test))
  return out


def _pair_accuracy(stats_by_class, a, b, features):
  (train_a, test_a), (train_b, test_b) = stats_by_class[a], stats_by_class[b]
  labels = np.repeat([0.0, 1.0], 100)
  return _logistic_accuracy(features(np.concatenate([train_a, train_b])), labels,
                            features(np.concatenate([test_a, test_b])), labels)


def test_order_blind_classifier_is_at_chance_within_each_pair(stats_by_class):
  for pair in range(NUM_PAIRS):
    accuracy = _pair_accuracy(stats_by_class, 2 * pair, 2 * pair + 1, _order_blind)
    assert accuracy <= 0.62, (sa.CLASS_NAMES[2 * pair], accuracy)


def test_order_blind_features_do_separate_other_classes(stats_by_class):
  """The control: the ceiling above comes from the data, not from weak features."""
  for a, b in [(0, 2), (0, 4), (4, 8), (6, 10), (1, 7), (3, 9)]:
    accuracy = _pair_accuracy(stats_by_class, a, b, _order_blind)
    assert accuracy >= 0.85, (sa.CLASS_NAMES[a], sa.CLASS_NAMES[b], accuracy)


def test_order_aware_classifier_separates_the_twins(stats_by_class):
  # The digit pair needs a digit recogniser, more than a linear model on these
  # statistics; its order is checked on the parameters below.
  for pair in range(NUM_PAIRS - 1):
    accuracy = _pair_accuracy(stats_by_class, 2 * pair, 2 * pair + 1, _order_aware)
    assert accuracy >= 0.9, (sa.CLASS_NAMES[2 * pair], accuracy)


def test_names_say_what_the_frames_do(digits):
  rng = np.random.default_rng(3)
  for c, name in enumerate(sa.CLASS_NAMES[:10]):
    clips = np.stack([sa.render_clip(c, rng, digits) for _ in range(20)])
    stats = _frame_stats(clips)  # [20, 16, 6]
    change = stats[:, -1] - stats[:, 0]  # [20, 6]
    measure = {
        'move_right': change[:, 1], 'move_left': -change[:, 1],
        'move_down': change[:, 2], 'move_up': -change[:, 2],
        'grow': change[:, 3], 'shrink': -change[:, 3],
        'rotate_cw': _turning(stats).sum(1), 'rotate_ccw': -_turning(stats).sum(1),
        'fade_in': change[:, 0], 'fade_out': -change[:, 0],
    }[name]
    assert np.mean(measure > 0) >= 0.9, name
  for c, rising in [(10, True), (11, False)]:
    for _ in range(20):
      params = sa.sample_params(c, rng, num_instances=digits.shape[1])
      first, last = params.digit_label[0], params.digit_label[-1]
      assert (first, last) == (sa.DIGIT_PAIR if rising else sa.DIGIT_PAIR[::-1])
      assert np.sum(params.digit_label == first) == 8  # The change is half-way.


def test_splits_hold_disjoint_digit_instances():
  hashes = {split: {d.tobytes() for d in sa.load_digits(split).reshape(-1, 28 * 28)}
            for split in sa.SPLITS}
  assert [len(hashes[s]) for s in sa.SPLITS] == [3500, 500, 1000]
  assert not hashes['train'] & hashes['test']
  assert not hashes['val'] & hashes['test']
  assert not hashes['train'] & hashes['val']


# Files on disk --------------------------------------------------------------

TINY = dict(clips_per_class=(2, 1, 1), num_frames=8)


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
  return sa.generate(tmp_path_factory.mktemp('tiny'), num_processes=2, **TINY)


def _read_csv(path):
  with open(path, newline='') as f:
    return list(csv.reader(f))


def test_generate_writes_csvs_and_classes(tiny_root):
  assert (tiny_root / 'classes.txt').read_text().splitlines() == list(sa.CLASS_NAMES)
  for split, count in zip(sa.SPLITS, TINY['clips_per_class']):
    rows = _read_csv(tiny_root / f'{split}.csv')
    assert rows[0] == ['path', 'label']
    assert len(rows) == 1 + 12 * count
    assert rows[1] == [f'videos/{split}/move_right_0000.mp4', 'move_right']
    for path, label in rows[1:]:
      assert label in sa.CLASS_NAMES and path.startswith(f'videos/{split}/{label}_')
      assert (tiny_root / path).is_file()


def test_videos_decode_to_the_rendered_frames(tiny_root):
  import decord
  for split in sa.SPLITS:
    own, other = sa.load_digits(split), sa.load_digits('val' if split == 'test' else 'test')
    for c, name in enumerate(sa.CLASS_NAMES):
      reader = decord.VideoReader(str(tiny_root / f'videos/{split}/{name}_0000.mp4'))
      assert len(reader) == 8
      decoded = reader.get_batch(range(8)).asnumpy().astype(np.float32)
      assert decoded.shape == (8, 64, 64, 3)
      rendered = sa.render_clip(c, sa.clip_rng(0, split, c, 0), own, num_frames=8)
      assert np.abs(decoded - rendered).mean() < 5, (split, name)
      # The same draw with another split's digits shows which digits were used:
      # where the two renders differ, the video matches its own split's.
      wrong = sa.render_clip(c, sa.clip_rng(0, split, c, 0), other, num_frames=8)
      differ = np.abs(rendered.astype(np.int16) - wrong).max(-1) > 50  # [T, H, W]
      assert differ.sum() > 100
      own_error = np.abs(decoded - rendered)[differ].mean()
      other_error = np.abs(decoded - wrong)[differ].mean()
      assert own_error < 0.6 * other_error, (split, name, own_error, other_error)


def test_generate_is_reproducible_and_independent_of_processes(tiny_root, tmp_path):
  again = sa.generate(tmp_path, num_processes=1, **TINY)
  for name in ['classes.txt'] + [f'{s}.csv' for s in sa.SPLITS]:
    assert (again / name).read_bytes() == (tiny_root / name).read_bytes()
  for path in sorted((tiny_root / 'videos').rglob('*.mp4')):  # Byte for byte.
    assert (again / path.relative_to(tiny_root)).read_bytes() == path.read_bytes(), path
  digits = sa.load_digits('train')
  np.testing.assert_array_equal(sa.render_clip(6, sa.clip_rng(0, 'train', 6, 1), digits),
                                sa.render_clip(6, sa.clip_rng(0, 'train', 6, 1), digits))
  assert not np.array_equal(sa.render_clip(6, sa.clip_rng(0, 'train', 6, 1), digits),
                            sa.render_clip(6, sa.clip_rng(1, 'train', 6, 1), digits))


# sha256 (first 16 hex digits) of three clips as rendered and as decoded from their mp4,
# with the pinned versions. A change here means every embedded dataset changes: bump
# FORMAT_VERSION and say in the README which results were made with the old frames.
CHECKSUMS = {0: ('af96a09a6ac490a4', '262110b165bac14f'),
             5: ('3fc6568cbe8bff37', 'bb9835fd177aef3d'),
             11: ('37493a11d77aef08', '71457a7f02d9dcff')}


def test_rendered_and_decoded_clips_match_their_checksums(digits, tmp_path):
  import hashlib
  from vidjax.data import decode
  digest = lambda a: hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]
  for class_index, (rendered, decoded) in CHECKSUMS.items():
    frames = sa.render_clip(class_index, sa.clip_rng(0, 'train', class_index, 0), digits)
    paths = [tmp_path / f'{class_index}_{k}.mp4' for k in range(3)]
    for path in paths:
      sa.write_mp4(path, frames)
    # The same frames encode to the same file every time (x264's MB-tree did not).
    assert len({path.read_bytes() for path in paths}) == 1
    assert (digest(frames), digest(decode.read_frames(str(paths[0])))) == (rendered, decoded)


def test_ensure_dataset_generates_once(tmp_path):
  root = tmp_path / 'data'
  kwargs = dict(clips_per_class=(1, 1, 1), num_frames=4, num_processes=1)
  assert sa.ensure_dataset(root, **kwargs) == root
  video = root / 'videos/train/move_right_0000.mp4'
  stamps = (os.stat(root / 'DONE').st_mtime_ns, os.stat(video).st_mtime_ns)
  sa.ensure_dataset(root, **kwargs)
  assert (os.stat(root / 'DONE').st_mtime_ns, os.stat(video).st_mtime_ns) == stamps

  sa.ensure_dataset(root, seed=1, **kwargs)
  assert json.loads((root / 'DONE').read_text())['seed'] == 1
  assert os.stat(video).st_mtime_ns != stamps[1]
  assert sorted(p.name for p in tmp_path.iterdir()) == ['data']  # No leftovers.


def test_ensure_dataset_replaces_a_half_written_dataset(tmp_path):
  root = tmp_path / 'data'
  (root / 'videos/train').mkdir(parents=True)
  (root / 'train.csv').write_text('path,label\n')  # As if killed mid-way: no DONE.
  sa.ensure_dataset(root, clips_per_class=(1, 0, 0), num_frames=4, num_processes=1)
  assert len(_read_csv(root / 'train.csv')) == 13
  assert json.loads((root / 'DONE').read_text())['clips_per_class'] == [1, 0, 0]
