"""The grain pipeline: which frames and views come out, augmentation, bad files.

Frame indices are checked, not just shapes: frame i of a test video has its
own grey level (`testing.fake_frames`), so `testing.nearest_frames` tells
which frames a clip holds.
"""
import pathlib
import shutil

import numpy as np
import pytest

from tests.conftest import tiny_config, tiny_data
from vidjax import train
from vidjax.metrics import classification as metrics
from vidjax.data import clips, decode, pipeline, sampling, testing, transforms
from vidjax.data.records import Record
from vidjax.tasks import classification
from vidjax.tasks.classification import LabelTargets

DATA = tiny_config('').data
N = 32  # Frames of the sampling test video.


def _with_workers(workers):
  return tiny_data(num_workers=workers)


def R(path, label):  # noqa: N802  A labelled record, as the registry makes them.
  return Record(str(path), {'label': label})


def _records(root, split):
  lines = (root / f'{split}.csv').read_text().splitlines()[1:]
  names = (root / 'classes.txt').read_text().split()
  return [R(root / p, names.index(label)) for p, label in (l.split(',') for l in lines)]


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
  root = tmp_path_factory.mktemp('pipeline_videos')
  paths = {
      'levels': testing.write_video(str(root / 'levels.mp4'), testing.fake_frames(N, 32, 32)),
      'short': testing.write_video(str(root / 'short.mp4'), testing.fake_frames(6, 32, 32)),
  }
  # Static frames with a left/right asymmetry and texture: crops and flips show.
  rng = np.random.default_rng(0)
  texture = rng.integers(40, 200, (1, 32, 48, 3)).astype(np.uint8)
  texture[:, :, :12] //= 4  # A dark left strip.
  paths['static'] = testing.write_video(str(root / 'static.mp4'),
                                        np.repeat(texture, 12, axis=0), options={'crf': '0'})
  paths['portrait'] = testing.write_video(str(root / 'portrait.mp4'),
                                          np.repeat(texture.transpose(0, 2, 1, 3), 12, axis=0),
                                          options={'crf': '0'})
  return paths


