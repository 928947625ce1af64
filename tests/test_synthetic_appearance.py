"""Tests for Synthetic Appearance, the dataset where the digit is the class.

What they pin down: the class picks the digit and nothing else (the same
generator state draws the same motion for every class), the motion is random
and keeps the digit in the frame, clips are reproducible from the seed, the
splits use disjoint handwriting, and the files on disk decode back to the
rendered frames and load through `data.dataset='synthetic_appearance'`.
"""
import csv

import numpy as np
import pytest

from tests.conftest import tiny_data
from vidjax.data import datasets, registry
from vidjax.data import synthetic_actions as sa
from vidjax.data import synthetic_appearance as ap


@pytest.fixture(scope='module')
def digits():
  return sa.load_digits('train')  # [10, 350, 28, 28]


def _params(class_index, seed, digits):
  return ap.sample_params(class_index, np.random.default_rng(seed), num_instances=digits.shape[1])


def test_the_label_is_the_digit(digits):
  assert ap.CLASS_NAMES == tuple(f'digit_{d}' for d in range(10))
  for c in range(10):
    params = _params(c, c, digits)
    assert params.class_index == c and (params.digit_label == c).all()
    # Pixels: with only digit c's images left, the clip is unchanged; without them, blank.
    only = np.zeros_like(digits)
    only[c] = digits[c]
    frames = sa.render_from_params(params, digits)
    np.testing.assert_array_equal(sa.render_from_params(params, only), frames)
    without = digits.copy()
    without[c] = 0
    blank = sa.render_from_params(params, without)
    assert (blank == blank[:1, :1, :1]).all() and (frames != blank).any()


def test_motion_carries_no_class_information(digits):
  for seed in range(5):
    first = _params(0, seed, digits)
    for c in range(1, 10):
      other = _params(c, seed, digits)
      for field in ('digit_instance', 'centre', 'scale', 'angle', 'alpha', 'background',
                    'colour'):
        np.testing.assert_array_equal(getattr(other, field), getattr(first, field), field)


def test_motion_is_random_and_stays_in_the_frame(digits):
  clips = [_params(3, seed, digits) for seed in range(200)]
  shift = np.stack([p.centre[-1] - p.centre[0] for p in clips])  # [N, 2] (x, y)
  quadrants = {(x > 0, y > 0) for x, y in shift}
  assert quadrants == {(True, True), (True, False), (False, True), (False, False)}
  speed = np.linalg.norm(shift, axis=1)
  assert speed.min() > 0 and speed.std() > 0.1 * speed.mean()
  assert np.std([p.centre[0] for p in clips], axis=0).min() > 0.5
  turn = np.array([p.angle[-1] - p.angle[0] for p in clips])
  assert (turn > 0).any() and (turn < 0).any() and np.abs([p.angle for p in clips]).max() <= 40
  growth = np.array([p.scale[-1] / p.scale[0] for p in clips])
  assert (growth > 1).any() and (growth < 1).any()
  for p in clips:  # The ink's 20x20 box stays inside the 64x64 frame.
    reach = sa.INK_HALF_EXTENT * p.scale[:, None]
    assert ((p.centre - reach) >= -1e-9).all() and ((p.centre + reach) <= 64 + 1e-9).all()


def test_clips_are_deterministic_from_the_seed(digits):
  clip = lambda seed: ap.render_clip(7, sa.clip_rng(seed, 'train', 7, 2), digits, num_frames=8)
  np.testing.assert_array_equal(clip(0), clip(0))
  assert not np.array_equal(clip(0), clip(1))


def test_splits_hold_disjoint_handwriting():
  hashes = {split: {d.tobytes() for d in sa.load_digits(split).reshape(-1, 28 * 28)}
            for split in sa.SPLITS}
  assert not hashes['train'] & hashes['test'] and not hashes['train'] & hashes['val']


# Files on disk --------------------------------------------------------------

TINY = dict(clips_per_class=(2, 1, 1), num_frames=8)


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
  return ap.ensure_dataset(tmp_path_factory.mktemp('appearance') / 'data', num_processes=1, **TINY)


def test_layout_and_the_loaders(tiny_root):
  assert (tiny_root / 'classes.txt').read_text().splitlines() == list(ap.CLASS_NAMES)
  assert ap.FORMAT_VERSION in (tiny_root / 'DONE').read_text()
  with open(tiny_root / 'train.csv', newline='') as f:
    rows = list(csv.reader(f))
  assert rows[0] == ['path', 'label'] and len(rows) == 1 + 10 * 2
  assert rows[1] == ['videos/train/digit_0_0000.mp4', 'digit_0']
  found = datasets.load_dataset('csv', str(tiny_root), 'test')  # What the registry reads it as.
  assert found.class_names == list(ap.CLASS_NAMES) and len(found) == 10 and not found.missing
  assert [r.label for r in found.records] == list(range(10))


def test_the_cli_generates_it_on_first_use(tmp_path):
  data = tiny_data(dataset='synthetic_appearance', root=str(tmp_path / 'appearance'),
                   synthetic_clips_per_class=(1, 1, 1))
  split = registry.load_split(data, 'train')
  assert len(split.records) == 10 and split.class_names == list(ap.CLASS_NAMES)


def test_videos_decode_to_the_rendered_frames_of_their_split(tiny_root):
  import decord
  test, train = sa.load_digits('test'), sa.load_digits('train')
  for c, name in enumerate(ap.CLASS_NAMES):
    reader = decord.VideoReader(str(tiny_root / f'videos/test/{name}_0000.mp4'))
    decoded = reader.get_batch(range(len(reader))).asnumpy().astype(np.float32)
    assert decoded.shape == (8, 64, 64, 3)
    rendered = ap.render_clip(c, sa.clip_rng(0, 'test', c, 0), test, num_frames=8)
    assert np.abs(decoded - rendered).mean() < 5, name
    # The same draw with training handwriting differs where the digits differ, and the
    # video matches the test digit there: test clips show unseen handwriting.
    wrong = ap.render_clip(c, sa.clip_rng(0, 'test', c, 0), train, num_frames=8)
    differ = np.abs(rendered.astype(np.int16) - wrong).max(-1) > 50
    assert differ.sum() > 100
    assert (np.abs(decoded - rendered)[differ].mean()
            < 0.6 * np.abs(decoded - wrong)[differ].mean()), name
