"""Whole decoded videos in memory: the same clips as decoding, a budget, damaged files."""
import pickle

import numpy as np
import pytest

from tests.conftest import tiny_data
from vidjax.data import clips, decode, pipeline, testing
from vidjax.data.clip_spec import ClipSpec
from vidjax.data.frame_cache import FrameCache
from vidjax.data.records import Record
from vidjax.tasks.classification import LabelTargets


@pytest.fixture(scope='module')
def video(tmp_path_factory):
  root = tmp_path_factory.mktemp('frame_cache')
  return testing.write_video(str(root / 'levels.mp4'), testing.fake_frames(24, 48, 64))


def _clip(train_clip, path, position):
  rng = np.random.default_rng(position)
  return train_clip((position, Record(path, {'label': 0})), rng)


@pytest.mark.parametrize('crop', ['none', 'random_resized'])
def test_cached_clips_are_the_decoded_clips_byte_for_byte(video, crop):
  spec = ClipSpec.from_config(tiny_data(train_crop=crop, train_short_side=40, height=32, width=32,
                                        color_jitter=(0.0, 0.0, 0.0)))
  plain, cache = clips.TrainClip(spec, LabelTargets()), FrameCache(64 * 2**20)
  cached = clips.TrainClip(spec, LabelTargets(), cache)
  for position in range(4):  # The first read fills the cache; the rest index into it.
    a, b = _clip(plain, video, position), _clip(cached, video, position)
    np.testing.assert_array_equal(a['video'], b['video'])
    assert a['video'].shape[0] == spec.num_frames
  assert len(cache) == 1
  size = (32, 32) if crop == 'none' else decode.short_side_size(48, 64, 40)
  assert cache.used_bytes == 24 * size[0] * size[1] * 3


def test_a_video_over_the_budget_is_read_as_before_and_nothing_grows(video):
  spec = ClipSpec.from_config(tiny_data())
  cache = FrameCache(10 * 32 * 32 * 3)  # 10 frames: the 24-frame video does not fit.
  a = _clip(clips.TrainClip(spec, LabelTargets()), video, 0)
  b = _clip(clips.TrainClip(spec, LabelTargets(), cache), video, 0)
  np.testing.assert_array_equal(a['video'], b['video'])
  assert len(cache) == 0 and cache.used_bytes == 0


def test_a_video_that_cannot_be_read_whole_is_read_the_old_way(video, tmp_path, monkeypatch):
  spec = ClipSpec.from_config(tiny_data())
  cache = FrameCache(2**30)
  real = decode.read_clip

  def fails_whole(path, sample, **kwargs):  # Damage past the frames a clip samples.
    def guard(n):
      wanted = sample(n)
      if len(np.unique(wanted)) == n:
        raise decode.DecodeError(path, 'frame 23 cannot be decoded')
      return wanted
    return real(path, guard, **kwargs)

  monkeypatch.setattr(decode, 'read_clip', fails_whole)
  element = _clip(clips.TrainClip(spec, LabelTargets(), cache), video, 0)
  assert 'error' not in element and element['video'].shape[0] == spec.num_frames
  assert len(cache) == 0
  assert not cache.wants((video, 32, 32, None), 1)  # Remembered: never read whole again.


def test_a_copy_for_a_worker_starts_empty():
  cache = FrameCache(1000)
  cache.put('a', np.zeros((2, 2, 2, 3), np.uint8))
  copy = pickle.loads(pickle.dumps(cache))
  assert len(cache) == 1 and len(copy) == 0 and copy.budget_bytes == 1000
  with pytest.raises(ValueError):  # What the cache holds is never written.
    cache.get('a')[0, 0, 0, 0] = 1


def test_train_batches_are_the_same_with_the_cache_on_or_off(tiny_actions_root):
  lines = (tiny_actions_root / 'train.csv').read_text().splitlines()[1:]
  records = [Record(str(tiny_actions_root / line.split(',')[0]), {'label': 0}) for line in lines]

  def batches(cache_mb, workers):
    it = iter(pipeline.train_dataset(
        records, tiny_data(decoded_cache_mb=cache_mb, num_workers=workers), batch_size=4, seed=1,
        failures=pipeline.FailureCounter('train', 0.5), targets=LabelTargets()))
    return [next(it)['video'] for _ in range(2 * len(records) // 4)]  # Two epochs.

  for a, b in zip(batches(0, 0), batches(64, 1)):
    np.testing.assert_array_equal(a, b)
