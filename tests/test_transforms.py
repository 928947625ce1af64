"""Tests for vidjax.data.transforms: values by hand, one draw per clip."""
import functools
import pickle

import numpy as np
import pytest

from vidjax.data import transforms


def _ramp_clip(t=2, h=6, w=8, c=3):
  """A clip whose pixel values say where they come from."""
  return np.arange(t * h * w * c, dtype=np.float32).reshape(t, h, w, c)


def _constant_frames(values, h=8, w=8):
  """A clip [T, h, w, 3] whose frame t is all `values[t]`, uint8."""
  values = np.asarray(values, np.uint8)
  return np.broadcast_to(values[:, None, None, None],
                         (len(values), h, w, 3)).copy()


# -------------------------------------------------------------------- resize

def test_resize_by_hand():
  row = np.array([0, 10, 20, 30], np.float32)
  clip = np.broadcast_to(row[None, None, :, None], (1, 2, 4, 1))
  # Halving: output pixel centres fall at input positions 0.5 and 2.5.
  np.testing.assert_allclose(transforms.resize(clip, 2, 2)[0, 0, :, 0],
                             [5, 25])
  # Doubling [0, 100]: centres at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
  clip = np.array([0, 100], np.float32).reshape(1, 1, 2, 1)
  np.testing.assert_allclose(transforms.resize(clip, 1, 4)[0, 0, :, 0],
                             [0, 25, 75, 100])


def test_resize_keeps_uint8_and_constants():
  clip = _constant_frames([7, 200], h=9, w=13)
  out = transforms.resize(clip, 5, 21)
  assert out.shape == (2, 5, 21, 3) and out.dtype == np.uint8
  assert (out[0] == 7).all() and (out[1] == 200).all()
  assert transforms.resize(clip, 9, 13) is clip


def test_short_side_resize():
  landscape = np.zeros((1, 30, 40, 3), np.uint8)
  portrait = np.zeros((1, 40, 30, 3), np.uint8)
  assert transforms.short_side_resize(landscape, 15).shape == (1, 15, 20, 3)
  assert transforms.short_side_resize(portrait, 15).shape == (1, 20, 15, 3)


def test_center_crop():
  clip = _ramp_clip()
  np.testing.assert_array_equal(transforms.center_crop(clip, (2, 4)),
                                clip[:, 2:4, 2:6])
  with pytest.raises(ValueError):
    transforms.center_crop(clip, 7)


# -------------------------------------------------------------- random crops

def test_random_resized_crop_box_respects_scale_and_ratio():
  rng = np.random.default_rng(0)
  for _ in range(200):
    top, left, h, w = transforms.random_resized_crop_box(
        120, 160, rng, scale=(0.25, 0.5), ratio=(0.75, 4 / 3))
    assert 0 <= top and top + h <= 120 and 0 <= left and left + w <= 160
    # Rounding the sides to pixels moves area and ratio by a few percent.
    assert 0.23 <= h * w / (120 * 160) <= 0.53
    assert 0.72 <= w / h <= 1.37


def test_random_resized_crop_box_falls_back_to_a_central_crop():
  # A crop bigger than the frame never fits: the widest allowed central crop.
  box = transforms.random_resized_crop_box(10, 100, np.random.default_rng(0),
                                           scale=(2.0, 3.0))
  assert box == (0, 43, 10, 13)  # ratio 4/3: 13 wide, centred in 100.


def test_random_resized_crop_is_the_same_for_every_frame():
  frame = np.random.default_rng(1).integers(0, 255, (48, 64, 3), np.uint8)
  clip = np.stack([frame] * 4)
  out = transforms.random_resized_crop(clip, np.random.default_rng(2), 24)
  assert out.shape == (4, 24, 24, 3) and out.dtype == np.uint8
  for t in range(1, 4):
    np.testing.assert_array_equal(out[t], out[0])


def test_random_resized_crop_equals_crop_then_resize():
  clip = _ramp_clip(2, 40, 50, 3)
  box = transforms.random_resized_crop_box(40, 50, np.random.default_rng(3))
  expected = transforms.resize(transforms.crop(clip, *box), 16, 20)
  out = transforms.random_resized_crop(clip, np.random.default_rng(3),
                                       (16, 20))
  np.testing.assert_array_equal(out, expected)


