"""ByteTrack association (vidjax/tasks/detection_tracker.py) on hand-made scenes."""
import numpy as np

from vidjax.tasks import detection_tracker as dt

SIZE = np.array([0.0, 0.0, 40.0, 80.0])  # A 40 x 80 box at the origin.


def box(x0, y0):
  return SIZE + [x0, y0, x0, y0]


def frame(*objects):
  """(box, score[, label]) tuples -> (boxes [N, 4], scores [N], labels [N])."""
  boxes = np.array([o[0] for o in objects]).reshape(-1, 4)
  scores = np.array([o[1] for o in objects], float)
  labels = np.array([o[2] if len(o) > 2 else 0 for o in objects], int)
  return boxes, scores, labels


def ids(rows):
  return rows[:, 4].astype(int).tolist()


def test_ids_survive_a_crossing_with_an_occlusion():
  # A moves right along y = 100, B left along y = 120; their x meet at frame 10, where
  # A hides B for frames 9-11. The lost B is carried by its prediction and found again.
  hidden = {9, 10, 11}
  video = {}
  for t in range(21):
    objects = [(box(10 * t, 100), 0.9)]
    if t not in hidden:
      objects.append((box(200 - 10 * t, 120), 0.85))
    video[t] = frame(*objects)
  out = dt.track_video(video)
  assert ids(out[0]) == [1, 2]
  for t, rows in out.items():
    assert ids(rows) == ([1] if t in hidden else [1, 2]), t
    np.testing.assert_allclose(rows[0, :4], box(10 * t, 100), atol=3)
    if t not in hidden:
      np.testing.assert_allclose(rows[1, :4], box(200 - 10 * t, 120), atol=3)


def test_low_score_boxes_keep_tracks_but_never_start_them():
  tracker = dt.ByteTracker()
  tracker.update(*frame((box(100, 100), 0.9)))
  tracker.update(*frame((box(102, 100), 0.9)))
  # The object's score drops to 0.3 (below track_thresh): the second stage still takes it.
  # A 0.3 box far from every track starts nothing, in this frame or the next.
  rows = tracker.update(*frame((box(104, 100), 0.3), (box(400, 300), 0.3)))
  assert ids(rows) == [1] and rows[0, 5] == 0.3
  rows = tracker.update(*frame((box(106, 100), 0.3), (box(400, 300), 0.3)))
  assert ids(rows) == [1]
  # Below low_thresh the same box is ignored: the track is lost, so not output.
  strict = dt.ByteTracker(low_thresh=0.4)
  strict.update(*frame((box(100, 100), 0.9)))
  assert ids(strict.update(*frame((box(102, 100), 0.3)))) == []


def test_new_objects_get_new_ids_and_expired_tracks_are_not_revived():
  tracker = dt.ByteTracker(track_buffer=5)
  assert tracker.max_frames_lost == 5
  assert dt.ByteTracker(track_buffer=30, frame_rate=15).max_frames_lost == 15
  a, b = box(100, 100), box(400, 300)
  assert ids(tracker.update(*frame((a, 0.9)))) == [1]  # The first frame confirms at once.
  # A far 0.9 box is born as id 2, shown from its second hit; a 0.55 box (>= track_thresh,
  # < new_track_thresh) is born nowhere.
  assert ids(tracker.update(*frame((a, 0.9), (b, 0.9), (box(250, 0), 0.55)))) == [1]
  assert ids(tracker.update(*frame((a, 0.9), (b, 0.9), (box(250, 0), 0.55)))) == [1, 2]
  # b misses exactly track_buffer frames: found again under its id.
  for _ in range(5):
    assert ids(tracker.update(*frame((a, 0.9)))) == [1]
  assert ids(tracker.update(*frame((a, 0.9), (b, 0.9)))) == [1, 2]
  # Now one frame more: removed, and on return it is a new object (id 3, not 2).
  for _ in range(6):
    tracker.update(*frame((a, 0.9)))
  assert ids(tracker.update(*frame((a, 0.9), (b, 0.9)))) == [1]
  assert ids(tracker.update(*frame((a, 0.9), (b, 0.9)))) == [1, 3]
  tracker.reset()
  assert ids(tracker.update(*frame((b, 0.9)))) == [1]


def test_class_aware_tracks_ignore_other_classes():
  here = box(100, 100)
  for class_aware, expected in ((True, [2]), (False, [1])):
    tracker = dt.ByteTracker(class_aware=class_aware)
    tracker.update(*frame((here, 0.9, 0)))
    tracker.update(*frame((here, 0.9, 0)))
    # A class-1 box where the class-0 track is: class-aware, the track is lost and the box
    # starts track 2 (shown from its second frame); otherwise it continues track 1.
    tracker.update(*frame((here, 0.9, 1)))
    rows = tracker.update(*frame((here, 0.9, 1)))
    assert ids(rows) == expected, class_aware
    assert rows[0, 6] == 1


def test_kalman_prediction_follows_constant_velocity():
  def truth(t):  # Moves (7, 3) px and grows 1 px in height per frame; w/h stays 0.5.
    return np.array([50 + 7 * t, 80 + 3 * t, 0.5, 100 + t], float)
  mean, covariance = dt.kalman_initiate(truth(0))
  for t in range(1, 30):
    mean, covariance = dt.kalman_predict(mean, covariance)
    mean, covariance = dt.kalman_update(mean, covariance, truth(t))
  mean, _ = dt.kalman_predict(mean, covariance)
  np.testing.assert_allclose(dt.xyah_to_xyxy(mean[:4]), dt.xyah_to_xyxy(truth(30)), atol=1)
  np.testing.assert_allclose(dt.xyxy_to_xyah(dt.xyah_to_xyxy(truth(3))), truth(3))


def test_box_iou_by_hand():
  a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
  b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10], [3, 3, 3, 3]], float)
  iou = dt.box_iou(a, b)
  assert iou.shape == (3, 4)
  # Identical, disjoint, half overlapping (50 / 150), zero-area (no union to divide by).
  np.testing.assert_allclose(iou[0], [1, 0, 1 / 3, 0])
  assert dt.box_iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_assignment_takes_only_pairs_within_the_threshold():
  cost = np.array([[0.1, 0.9], [0.2, np.inf]])
  pairs, rows, cols = dt.assign(cost, 0.8)
  # Unthresholded, (0, 1) + (1, 0) would be forced; here row 0 keeps its 0.1.
  assert pairs.tolist() == [[0, 0]] and rows.tolist() == [1] and cols.tolist() == [1]
