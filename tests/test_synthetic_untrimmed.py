"""Tests for the embedded untrimmed dataset (temporal action localization and segmentation).

What they pin down: the segments say what the frames do (a move moves the
ink at its speed, a grow grows it, idle barely moves); nothing but the motion
marks a boundary (no jump in frame difference there); the sampler yields
empty videos, back-to-back instances, every class, ink inside the frame; and
the files are the published formats (ActivityNet JSON equal to the MS-TCN
per-frame files, trimmed clips inside their segments), drawn from each split's
own digits, reproducibly, generated once.
"""
import csv
import json

import numpy as np
import pytest

from vidjax.data import decode
from vidjax.data import synthetic_actions as sa
from vidjax.data import synthetic_untrimmed as su
from vidjax.data.synthetic_untrimmed_render import render_backdrop

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
TINY = dict(videos_per_split={'train': 3, 'val': 2, 'test': 2}, mean_frames=150)


@pytest.fixture(scope='module')
def digits():
  return sa.load_digits('train')


@pytest.fixture(scope='module')
def samples():
  """60 sampled videos of 150-700 frames: (num_frames, VideoParams, segments)."""
  out = []
  for i in range(60):
    rng = np.random.default_rng([7, i])
    num_frames = int(rng.integers(150, 700))
    out.append((num_frames, *su.sample_video(rng, num_frames, num_instances=350)))
  return out


def test_names_and_rate():
  assert len(su.CLASS_NAMES) == 8 and len(set(su.CLASS_NAMES)) == 8
  assert su.FPS == 8 and su.BACKGROUND not in su.CLASS_NAMES


def test_sampled_segments_follow_the_design(samples):
  empty = back_to_back = 0
  seen = set()
  for num_frames, video, segments in samples:
    sprite = video.sprite
    assert sprite.num_frames == num_frames
    empty += not segments
    previous_end, previous_class = 0, None
    for a, b, c in segments:
      assert su.ACTION_FRAMES[0] <= b - a <= su.ACTION_FRAMES[1] and b <= num_frames
      assert 0 <= a - previous_end <= su.MAX_GAP
      if a == previous_end and previous_class is not None:
        back_to_back += 1
        assert c != previous_class  # Back to back means another class.
      # The digit changes in idle time only, never near an instance.
      window = sprite.digit_instance[max(a - su.SWAP_GUARD, 0):b + su.SWAP_GUARD]
      assert len(set(window)) == 1
      seen.add(c)
      previous_end, previous_class = b, c
    # The ink stays inside the frame; the scale keeps within its bounds.
    margin = sa.INK_HALF_EXTENT * sprite.scale[:, None]
    assert np.all(sprite.centre >= margin - 1e-6) and np.all(sprite.centre <= 64 - margin + 1e-6)
    assert sprite.scale.max() / sprite.scale.min() <= 1.7 / 0.6
  assert 2 <= empty <= 15 and back_to_back >= 20 and seen == set(range(8))


def test_state_changes_are_the_labelled_ones(samples):
  """Per frame: moves at constant speed, scale and angle ramps, idle slow."""
  speeds = []
  for num_frames, video, segments in samples:
    sprite = video.sprite
    step = np.diff(sprite.centre, axis=0)  # step[t - 1] moves frame t - 1 to t
    idle = su.frame_labels(segments, num_frames)[1:] == 0
    assert np.percentile(np.hypot(*step[idle].T), 99) < 0.65 if idle.any() else True
    for a, b, c in segments:
      if a == 0:
        continue
      name = su.CLASS_NAMES[c]
      if name in su._MOVES:
        axis, sign = su._MOVES[name]
        along = sign * step[a - 1:b - 1, axis]
        np.testing.assert_allclose(along, along[0], atol=1e-6)  # Constant speed.
        assert su.MOVE_SPEED[0] - 1e-6 <= along[0] <= su.MOVE_SPEED[1]
        speeds.append(along[0])
      elif name in ('grow', 'shrink'):
        ratio = sprite.scale[b - 1] / sprite.scale[a - 1]
        factor = ratio if name == 'grow' else 1 / ratio
        assert su.SCALE_FACTOR[0] * np.exp(-0.06) <= factor <= su.SCALE_FACTOR[1] * np.exp(0.06)
      else:
        turn = (sprite.angle[b - 1] - sprite.angle[a - 1]) / (b - a)
        turn = turn if name == 'rotate_cw' else -turn
        assert su.TURN_SPEED[0] - 0.6 <= turn <= su.TURN_SPEED[1] + 0.6
  assert min(speeds) < su.MOVE_SPEED[0] + 0.4 and max(speeds) > 2.0