def test_spatial_crops_landscape_and_portrait():
  landscape = _ramp_clip(2, 32, 48, 3)  # Long side 48: offsets 0, 8, 16.
  crops = transforms.spatial_crops(landscape, 32)
  assert crops.shape == (3, 2, 32, 32, 3)
  for k, left in enumerate([0, 8, 16]):
    np.testing.assert_array_equal(crops[k], landscape[:, :, left:left + 32])
  portrait = _ramp_clip(2, 40, 20, 3)  # 20x20 crops: rows 0, 10, 20.
  crops = transforms.spatial_crops(portrait, 20)
  for k, top in enumerate([0, 10, 20]):
    np.testing.assert_array_equal(crops[k], portrait[:, top:top + 20])
  centre = transforms.spatial_crops(_ramp_clip(1, 30, 50, 3), 20, num_crops=1)
  np.testing.assert_array_equal(centre[0], _ramp_clip(1, 30, 50, 3)[:, 5:25,
                                                                    15:35])


# ---------------------------------------------------------------------- flip

def test_horizontal_flip_mirrors_columns():
  clip = _ramp_clip()
  flipped = transforms.horizontal_flip(clip)
  np.testing.assert_array_equal(flipped[:, :, 0], clip[:, :, -1])
  np.testing.assert_array_equal(transforms.horizontal_flip(flipped), clip)


def test_random_flip_maps_direction_labels():
  clip = _ramp_clip()
  label_map = {0: 1, 1: 0}
  out, label = transforms.random_horizontal_flip(
      clip, 0, np.random.default_rng(0), label_map=label_map, prob=1.0)
  assert label == 1
  np.testing.assert_array_equal(out, clip[:, :, ::-1])
  out, label = transforms.random_horizontal_flip(
      clip, 2, np.random.default_rng(0), label_map=label_map, prob=1.0)
  assert label == 2  # Not a direction class.
  out, label = transforms.random_horizontal_flip(
      clip, 0, np.random.default_rng(0), label_map=label_map, prob=0.0)
  assert label == 0 and out is clip


# -------------------------------------------------------------------- colour

def test_color_jitter_with_zero_strength_is_identity():
  clip = np.random.default_rng(0).integers(0, 255, (3, 8, 8, 3), np.uint8)
  out = transforms.color_jitter(clip, np.random.default_rng(0), brightness=0,
                                contrast=0, saturation=0)
  np.testing.assert_array_equal(out, clip)


def test_brightness_scales_every_frame_by_one_factor():
  clip = _constant_frames([40, 80, 120])
  out = transforms.color_jitter(clip, np.random.default_rng(5),
                                brightness=0.5, contrast=0, saturation=0)
  factors = out[:, 0, 0, 0] / clip[:, 0, 0, 0].astype(float)  # [3]
  assert 0.5 <= factors[0] <= 1.5
  np.testing.assert_allclose(factors, factors[0], atol=0.02)


def test_contrast_and_saturation_leave_flat_grey_frames_alone():
  clip = _constant_frames([40, 200])
  out = transforms.color_jitter(clip, np.random.default_rng(0), brightness=0,
                                contrast=0.8, saturation=0.8)
  np.testing.assert_array_equal(out, clip)


class _LowestDraws:
  """A generator stand-in: ops in order, every factor at its lower bound."""

  def permutation(self, n):
    return np.arange(n)

  def uniform(self, low, high):
    return low


def test_saturation_factor_zero_gives_grey_by_hand():
  rgb = np.array([200, 50, 10], np.float32) / 255
  clip = np.broadcast_to(rgb, (1, 2, 2, 3)).astype(np.float32)
  out = transforms.color_jitter(clip, _LowestDraws(), brightness=0,
                                contrast=0, saturation=1.0)  # Factor 0.
  grey = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
  np.testing.assert_allclose(out, np.full_like(clip, grey), rtol=1e-6)


def test_contrast_factor_blends_towards_the_frame_mean_by_hand():
  # Grey levels 0 and 200 in halves of one frame: mean 100. Factor 0.5.
  clip = np.zeros((1, 2, 2, 3), np.uint8)
  clip[:, 1] = 200
  out = transforms.color_jitter(clip, _LowestDraws(), brightness=0,
                                contrast=0.5, saturation=0)
  np.testing.assert_array_equal(out[0, :, 0, 0], [50, 150])


