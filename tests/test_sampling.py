"""Tests for vidjax.data.sampling: indices against numbers worked by hand."""
import numpy as np
import pytest

from vidjax.data import sampling


# --------------------------------------------------------------------- dense

def test_dense_eval_takes_the_centre_start():
  # 10 frames, 4 frames every 2nd: spans 7, starts 0..3 fit, centre 2.
  np.testing.assert_array_equal(sampling.dense_indices(10, 4, 2), [2, 4, 6, 8])
  # 32 frames, 8 every 4th: spans 29, starts 0..3, centre 2.
  np.testing.assert_array_equal(sampling.dense_indices(32, 8, 4),
                                [2, 6, 10, 14, 18, 22, 26, 30])


def test_dense_given_start():
  np.testing.assert_array_equal(sampling.dense_indices(10, 4, 2, start=1),
                                [1, 3, 5, 7])


def test_dense_training_start_is_uniform_over_the_fitting_starts():
  rng = np.random.default_rng(0)
  starts = []
  for _ in range(400):
    indices = sampling.dense_indices(10, 4, 2, rng=rng)
    np.testing.assert_array_equal(np.diff(indices), [2, 2, 2])
    starts.append(indices[0])
  counts = np.bincount(starts, minlength=4)
  assert len(counts) == 4 and counts.min() > 70  # 0..3, about 100 each.


def test_dense_is_reproducible_from_the_generator_seed():
  a = sampling.dense_indices(300, 16, 4, rng=np.random.default_rng(7))
  b = sampling.dense_indices(300, 16, 4, rng=np.random.default_rng(7))
  np.testing.assert_array_equal(a, b)


def test_short_video_loops_or_pads():
  # 5 frames, 4 every 2nd would be frames 0, 2, 4, 6.
  np.testing.assert_array_equal(sampling.dense_indices(5, 4, 2), [0, 2, 4, 1])
  np.testing.assert_array_equal(
      sampling.dense_indices(5, 4, 2, short='pad'), [0, 2, 4, 4])
  # A training draw of a short video has only one start, 0.
  np.testing.assert_array_equal(
      sampling.dense_indices(3, 5, 1, rng=np.random.default_rng(0)),
      [0, 1, 2, 0, 1])
  np.testing.assert_array_equal(
      sampling.dense_indices(1, 3, 2, short='pad'), [0, 0, 0])


def test_dense_rejects_bad_arguments():
  with pytest.raises(ValueError, match='not both'):
    sampling.dense_indices(10, 4, 2, rng=np.random.default_rng(0), start=1)
  with pytest.raises(ValueError, match='short'):
    sampling.dense_indices(10, 4, 2, short='wrap')
  with pytest.raises(ValueError, match='num_frames_in_video'):
    sampling.dense_indices(0, 4, 2)


# ------------------------------------------------------------------ segments

def test_segment_centres():
  # 100 frames in 4 segments of 25: centres 12.5, 37.5, 62.5, 87.5.
  np.testing.assert_array_equal(sampling.segment_indices(100, 4),
                                [12, 37, 62, 87])
  # 10 frames in 3 segments of 3.33: centres 1.67, 5, 8.33.
  np.testing.assert_array_equal(sampling.segment_indices(10, 3), [1, 5, 8])
  # Fewer frames than segments: 3 frames, 6 segments of 0.5.
  np.testing.assert_array_equal(sampling.segment_indices(3, 6),
                                [0, 0, 1, 1, 2, 2])


def test_random_segment_frames_stay_in_and_cover_their_segment():
  rng = np.random.default_rng(0)
  draws = np.stack([sampling.segment_indices(100, 4, rng=rng)
                    for _ in range(500)])  # [500, 4]
  low = np.array([0, 25, 50, 75])
  assert (draws >= low).all() and (draws < low + 25).all()
  np.testing.assert_array_equal(draws.min(axis=0), low)
  np.testing.assert_array_equal(draws.max(axis=0), low + 24)


# ----------------------------------------------------------------- multiview

def _mmaction_test_offsets(num_frames, span, num_clips):
  """MMAction2 SampleFrames._get_test_clips, written out independently."""
  avg_interval = (num_frames - span + 1) / float(num_clips)
  if num_frames > span - 1:
    base = np.arange(num_clips) * avg_interval
    return (base + avg_interval / 2.0).astype(np.int64)
  return np.zeros(num_clips, np.int64)


def test_multiview_starts_by_hand():
  # 100 frames, 16-frame clips: starts 0..84 in 3 parts of 85/3.
  np.testing.assert_array_equal(sampling.multiview_starts(100, 16, 1, 3),
                                [14, 42, 70])
  # One view is the centre start, as in dense_indices.
  np.testing.assert_array_equal(sampling.multiview_starts(10, 4, 2, 1), [2])
  # Shorter than a clip: every view starts at 0.
  np.testing.assert_array_equal(sampling.multiview_starts(10, 8, 2, 3),
                                [0, 0, 0])


@pytest.mark.parametrize('num_frames', [1, 15, 16, 17, 64, 250, 301])
@pytest.mark.parametrize('clip_length,stride', [(8, 8), (16, 1), (32, 2)])
@pytest.mark.parametrize('num_clips', [1, 3, 10])
def test_multiview_starts_match_mmaction2(num_frames, clip_length, stride,
                                          num_clips):
  span = sampling.clip_span(clip_length, stride)
  np.testing.assert_array_equal(
      sampling.multiview_starts(num_frames, clip_length, stride, num_clips),
      _mmaction_test_offsets(num_frames, span, num_clips))


def test_multiview_indices_by_hand():
  # 20 frames, 4 every 2nd spans 7: starts 0..13 in 2 parts of 7 -> 3, 10.
  np.testing.assert_array_equal(sampling.multiview_indices(20, 4, 2, 2),
                                [[3, 5, 7, 9], [10, 12, 14, 16]])
  np.testing.assert_array_equal(
      sampling.multiview_indices(5, 4, 2, 2, short='pad'),
      [[0, 2, 4, 4], [0, 2, 4, 4]])
