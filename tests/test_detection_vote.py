"""Track-level class voting, by hand: the tracker's matches, the vote, and mAP before and after."""
import numpy as np
import pytest

from vidjax.data.records import Record
from vidjax.tasks import detection_eval
from vidjax.tasks.detection_tracker import ByteTracker, track_video
from vidjax.tasks.detection_vote import relabel, track_labels

BOX = [10.0, 10.0, 30.0, 30.0]
FAR = [60.0, 60.0, 80.0, 80.0]


def test_tracker_reports_the_input_index_each_shown_track_matched():
  tracker = ByteTracker(track_thresh=0.5, new_track_thresh=0.6)
  # Index 0 has no width (the tracker drops it), so the object is input index 1.
  tracker.update([[5, 5, 5, 9], BOX], [0.9, 0.9], [3, 1])
  assert tracker.matches == {1: 1}
  tracker.update([FAR, BOX], [0.2, 0.8], [0, 1])  # FAR is too weak to start a track.
  assert tracker.matches == {1: 1}
  tracker.update([], [], [])
  assert tracker.matches == {}  # The track is lost: not shown, nothing matched.
  matches = {}
  track_video([([BOX], [0.9], [2]), ([BOX], [0.9], [2])], matches=matches)
  assert matches == {0: {1: 0}, 1: {1: 0}}


def test_vote_sums_scores_per_class_and_ties_go_to_the_lower_class():
  detections = {0: {'scores': np.array([0.9, 0.5]), 'labels': np.array([2, 4])},
                1: {'scores': np.array([0.95]), 'labels': np.array([7])},
                2: {'scores': np.array([0.8, 0.5]), 'labels': np.array([2, 3])}}
  matches = {0: {1: 0, 2: 1}, 1: {1: 0}, 2: {1: 0, 2: 1}}
  # Track 1: class 2 has 0.9 + 0.8 = 1.7 > class 7's 0.95. Track 2: 4 and 3 tie at 0.5.
  assert track_labels(detections, matches) == {1: 2, 2: 3}


def test_relabel_changes_tracked_labels_only_and_copies():
  detections = {0: {'boxes': np.array([BOX, FAR]), 'scores': np.array([0.9, 0.3]),
                    'labels': np.array([2, 5])},
                1: {'boxes': np.array([BOX]), 'scores': np.array([0.7]), 'labels': np.array([7])}}
  tracks = {0: np.array([[*BOX, 1, 0.9, 2]]), 1: np.array([[*BOX, 1, 0.7, 7]])}
  matches = {0: {1: 0}, 1: {1: 0}}
  voted, new_tracks = relabel(detections, tracks, matches)
  np.testing.assert_array_equal(voted[0]['labels'], [2, 5])  # FAR was not tracked: kept.
  np.testing.assert_array_equal(voted[1]['labels'], [2])
  np.testing.assert_array_equal(new_tracks[1][:, 6], [2])
  np.testing.assert_array_equal(voted[1]['scores'], [0.7])
  assert detections[1]['labels'][0] == 7 and tracks[1][0, 6] == 7  # Inputs untouched.


def _video(frames: int) -> Record:
  """One object of class 0 at BOX in every frame, track id 1, in a 100x100 video."""
  return Record('v.mp4', {'boxes': [BOX] * frames, 'box_labels': [0] * frames,
                          'box_frames': list(range(frames)), 'track_ids': [1] * frames,
                          'crowd_boxes': [], 'crowd_labels': [], 'crowd_frames': [],
                          'num_frames': frames, 'height': 100, 'width': 100}, 'v')


def test_voting_fixes_a_flickering_label_in_the_map():
  """Frames 0-3 read the object as class 0 at 0.9; frame 4 as class 1 at 0.95. Per box:
  class 0 finds 4 of 5 (AP 0.8), class 1 has no object (not scored): mAP 0.8. Voted: all
  five are class 0 (3.6 > 0.95): AP 1.0."""
  records, items = [_video(5)], [(0, t) for t in range(5)]
  detections = [{'boxes': np.array([BOX]), 'scores': np.array([0.95 if t == 4 else 0.9]),
                 'labels': np.array([1 if t == 4 else 0])} for t in range(5)]
  tracker = dict(track_thresh=0.5, new_track_thresh=0.6, class_aware=False)
  per_box = detection_eval.score(records, items, detections, ['a', 'b'], tracker=tracker)
  voted = detection_eval.score(records, items, detections, ['a', 'b'], tracker=tracker,
                               label_mode='track')
  assert per_box['mAP'] == pytest.approx(0.8, abs=0.01) and 'box_label_mAP' not in per_box
  assert voted['mAP'] == pytest.approx(1.0) and voted['box_label_mAP'] == per_box['mAP']
  assert voted['HOTA'] == pytest.approx(per_box['HOTA'])  # Tracks never read labels.
  assert [d['labels'][0] for d in detections] == [0, 0, 0, 0, 1]
  # A class-aware tracker starts a new track at the class-1 box: nothing to vote over.
  aware = detection_eval.score(records, items, detections, ['a', 'b'], label_mode='track',
                               tracker=dict(tracker, class_aware=True))
  assert aware['mAP'] == pytest.approx(per_box['mAP'])
  with pytest.raises(ValueError, match='label_mode'):
    detection_eval.score(records, items, detections, ['a', 'b'], tracker=tracker,
                         label_mode='vote')