def test_normalize():
  clip = np.full((1, 1, 1, 3), 255, np.uint8)
  out = transforms.normalize(clip, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1))
  assert out.dtype == np.float32
  np.testing.assert_allclose(out[0, 0, 0], [2, 1, 0.5], rtol=1e-6)
  np.testing.assert_allclose(
      transforms.normalize(np.zeros((1, 1, 1, 3), np.float32))[0, 0, 0],
      -np.array(transforms.KINETICS_MEAN) / transforms.KINETICS_STD, rtol=1e-6)


# ------------------------------------------------------------------- mixing

def test_one_hot_smoothed_by_hand():
  out = transforms.one_hot_smoothed([1, 3], 4, 0.1)
  np.testing.assert_allclose(out, [[0.025, 0.925, 0.025, 0.025],
                                   [0.025, 0.025, 0.025, 0.925]])
  np.testing.assert_array_equal(transforms.one_hot_smoothed([2], 3),
                                [[0, 0, 1]])


def _batch(num=4):
  """Clip b is all 10 * (b + 1), and has class b: [B, 3, 8, 8, 3], [B, B]."""
  videos = np.stack([_constant_frames([10 * (b + 1)] * 3) for b in range(num)])
  return videos, transforms.one_hot_smoothed(np.arange(num), num)


def test_mixup_mixes_pixels_and_labels_with_one_weight():
  videos, labels = _batch()
  mixed, targets = transforms.mixup(videos, labels, np.random.default_rng(0))
  assert mixed.dtype == np.float32
  np.testing.assert_allclose(targets.sum(axis=1), 1, rtol=1e-6)
  # Each clip's value is the label-weighted average of the clip values.
  values = videos[:, 0, 0, 0, 0].astype(np.float32)  # [B]
  np.testing.assert_allclose(mixed[:, 0, 0, 0, 0], targets @ values, rtol=1e-5)
  assert (mixed == mixed[:, :1, :1, :1, :1]).all()  # Uniform within a clip.


