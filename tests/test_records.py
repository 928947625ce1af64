"""Records carry any annotation; the task's targets function makes fixed-shape targets.

The targets functions here are the shapes the coming tasks need -- segments
with times and labels (localization), per-frame labels (segmentation), boxes
with track ids (detection and tracking), nothing (frame prediction) -- and
every one goes through the same training stream and evaluation batches as
classification's labels. Frame i of the test video has its own grey level,
so the decoded frames tell which video frames a clip holds, and the targets
are checked against those frames, not just for shape.
"""
import dataclasses

import numpy as np
import pytest

from tests.conftest import tiny_data
from vidjax.data import pipeline, testing
from vidjax.data.records import ClipInfo, NoTargets, Record, pad_rows

N = 40  # Frames of the test video.
MAX_ROWS = 3


@dataclasses.dataclass(frozen=True)
class SegmentTargets:
  """{'segments': [[first_frame, last_frame, label], ...]} -> the clip's overlapping
  segments in clip steps [MAX_ROWS, 3], padded, with a mask."""

  def __call__(self, annotation, clip: ClipInfo) -> dict:
    first, last = clip.frame_indices.min(), clip.frame_indices.max()
    rows = []
    for start, end, label in annotation['segments']:
      if end >= first and start <= last:  # Overlaps the clip: where, in clip steps.
        inside = np.flatnonzero((clip.frame_indices >= start) & (clip.frame_indices <= end))
        rows.append([inside.min(), inside.max(), label])
    segments, mask = pad_rows(rows, MAX_ROWS, 3, np.int32)
    return {'segments': segments, 'segment_mask': mask}

  def padding(self) -> dict:
    return {'segments': np.zeros((MAX_ROWS, 3), np.int32),
            'segment_mask': np.zeros((MAX_ROWS,), bool)}


@dataclasses.dataclass(frozen=True)
class FrameLabelTargets:
  """{'frame_labels': one label per video frame} -> the sampled frames' labels [T]."""

  def __call__(self, annotation, clip: ClipInfo) -> dict:
    return {'frame_labels': np.asarray(annotation['frame_labels'], np.int32)[clip.frame_indices]}

  def padding(self) -> dict:
    return {'frame_labels': np.zeros((4,), np.int32)}


@dataclasses.dataclass(frozen=True)
class BoxTargets:
  """{'boxes': {frame: [[x0, y0, x1, y1, track_id], ...]}, 'width'} -> [T, MAX_ROWS, 5]
  and a mask [T, MAX_ROWS]; a mirrored clip mirrors the x coordinates."""

  def __call__(self, annotation, clip: ClipInfo) -> dict:
    boxes, masks = [], []
    for frame in clip.frame_indices:
      rows = np.asarray(annotation['boxes'].get(int(frame), []), np.float32).reshape(-1, 5)
      if clip.flipped:
        rows[:, [0, 2]] = annotation['width'] - rows[:, [2, 0]]
      padded, mask = pad_rows(rows, MAX_ROWS, 5)
      boxes.append(padded)
      masks.append(mask)
    return {'boxes': np.stack(boxes), 'box_mask': np.stack(masks)}

  def padding(self) -> dict:
    return {'boxes': np.zeros((4, MAX_ROWS, 5), np.float32),
            'box_mask': np.zeros((4, MAX_ROWS), bool)}


@pytest.fixture(scope='module')
def video(tmp_path_factory):
  path = tmp_path_factory.mktemp('records') / 'levels.mp4'
  return testing.write_video(str(path), testing.fake_frames(N, 32, 32))


DATA = dict(num_frames=4, frame_stride=3, height=32, width=32)


def _train(records, targets, data, batches=3, **kwargs):
  failures = pipeline.FailureCounter('train', 0.9)
  it = iter(pipeline.train_dataset(records, data, batch_size=len(records), seed=1,
                                   failures=failures, targets=targets, **kwargs))
  return [next(it) for _ in range(batches)], it


def _frames(batch):
  return np.stack([testing.nearest_frames(clip, N) for clip in batch['video']])  # [B, T]


def test_segments_become_clip_steps_padded_with_a_mask(video):
  segments = [[0, 9, 1], [10, 19, 2], [20, 29, 3], [30, 39, 4]]
  records = [Record(video, {'segments': segments})] * 4
  for batch in _train(records, SegmentTargets(), tiny_data(**DATA))[0]:
    assert batch['segments'].shape == (4, MAX_ROWS, 3) and batch['segment_mask'].shape == (4, 3)
    for frames, rows, mask in zip(_frames(batch), batch['segments'], batch['segment_mask']):
      labels_by_step = np.asarray(frames) // 10 + 1  # The segment each decoded frame lies in.
      kept = rows[mask]
      assert 1 <= len(kept) <= 2  # A 4-frame clip at stride 3 spans 10 frames: 1 or 2 segments.
      for first, last, label in kept:
        assert (labels_by_step[first:last + 1] == label).all()
      assert sorted(set(labels_by_step)) == sorted(kept[:, 2])
      assert not rows[~mask].any()  # Padding rows are zeros.