def _eval_rows(records, data, batch_size=8, max_fraction=0.9):
  failures = pipeline.FailureCounter('val', max_fraction, min_seen=len(records))
  num_batches = -(-len(records) * pipeline.views_per_video(data) // batch_size)
  batches = list(pipeline.eval_batches(records, data, batch_size=batch_size, targets=LabelTargets(),
                                       num_batches=num_batches, failures=failures))
  assert len(batches) == num_batches
  cat = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
  return {k: v[cat['mask']] for k, v in cat.items()}, failures


def _train_clips(records, data, count, seed=0, class_names=('a', 'b', 'c', 'd')):
  failures = pipeline.FailureCounter('train', 0.5)
  targets, mix = classification.training_targets(data, class_names, seed)
  it = iter(pipeline.train_dataset(records, data, batch_size=len(records), seed=seed,
                                   failures=failures, targets=targets, batch_fn=mix))
  return [next(it) for _ in range(count)]


# ----------------------------------------------------------------- sampling

def test_dense_training_clips_are_strided_runs_with_random_starts(videos):
  data = tiny_data(num_frames=4, frame_stride=3)
  batches = _train_clips([R(videos['levels'], 0)] * 4, data, 3)
  starts = set()
  for clip in np.concatenate([b['video'] for b in batches]):
    got = testing.nearest_frames(clip, N)
    start = int(got[0])
    np.testing.assert_array_equal(got, start + 3 * np.arange(4))
    assert 0 <= start <= N - sampling.clip_span(4, 3)
    starts.add(start)
  assert len(starts) > 3  # 12 clips, 23 possible starts.


def test_dense_multiview_eval_takes_evenly_spread_clips(videos):
  data = tiny_data(num_frames=4, frame_stride=3, eval_num_clips=3)
  rows, _ = _eval_rows([R(videos['levels'], 0)], data)
  # Span 10, starts 0..22 in 3 parts of 23/3: centres floor(3.83, 11.5, 19.2).
  got = [testing.nearest_frames(v, N).tolist() for v in rows['video']]
  assert got == [[3, 6, 9, 12], [11, 14, 17, 20], [19, 22, 25, 28]]
  np.testing.assert_array_equal(rows['index'], [0, 0, 0])


def test_segment_sampling_random_in_training_centred_in_eval(videos):
  data = tiny_data(num_frames=4, sampling='segments')
  for batch in _train_clips([R(videos['levels'], 0)] * 4, data, 2):
    for clip in batch['video']:
      got = testing.nearest_frames(clip, N)
      assert all(8 * k <= got[k] < 8 * (k + 1) for k in range(4)), got  # Segments of 8.
  rows, _ = _eval_rows([R(videos['levels'], 0)], data)
  assert testing.nearest_frames(rows['video'][0], N).tolist() == [4, 12, 20, 28]
  rows, _ = _eval_rows([R(videos['levels'], 0)], tiny_data(num_frames=4, sampling='segments',
                                                      eval_num_clips=2))
  got = [testing.nearest_frames(v, N).tolist() for v in rows['video']]
  assert got == [[2, 10, 18, 26], [6, 14, 22, 30]]  # Quarter and three-quarter points.


@pytest.mark.parametrize('mode,expected', [('loop', [0, 3, 0, 3]), ('pad', [0, 3, 5, 5])])
def test_short_videos_loop_or_pad(videos, mode, expected):
  # 6 frames, clip of 4 at stride 3 spans 10.
  rows, _ = _eval_rows([R(videos['short'], 0)], tiny_data(num_frames=4, frame_stride=3,
                                                      short_videos=mode))
  assert testing.nearest_frames(rows['video'][0], 6).tolist() == expected


def test_unknown_mode_is_a_one_line_error():
  with pytest.raises(pipeline.UserError, match="data.sampling is 'tsn'; use one of dense"):
    pipeline.views_per_video(tiny_data(sampling='tsn'))


# --------------------------------------------------------------- multi-view

@pytest.mark.parametrize('name', ['static', 'portrait'])
def test_three_crops_per_clip_along_the_long_side(videos, name):
  data = tiny_data(num_frames=4, frame_stride=2, eval_num_clips=2, eval_crop='three')
  assert pipeline.views_per_video(data) == 6
  rows, _ = _eval_rows([R(videos[name], 0)], data)
  assert rows['video'].shape == (6, 4, 32, 32, 3)
  frames = decode.read_frames(videos[name])  # [12, 32, 48, 3] or [12, 48, 32, 3]
  expected = []
  for clip in sampling.multiview_indices(12, 4, 2, 2):
    expected.extend(transforms.spatial_crops(frames[clip], 32, 3))  # left / centre / right
  np.testing.assert_array_equal(rows['video'], np.stack(expected))
  # The three crops differ (they see different parts of the frame).
  assert len({rows['video'][i].tobytes() for i in range(3)}) == 3


def test_multiview_softmax_is_averaged_per_video(videos):
  records = [R(videos['static'], 1), R(videos['levels'], 0), R(videos['portrait'], 1)]
  data = tiny_data(num_frames=4, frame_stride=2, eval_num_clips=2, eval_crop='three',
               height=24, width=24)
  rows, _ = _eval_rows(records, data, batch_size=4)
  assert len(rows['index']) == 3 * 6
  for video in range(3):
    assert (rows['index'] == video).sum() == 6 and (rows['label'][rows['index'] == video] ==
                                                    records[video].annotation['label']).all()
  # A stand-in model: softmax of each view's channel means.
  logits = rows['video'].astype(np.float64).mean(axis=(1, 2, 3)) / 20  # [rows, 3]
  probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
  videos_seen, per_video = metrics.average_views(probs, rows['index'])
  np.testing.assert_array_equal(videos_seen, [0, 1, 2])
  for video in range(3):
    by_hand = sum(probs[i] for i in range(len(probs)) if rows['index'][i] == video) / 6
    np.testing.assert_allclose(per_video[video], by_hand, rtol=1e-12)


def test_eval_batches_refuses_too_few_batches(videos):
  data = tiny_data(eval_num_clips=2)
  with pytest.raises(ValueError, match='views_per_video'):
    list(pipeline.eval_batches([R(videos['levels'], 0)] * 5, data, batch_size=4, num_batches=2,
                               failures=pipeline.FailureCounter('val', 0.5),
                               targets=LabelTargets()))


def test_prediction_reads_the_centre_view(videos):
  data = tiny_data(num_frames=4, frame_stride=3, eval_num_clips=3, eval_crop='three')
  clip = clips.read_clip_for_prediction(videos['levels'], data)
  assert clip.shape == (4, 32, 32, 3)
  assert testing.nearest_frames(clip, N).tolist() == [11, 14, 17, 20]


# ------------------------------------------------------------- augmentation

def test_flip_uses_the_label_map_for_direction_classes(videos):
  names = ['Pushing something from left to right', 'Pushing something from right to left',
           'Putting something on a surface']

  def flips_and_labels(label, label_map):
    data = tiny_data(num_frames=2, height=32, width=48, flip=True, flip_label_map=label_map)
    batch = _train_clips([R(videos['static'], label)] * 8, data, 1, class_names=names)[0]
    first = batch['video'][:, 0].astype(np.int32)  # [B, H, W, 3]
    flipped = first[:, :, :8].mean(axis=(1, 2, 3)) > first[:, :, -8:].mean(axis=(1, 2, 3))
    return flipped, batch['label']  # The dark strip moved to the right: flipped.

  flipped, labels = flips_and_labels(0, True)
  assert 0 < flipped.sum() < len(flipped)
  np.testing.assert_array_equal(labels, np.where(flipped, 1, 0))  # Left to right -> right to left.
  flipped, labels = flips_and_labels(2, True)
  assert flipped.any() and (labels == 2).all()  # No mirror class.
  flipped, labels = flips_and_labels(0, False)
  assert flipped.any() and (labels == 0).all()  # No label map: labels kept.


def test_crop_flip_and_colour_are_the_same_for_every_frame(videos):
  data = tiny_data(num_frames=4, frame_stride=2, height=24, width=24, train_crop='random_resized',
               crop_scale=(0.2, 0.6), flip=True, flip_label_map=False,
               color_jitter=(0.4, 0.4, 0.4))
  batch = _train_clips([R(videos['static'], 0)] * 6, data, 1, class_names=['a'])[0]
  video = batch['video'].astype(np.int32)  # [6, 4, 24, 24, 3] of static frames.
  assert batch['video'].shape == (6, 4, 24, 24, 3)
  assert np.abs(video - video[:, :1]).max() <= 2  # Frames of a clip alike (codec noise).
  clips = video[:, 0]
  assert min(np.abs(clips[i] - clips[j]).mean() for i in range(6) for j in range(i)) > 3


def test_center_crop_in_training_keeps_the_aspect(videos):
  data = tiny_data(num_frames=2, height=32, width=32, train_crop='center')
  clip = _train_clips([R(videos['static'], 0)], data, 1)[0]['video'][0]
  frames = decode.read_frames(videos['static'], [0])  # [1, 32, 48, 3]
  np.testing.assert_array_equal(clip[0], frames[0, :, 8:40])


def test_short_side_decode_scaling(videos):
  data = tiny_data(num_frames=2, height=16, width=16, eval_crop='center', eval_short_side=16)
  rows, _ = _eval_rows([R(videos['static'], 0)], data)
  assert rows['video'].shape == (1, 2, 16, 16, 3)
  frames = decode.read_frames(videos['static'], [0], height=16, width=24)  # 32x48 -> 16x24.
  np.testing.assert_array_equal(rows['video'][0, 0], frames[0, :, 4:20])


def test_mixup_and_cutmix_targets(tiny_actions_root):
  records = _records(tiny_actions_root, 'train')
  names = (tiny_actions_root / 'classes.txt').read_text().split()
  data = tiny_data(mixup_alpha=0.8, cutmix_alpha=1.0)
  batches = _train_clips(records[:8], data, 4, seed=5, class_names=names)
  again = _train_clips(records[:8], data, 4, seed=5, class_names=names)
  for batch, same in zip(batches, again):
    assert batch['video'].dtype == np.uint8 and batch['target'].dtype == np.float32
    assert batch['target'].shape == (8, 12)
    np.testing.assert_allclose(batch['target'].sum(axis=1), 1, rtol=1e-6)
    # Each row mixes its own label with one other row's.
    assert (batch['target'][np.arange(8), batch['label']] >= 0).all()
    assert ((batch['target'] > 0).sum(axis=1) <= 2).all()
    for k in batch:
      np.testing.assert_array_equal(batch[k], same[k])  # Seeded by batch number.
  assert len({b['target'].round(4).tobytes() for b in batches}) == 4


# ---------------------------------------------------------------- bad data

def test_train_batches_are_independent_of_worker_count(tiny_actions_root):
  records = _records(tiny_actions_root, 'train')

  def first_batches(workers):
    failures = pipeline.FailureCounter('train', 0.5)
    it = iter(pipeline.train_dataset(records, _with_workers(workers), batch_size=4, seed=3,
                                     failures=failures, targets=LabelTargets()))
    return [next(it) for _ in range(3)]

  for a, b in zip(first_batches(0), first_batches(1)):
    np.testing.assert_array_equal(a['video'], b['video'])
    np.testing.assert_array_equal(a['label'], b['label'])


def test_unreadable_videos_are_skipped_and_counted(tiny_actions_root, tmp_path):
  records = _records(tiny_actions_root, 'val')
  garbage = tmp_path / 'garbage.mp4'
  garbage.write_bytes(b'not a video' * 100)
  bad = [R(garbage, 0), R(tmp_path / 'missing.mp4', 1)]
  failures = pipeline.FailureCounter('val', max_fraction=0.5, min_seen=14)
  batches = list(pipeline.eval_batches(bad[:1] + records + bad[1:], DATA, batch_size=8,
                                       num_batches=2, failures=failures, targets=LabelTargets()))
  assert len(batches) == 2
  assert sum(int(b['mask'].sum()) for b in batches) == len(records)
  assert failures.seen == len(records) + 2
  assert set(failures.failed) == {str(garbage), str(tmp_path / 'missing.mp4')}
  assert '2 unreadable video(s) skipped of 14 read' in failures.summary()


def _damaged(src, dst, edit):
  data = bytearray(pathlib.Path(src).read_bytes())
  pathlib.Path(dst).write_bytes(bytes(edit(data)))
  return str(dst)


def test_every_kind_of_bad_file_is_skipped_with_its_reason(videos, tmp_path):
  noisy = testing.write_video(str(tmp_path / 'noisy.mp4'),
                              testing.fake_frames(48, 32, 32, noise_seed=0))
  pos, _ = testing.packet_spans(noisy)[20]

  def break_framing(d):
    d[pos:pos + 4] = b'\xff' * 4
    return d

  empty = tmp_path / 'empty.mp4'
  empty.write_bytes(b'')
  bad = {
      'empty': (str(empty), 'empty file'),
      'truncated': (_damaged(noisy, tmp_path / 'cut.mp4', lambda d: d[:len(d) // 2]),
                    'truncated mp4'),
      'garbage': (_damaged(noisy, tmp_path / 'garbage.mp4',
                           lambda d: np.random.default_rng(0).bytes(5000)), 'cannot open'),
      # Frames 19..28 of the centred clip lie past damage at frame 20.
      'corrupt_mid': (_damaged(noisy, tmp_path / 'mid.mp4', break_framing), 'past decodable end'),
      'missing': (str(tmp_path / 'missing.mp4'), 'file not found'),
  }
  good = [R(videos['levels'], 0), R(noisy, 1)]
  av1 = testing.av1_encoder()
  if av1:  # decord cannot read AV1; PyAV can: a good video, not a failure.
    good.append(R(testing.write_video(str(tmp_path / 'av1.mp4'), testing.fake_frames(N, 32, 32),
                                      codec=av1), 2))
  records = [R(path, 3) for path, _ in bad.values()] + good
  data = tiny_data(num_frames=4, frame_stride=3)
  rows, failures = _eval_rows(records, data)
  assert sorted(rows['index'].tolist()) == list(range(len(bad), len(records)))
  assert set(failures.failed) == {path for path, _ in bad.values()}
  for path, reason in bad.values():
    assert reason in failures.failed[path], (path, failures.failed[path])
  if av1:
    av1_row = rows['video'][rows['index'] == len(records) - 1][0]
    assert testing.nearest_frames(av1_row, N).tolist() == [11, 14, 17, 20]
  # A training stream skips them too, and the run goes on.
  train_failures = pipeline.FailureCounter('train', 0.9)
  it = iter(pipeline.train_dataset(records, data, batch_size=2, seed=0, failures=train_failures,
                                   targets=LabelTargets()))
  for _ in range(3):
    assert next(it)['video'].shape == (2, 4, 32, 32, 3)


def test_a_stuck_decode_times_out_and_is_counted(videos, monkeypatch):
  import threading
  release = threading.Event()
  slow = videos['short']
  real = decode._read_clip

  def stuck(path, *args):
    if path == slow:
      release.wait(10)
    return real(path, *args)

  monkeypatch.setattr(decode, '_read_clip', stuck)
  data = tiny_data(decode_timeout_s=0.3)
  try:
    rows, failures = _eval_rows([R(slow, 0), R(videos['levels'], 1)], data)
  finally:
    release.set()
  assert failures.failed == {slow: 'timed out after 0.3s'}
  assert rows['label'].tolist() == [1]


def test_too_many_failures_stop_with_one_line(tmp_path):
  bad = [R(tmp_path / f'missing_{i}.mp4', 0) for i in range(30)]
  failures = pipeline.FailureCounter('train', max_fraction=0.05)
  it = iter(pipeline.train_dataset(bad, DATA, batch_size=2, seed=0, failures=failures,
                                   targets=LabelTargets()))
  with pytest.raises(pipeline.DataError) as e:
    next(it)
  message = str(e.value)
  assert '\n' not in message
  assert 'train videos failed to decode' in message and 'missing_' in message
  assert 'data.max_failed_fraction=0.05' in message


def test_corrupt_video_in_split_list_is_skipped_in_a_run(tiny_actions_root, tmp_path):
  """A whole run over a CSV dataset with a corrupt video in train and test lists."""
  root = tmp_path / 'csv_dataset'
  shutil.copytree(tiny_actions_root, root)
  corrupt = root / 'videos' / 'corrupt.mp4'
  good = next((root / 'videos' / 'train').glob('*.mp4')).read_bytes()
  corrupt.write_bytes(good[: len(good) // 3])  # Truncated: the index (moov) is lost.
  for split in ('train', 'test'):
    with (root / f'{split}.csv').open('a') as f:
      f.write('videos/corrupt.mp4,grow\n')
  config = tiny_config(root, **{'data.dataset': 'csv', 'train.num_steps': 12,
                                'data.max_failed_fraction': 0.5})
  final = train.train_and_evaluate(config, tmp_path / 'run')
  assert final['test']['num_failed'] == 1
  assert final['test']['num_videos'] == 12  # The 12 good test videos, each once.