def _ink_moments(frames, video):
  """[T] ink mass and [T, 2] centre of mass (x, y) from pixels: frame less its backdrop."""
  back = render_backdrop(video.backdrop, frames.shape[1]) @ LUMA
  ink = np.abs(frames.astype(np.float32) @ LUMA - back)
  ink = np.where(ink > 20, ink, 0)  # [T, H, W]
  coords = np.arange(frames.shape[1])
  mass = ink.sum(axis=(1, 2)) + 1e-6
  return mass, np.stack([ink.sum(1) @ coords, ink.sum(2) @ coords], axis=1) / mass[:, None]


@pytest.fixture(scope='module')
def rendered(samples, digits):
  """Rendered frames of the first sampled videos that hold instances."""
  picked = [s for s in samples if s[2]][:6]
  return [(video, segments, su.render_video(video, digits)) for _, video, segments in picked]


def test_rendering_shows_the_ground_truth(rendered):
  checked = set()
  for video, segments, frames in rendered:
    assert frames.shape == (video.num_frames, 64, 64, 3) and frames.dtype == np.uint8
    mass, com = _ink_moments(frames, video)
    step = np.diff(com, axis=0)
    idle = su.frame_labels(segments, video.num_frames)[1:] == 0
    assert np.median(np.hypot(*step[idle].T)) < 0.4
    for a, b, c in segments:
      name = su.CLASS_NAMES[c]
      if name in su._MOVES and a > 0:
        axis, sign = su._MOVES[name]
        speed = sign * video.sprite.centre[a, axis] - sign * video.sprite.centre[a - 1, axis]
        seen = sign * np.median(step[a - 1:b - 1, axis])
        assert abs(seen - speed) < 0.25, (name, seen, speed)
        assert abs(np.median(step[a - 1:b - 1, 1 - axis])) < 0.4
        checked.add('move')
      elif name in ('grow', 'shrink') and a > 0:
        ratio = mass[b - 1] / mass[a - 1]  # Ink area goes with the scale squared.
        assert (ratio > 1.4) if name == 'grow' else (ratio < 1 / 1.4), (name, ratio)
        checked.add('scale')
  assert checked == {'move', 'scale'}


def test_no_visual_cut_marks_a_boundary(rendered):
  """The frame difference into an instance's first (or out of its last) frame is a motion's."""
  at_boundary, within = [], []
  for video, segments, frames in rendered:
    diff = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))  # [T - 1]
    boundaries = {e for a, b, _ in segments for e in (a, b) if 1 < e < video.num_frames - 1}
    for e in boundaries:
      d = diff[e - 1]  # Frame e - 1 to e.
      assert d <= 1.5 * max(diff[e - 2], diff[e]) + 0.5, (e, d, diff[e - 2], diff[e])
      at_boundary.append(d)
    inside = np.ones(len(diff), bool)
    inside[[e - 1 for e in boundaries]] = False
    within += list(diff[inside])
  assert np.mean(at_boundary) <= 2.0 * np.mean(within), (np.mean(at_boundary), np.mean(within))


# Files on disk --------------------------------------------------------------

@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
  return su.ensure_dataset(tmp_path_factory.mktemp('untrimmed') / 'set', workers=1, **TINY)