def test_cutmix_box_is_one_rectangle_in_every_frame():
  videos, labels = _batch()
  before = videos.copy()
  mixed, targets = transforms.cutmix(videos, labels, np.random.default_rng(3))
  np.testing.assert_array_equal(videos, before)  # Input untouched.
  assert mixed.dtype == np.uint8
  own = videos[:, 0, 0, 0, 0]  # [B]
  pasted = mixed[..., 0] != own[:, None, None, None]  # [B, T, H, W]
  assert pasted.any()
  # The same box for every frame and every clip that got another clip's box.
  box = pasted[np.argmax(pasted.any(axis=(1, 2, 3)))][0]  # [H, W]
  rows, cols = np.nonzero(box)
  assert box[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
  for b in range(len(videos)):
    if pasted[b].any():
      assert (pasted[b] == box).all()
  # A clip keeps its own label in proportion to the area it kept.
  kept = 1 - box.mean()
  for b in range(len(videos)):
    if pasted[b].any():
      assert targets[b, b] == pytest.approx(kept, rel=1e-6)


def test_cutmix_box_by_hand():
  class FixedRng:  # Centre (4, 6) of a 10x20 frame.
    def integers(self, low, high):
      return {10: 4, 20: 6}[high]
  # lam 0.75: sides halved to 5 x 10, so rows 4-2..4+2, cols 6-5..6+5.
  assert transforms.cutmix_box(10, 20, 0.75, FixedRng()) == (2, 1, 4, 10)


def test_transforms_pickle_for_grain_workers():
  fn = functools.partial(transforms.random_resized_crop, size=16)
  assert pickle.loads(pickle.dumps(fn)).keywords == {'size': 16}


# ------------------------------------ same bits as the first version, faster
# tests/transforms_reference.py is the first version, verbatim. Resize and
# colour jitter now work in place on reused buffers; every output must equal
# the reference's exactly (max abs difference 0), in the same memory layout:
# BLAS rounds colour jitter's grey differently by layout (see color_jitter).

def _random_clip(seed, shape, dtype=np.uint8):
  clip = np.random.default_rng(seed).integers(0, 256, shape).astype(dtype)
  return clip if dtype == np.uint8 else clip / dtype(255)


def _assert_same(new, old):
  assert new.dtype == old.dtype and new.shape == old.shape
  assert np.array_equal(new, old), np.abs(new.astype(float) - old).max()
  long_axes = [a for a in range(new.ndim) if new.shape[a] > 1]
  assert [new.strides[a] for a in long_axes] == [old.strides[a] for a in long_axes]


def _views(clip):
  """The clip, a crop of it (a view), its mirror (negative strides), F order."""
  return [clip, clip[:, 1:-1, 2:], clip[:, :, ::-1], np.asfortranarray(clip)]


@pytest.mark.parametrize('chunk', [1, 7, transforms._CHUNK_VALUES])
def test_resize_equals_the_reference(monkeypatch, chunk):
  from tests import transforms_reference as reference
  monkeypatch.setattr(transforms, '_CHUNK_VALUES', chunk)  # 1: frame by frame.
  sizes = [(5, 7), (9, 9), (23, 31), (31, 8), (1, 12), (40, 3)]  # Down, up, odd.
  for seed, dtype in enumerate([np.uint8, np.float32, np.float64, np.uint8]):
    for view in _views(_random_clip(seed, (3, 17, 22, 3), dtype)):
      for height, width in sizes:
        _assert_same(transforms.resize(view, height, width),
                     reference.resize(view, height, width))
  grey = _random_clip(9, (2, 10, 13, 1))  # One channel.
  _assert_same(transforms.resize(grey, 6, 20), reference.resize(grey, 6, 20))
  _assert_same(transforms.short_side_resize(grey, 7),
               reference.short_side_resize(grey, 7))


def test_horizontal_flip_equals_the_reference():
  from tests import transforms_reference as reference
  for view in _views(_random_clip(0, (2, 5, 7, 3))):
    flipped = transforms.horizontal_flip(view)
    _assert_same(flipped, reference.horizontal_flip(view))
    assert flipped.flags.c_contiguous


def test_color_jitter_equals_the_reference_in_every_layout():
  from tests import transforms_reference as reference
  clip = _random_clip(1, (4, 20, 26, 3))
  resized = reference.resize(clip, 18, 24)  # The layout numpy's gathers give.
  inputs = _views(clip) + _views(resized) + [clip / np.float32(255)]
  strengths = [(0.4, 0.4, 0.4), (0.0, 0.9, 0.9), (1.2, 0.0, 0.5), (0.0, 0.0, 0.0)]
  for i, view in enumerate(inputs):
    for seed in range(8):
      brightness, contrast, saturation = strengths[(i + seed) % len(strengths)]
      kwargs = dict(brightness=brightness, contrast=contrast, saturation=saturation)
      new_rng, old_rng = np.random.default_rng(seed), np.random.default_rng(seed)
      _assert_same(transforms.color_jitter(view, new_rng, **kwargs),
                   reference.color_jitter(view, old_rng, **kwargs))
      assert new_rng.random() == old_rng.random()  # The same draws, as many.


@pytest.mark.parametrize('shape', [(16, 128, 170, 3), (8, 37, 50, 3)])
def test_train_chain_equals_the_reference(shape):
  """TrainClip's augmentation (crop, flip, jitter) on a seeded stream."""
  from tests import transforms_reference as reference

  def chain(module, clip, rng):
    clip = module.random_resized_crop(clip, rng, (112, 112) if shape[1] > 100 else (21, 30))
    if rng.random() < 0.5:
      clip = module.horizontal_flip(clip)
    return np.ascontiguousarray(module.color_jitter(clip, rng))

  for seed in range(6):  # Both sides of the flip, every jitter order.
    clip = _random_clip(seed, shape)
    new_rng, old_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    new, old = chain(transforms, clip, new_rng), chain(reference, clip, old_rng)
    assert np.array_equal(new, old) and new.dtype == old.dtype
    assert new_rng.random() == old_rng.random()


def test_reused_buffers_never_leak_into_results():
  import threading
  first, second = _random_clip(0, (3, 20, 24, 3)), _random_clip(1, (3, 20, 24, 3))
  resized = transforms.resize(first, 11, 13)
  jittered = transforms.color_jitter(first, np.random.default_rng(0))
  kept = resized.copy(), jittered.copy()
  transforms.resize(second, 11, 13)
  transforms.color_jitter(second, np.random.default_rng(1))
  assert np.array_equal(resized, kept[0]) and np.array_equal(jittered, kept[1])
  # Threads have buffers of their own: concurrent calls agree with serial ones.
  results = {}

  def work(seed):
    results[seed] = [transforms.color_jitter(transforms.resize(first, 31, 17),
                                             np.random.default_rng(seed)) for _ in range(20)]
  threads = [threading.Thread(target=work, args=(seed,)) for seed in range(3)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  for seed, outs in results.items():
    serial = transforms.color_jitter(transforms.resize(first, 31, 17), np.random.default_rng(seed))
    assert all(np.array_equal(out, serial) for out in outs)