def test_per_frame_labels_follow_the_sampled_frames(video):
  records = [Record(video, {'frame_labels': np.arange(N) % 7})] * 3
  batches, _ = _train(records, FrameLabelTargets(), tiny_data(**DATA))
  for batch in batches:
    np.testing.assert_array_equal(batch['frame_labels'], _frames(batch) % 7)


def test_boxes_with_track_ids_are_padded_per_frame_and_mirrored_with_the_clip(video):
  # Frame f has f % 3 + 1 boxes; box k of frame f is at x = f + k, track id 100 + k.
  boxes = {f: [[f + k, 0, f + k + 2, 5, 100 + k] for k in range(f % 3 + 1)] for f in range(N)}
  records = [Record(video, {'boxes': boxes, 'width': 32})] * 8
  batches, _ = _train(records, BoxTargets(), tiny_data(flip=True, flip_label_map=False, **DATA))
  flipped_seen = set()
  for batch in batches:
    assert batch['boxes'].shape == (8, 4, MAX_ROWS, 5)
    # A flipped clip has the video's dark-to-light gradient unchanged (flat frames), so which
    # were mirrored shows in the boxes: x0 = f + k unmirrored, 32 - (f + k + 2) mirrored.
    for frames, rows, mask in zip(_frames(batch), batch['boxes'], batch['box_mask']):
      np.testing.assert_array_equal(mask.sum(axis=1), frames % 3 + 1)
      first = rows[0, 0]
      flipped = first[0] != frames[0]
      flipped_seen.add(bool(flipped))
      for t, f in enumerate(frames):
        for k in range(f % 3 + 1):
          x0 = 32 - (f + k + 2) if flipped else f + k
          np.testing.assert_array_equal(rows[t, k], [x0, 0, x0 + 2, 5, 100 + k])
  assert flipped_seen == {True, False}


def test_no_annotation_gives_frames_alone(video):
  batches, _ = _train([Record(video)] * 2, NoTargets(), tiny_data(**DATA))
  assert set(batches[0]) == {'video'}


def test_resume_and_process_rows_hold_for_any_targets(video, tmp_path):
  segments = [[0, 9, 1], [10, 19, 2], [20, 29, 3], [30, 39, 4]]
  records = [Record(video, {'segments': segments, 'frame_labels': np.arange(N)})] * 4
  data = tiny_data(**DATA)
  straight, _ = _train(records, SegmentTargets(), data, batches=4)
  _, it = _train(records, SegmentTargets(), data, batches=2)
  state = it.get_state()
  failures = pipeline.FailureCounter('train', 0.9)
  resumed = iter(pipeline.train_dataset(records, data, batch_size=4, seed=1, failures=failures,
                                        targets=SegmentTargets()))
  resumed.set_state(state)
  for want in straight[2:]:
    got = next(resumed)
    for key in want:
      np.testing.assert_array_equal(got[key], want[key])
  halves = []
  for p in range(2):
    it = iter(pipeline.train_dataset(records, data, batch_size=4, seed=1, failures=failures,
                                     targets=SegmentTargets(), process_index=p, process_count=2))
    halves.append(next(it))
  for key in straight[0]:
    np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]), straight[0][key])


def test_eval_batches_carry_targets_per_view_and_pad_with_the_tasks_padding(video, tmp_path):
  records = [Record(video, {'frame_labels': np.arange(N) + 1}),
             Record(str(tmp_path / 'missing.mp4'), {'frame_labels': np.arange(N)}),
             Record(video, {'frame_labels': np.arange(N) + 1})]
  data = tiny_data(eval_num_clips=2, **DATA)
  failures = pipeline.FailureCounter('val', 0.9, min_seen=3)
  batches = list(pipeline.eval_batches(records, data, batch_size=3, num_batches=3,
                                       failures=failures, targets=FrameLabelTargets()))
  rows = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
  assert rows['frame_labels'].shape == (9, 4) and rows['mask'].sum() == 4  # 2 videos x 2 views.
  kept = rows['mask']
  decoded = np.stack([testing.nearest_frames(clip, N) for clip in rows['video'][kept]])
  np.testing.assert_array_equal(rows['frame_labels'][kept], decoded + 1)
  assert not rows['frame_labels'][~kept].any()  # The task's padding.
  assert list(failures.failed) == [str(tmp_path / 'missing.mp4')]


def test_pad_rows_refuses_to_drop_annotations():
  padded, mask = pad_rows([[1, 2], [3, 4]], 3, 2)
  np.testing.assert_array_equal(padded, [[1, 2], [3, 4], [0, 0]])
  np.testing.assert_array_equal(mask, [True, True, False])
  with pytest.raises(ValueError, match='exceed the maximum of 1'):
    pad_rows([[1, 2], [3, 4]], 1, 2)