def _annotations(root):
  return json.loads((root / 'annotations.json').read_text())


def test_annotations_are_activitynet_and_equal_the_frame_labels(tiny_root):
  database = _annotations(tiny_root)['database']
  counts = TINY['videos_per_split']
  assert len(database) == sum(counts.values())
  names = (tiny_root / 'classes.txt').read_text().splitlines()
  assert names == list(su.CLASS_NAMES)
  mapping = [line.split() for line in (tiny_root / 'mapping.txt').read_text().splitlines()]
  assert mapping == [[str(k), n] for k, n in enumerate((su.BACKGROUND,) + su.CLASS_NAMES)]
  for vid, entry in database.items():
    split = vid.split('_')[1]
    assert entry['subset'] == su.SUBSETS[split] and entry['fps'] == su.FPS
    assert entry['duration'] == entry['num_frames'] / su.FPS
    truth = (tiny_root / 'groundTruth' / f'{vid}.txt').read_text().splitlines()
    assert len(truth) == entry['num_frames']
    expected = [su.BACKGROUND] * entry['num_frames']
    for annotation in entry['annotations']:
      t0, t1 = annotation['segment']
      assert 0 <= t0 < t1 <= entry['duration']
      assert names[annotation['label_id']] == annotation['label']
      expected[round(t0 * su.FPS):round(t1 * su.FPS)] = [annotation['label']] * round(
          (t1 - t0) * su.FPS)
    assert truth == expected, vid
  assert decode.read_frame_count(str(tiny_root / 'videos' / f'{vid}.mp4')) == entry['num_frames']


def test_trimmed_clips_lie_inside_their_segments(tiny_root):
  clip_names = (tiny_root / 'clips' / 'classes.txt').read_text().splitlines()
  assert clip_names == [su.BACKGROUND] + list(su.CLASS_NAMES)
  labels = set()
  for split in su.SPLITS:
    with open(tiny_root / 'clips' / f'{split}.csv', newline='') as f:
      rows = list(csv.reader(f))
    assert rows[0] == ['path', 'label']
    for path, label in rows[1:]:
      assert path.startswith(f'{split}/untrimmed_{split}_') and label in clip_names
      vid, start = path.split('/')[-1][:-4].rsplit('_', 1)
      start = int(start)
      truth = (tiny_root / 'groundTruth' / f'{vid}.txt').read_text().splitlines()
      assert truth[start:start + su.CLIP_FRAMES] == [label] * su.CLIP_FRAMES, path
      labels.add(label)
  assert len(labels) >= 4
  # A clip holds the frames of its video (both encoded, so nearly equal).
  clip = decode.read_frames(str(tiny_root / 'clips' / path)).astype(np.float32)
  video = decode.read_frames(str(tiny_root / 'videos' / f'{vid}.mp4'),
                             list(range(start, start + su.CLIP_FRAMES)))
  assert clip.shape == (16, 64, 64, 3) and np.abs(clip - video).mean() < 2


def test_videos_draw_their_own_splits_digits(tiny_root):
  vid = 'untrimmed_val_0001'
  rng, num_frames = su.video_plan(0, 'val', 1, 2, TINY['mean_frames'])
  own, other = sa.load_digits('val'), sa.load_digits('train')[:, :50]
  video, _ = su.sample_video(rng, num_frames, num_instances=50)
  rendered, wrong = su.render_video(video, own), su.render_video(video, other)
  decoded = decode.read_frames(str(tiny_root / 'videos' / f'{vid}.mp4')).astype(np.float32)
  assert np.abs(decoded - rendered).mean() < 3
  differ = np.abs(rendered.astype(np.int16) - wrong).max(-1) > 50
  assert differ.sum() > 100
  assert np.abs(decoded - rendered)[differ].mean() < 0.5 * np.abs(decoded - wrong)[differ].mean()


def test_ensure_generates_once_and_again_when_parameters_change(tiny_root, monkeypatch):
  done = (tiny_root / 'DONE').read_text()
  assert json.loads(done)['videos_per_split'] == TINY['videos_per_split']

  def fail(*args, **kwargs):
    raise AssertionError('regenerated a complete dataset')
  with monkeypatch.context() as patch:
    patch.setattr(su, 'generate', fail)
    assert su.ensure_dataset(tiny_root, workers=1, **TINY) == tiny_root
  small = dict(TINY, videos_per_split={'train': 1, 'val': 1, 'test': 1}, mean_frames=60)
  su.ensure_dataset(tiny_root, workers=1, **small)
  assert json.loads((tiny_root / 'DONE').read_text())['mean_frames'] == 60
  assert len(_annotations(tiny_root)['database']) == 3
  su.ensure_dataset(tiny_root, workers=1, **TINY)  # Back, for the tests after this one.
  assert (tiny_root / 'DONE').read_text() == done


def test_generation_is_reproducible_and_independent_of_processes(tiny_root, tmp_path):
  again = su.generate(tmp_path / 'again', workers=2, **TINY)
  for name in ['annotations.json'] + [f'clips/{s}.csv' for s in su.SPLITS]:
    assert (again / name).read_bytes() == (tiny_root / name).read_bytes(), name
  other = su.generate(tmp_path / 'other', seed=1, workers=1, **TINY)
  assert (other / 'annotations.json').read_bytes() != (tiny_root / 'annotations.json').read_bytes()


def test_classifier_spans_cover_instances_and_clips_stay_inside_them(tiny_root):
  from vidjax.data.clip_spec import ClipSpec
  from vidjax.data.clips import TrainClip
  from vidjax.data.layouts.activitynet import load_activitynet_json
  from vidjax.tasks.classification import LabelTargets
  from tests.conftest import tiny_data
  videos = load_activitynet_json(str(tiny_root), 'train')
  spans = su.span_records(videos.records)
  actions = [r for r in spans if r.annotation['label'] > 0]
  assert len(actions) == sum(len(r.annotation['segments']) for r in videos.records)
  truth = {r.video_id: (tiny_root / 'groundTruth' / f'{r.video_id}.txt').read_text().split()
           for r in videos.records}
  names = (su.BACKGROUND,) + su.CLASS_NAMES
  for r in spans:  # Every frame of a span carries the span's label.
    a, b = r.annotation['frames']
    assert set(truth[r.video_id][a:b]) == {names[r.annotation['label']]}
  spec = ClipSpec.from_config(tiny_data(num_frames=8, frame_stride=2, height=64, width=64))
  record = max(actions, key=lambda r: r.annotation['frames'][1] - r.annotation['frames'][0])
  a, b = record.annotation['frames']
  for seed in range(3):
    clip = TrainClip(spec, LabelTargets())((0, record), np.random.default_rng(seed))
    assert clip['label'] == record.annotation['label'] and clip['video'].shape == (8, 64, 64, 3)
  frames = decode.read_frames(record.path, height=64, width=64)
  clip = TrainClip(spec, LabelTargets())((0, record), np.random.default_rng(0))
  starts = [s for s in range(a, b) if np.array_equal(frames[s], clip['video'][0])]
  assert starts and a <= starts[0] <= max(b - 15, a)  # The 15 frames it spans lie inside.


def test_the_backbone_trains_on_mirrored_clips_with_directions_swapped():
  from vidjax import config as config_lib
  from vidjax.data.flip_labels import flip_label_map
  config = config_lib.load('configs/untrimmed_backbone.py')
  assert config.data.flip and config.data.flip_label_map
  names = [su.BACKGROUND, *su.CLASS_NAMES]  # clips/classes.txt: label 0 is idle.
  swapped = {names[i]: names[j] for i, j in flip_label_map(names).items()}
  assert swapped == {'move_right': 'move_left', 'move_left': 'move_right',
                     'rotate_cw': 'rotate_ccw', 'rotate_ccw': 'rotate_cw'}
