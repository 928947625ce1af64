"""ByteTrack's multi-object tracker in numpy: each frame's detections -> tracks with ids.

A detector gives boxes; a video detection task's `predict` gives tracks. This
is ByteTrack's association (Zhang et al. 2022, "ByteTrack: Multi-Object
Tracking by Associating Every Detection Box"; ifzhang/ByteTrack,
`yolox/tracker/byte_tracker.py`), which learns nothing: a constant-velocity
Kalman filter on (cx, cy, a = w/h, h), IoU costs and thresholded linear
assignment. Each frame, `ByteTracker.update`:

1. predicts every live track one frame ahead (a lost track's height velocity
   is zeroed first, as ByteTrack does);
2. matches the high detections (score >= track_thresh) to the confirmed
   tracks, tracked and lost, at cost 1 - IoU * score (ByteTrack's MOT17 score
   fusion; `fuse_score=False` gives its MOT20 cost 1 - IoU) <= match_thresh;
3. matches the low detections (low_thresh <= score < track_thresh) to the
   still unmatched *tracked* tracks at 1 - IoU <= second_match_thresh (BYTE:
   a low box keeps an occluded object, but never finds a lost one or starts
   one); tracked tracks still unmatched become lost;
4. matches the high detections left to the unconfirmed tracks (born last
   frame) at fused cost <= unconfirmed_match_thresh; an unconfirmed track
   left unmatched is dropped;
5. starts a track from each high detection left with score >=
   new_track_thresh: confirmed at once on the tracker's first frame, else
   on its next match (only confirmed tracks are output);
6. drops tracks lost for more than track_buffer * frame_rate / 30 frames,
   and, of a tracked and a lost track with IoU > 0.85, the one followed for
   fewer frames (the tracked one on a tie).

A track's box is its Kalman estimate after the update (ByteTrack's `tlbr`),
its score that of its last detection.

Departures from ByteTrack, all at the edges:
- Thresholds include their bound: high is score >= track_thresh, low is
  score >= low_thresh (ByteTrack: > 0.5, > 0.1).
- `class_aware` (ByteTrack knows no classes): a detection only matches a
  track of its label, and duplicates are only looked for within a label.
  With `class_aware=False` a track takes the label of its last detection.
- Every live track is predicted, unconfirmed ones too (ByteTrack skips
  them; born with zero velocity, they differ only in covariance).
- A track lost past the buffer is gone at once; ByteTrack keeps it in its
  lost list one frame more (it subtracts the removed tracks before adding
  this frame's), where it can still be found again.
- Ids count from 1 per tracker and restart on `reset` (ByteTrack's counter
  is global across trackers and videos). As there, an unconfirmed track that
  dies has used its id, so output ids may skip numbers.
- Assignment is scipy's `linear_sum_assignment` on lap.lapjv's extended
  matrix (ByteTrack calls lapjv with `cost_limit`): the same optimal
  thresholded matching, though exact ties may resolve differently.
- Detections with no width or height are ignored (a = w/h needs h > 0);
  output rows are sorted by track id.
- ByteTrack's MOT scripts then drop boxes with w/h > 1.6 or area <= 10
  (pedestrian priors); nothing is dropped here.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

# The Kalman noise of SORT / DeepSORT, kept by ByteTrack: standard deviations as
# fractions of the box height, so they scale with the object's apparent size.
_POSITION_WEIGHT = 1.0 / 20
_VELOCITY_WEIGHT = 1.0 / 160
_MOTION = np.eye(8) + np.eye(8, k=4)  # state (cx, cy, a, h, vcx, vcy, va, vh); x += v per frame.
# ByteTrack's `remove_duplicate_stracks`: a tracked and a lost track this close are one object.
DUPLICATE_IOU = 0.85
ROW_FIELDS = ('x0', 'y0', 'x1', 'y1', 'track_id', 'score', 'label')


def box_iou(a, b) -> np.ndarray:
  """IoU of boxes a [N, 4] with boxes b [M, 4], both (x0, y0, x1, y1) -> [N, M]; 0 where
  the union is empty."""
  a = np.asarray(a, np.float64).reshape(-1, 4)
  b = np.asarray(b, np.float64).reshape(-1, 4)
  width = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) -
                  np.maximum(a[:, None, 0], b[None, :, 0]), 0.0, None)
  height = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) -
                   np.maximum(a[:, None, 1], b[None, :, 1]), 0.0, None)
  inter = width * height
  area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
  area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
  union = area_a[:, None] + area_b[None, :] - inter
  positive = union > 0
  return np.where(positive, inter / np.where(positive, union, 1.0), 0.0)


def xyxy_to_xyah(boxes) -> np.ndarray:
  """(x0, y0, x1, y1) [..., 4] -> the filter's measurement (cx, cy, w/h, h) [..., 4]."""
  boxes = np.asarray(boxes, np.float64)
  width, height = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
  return np.stack([boxes[..., 0] + width / 2, boxes[..., 1] + height / 2,
                   width / height, height], axis=-1)


def xyah_to_xyxy(xyah) -> np.ndarray:
  """(cx, cy, w/h, h) [..., 4] -> (x0, y0, x1, y1) [..., 4]."""
  xyah = np.asarray(xyah, np.float64)
  half_width, half_height = xyah[..., 2] * xyah[..., 3] / 2, xyah[..., 3] / 2
  return np.stack([xyah[..., 0] - half_width, xyah[..., 1] - half_height,
                   xyah[..., 0] + half_width, xyah[..., 1] + half_height], axis=-1)


def _covariance(std: np.ndarray) -> np.ndarray:
  """Independent standard deviations [..., K] -> diagonal covariances [..., K, K]."""
  return std[..., None, :] ** 2 * np.eye(std.shape[-1])


def _noise(height: np.ndarray, position: float, aspect: float) -> np.ndarray:
  """Standard deviations [..., 4] of (cx, cy, a, h): `position` heights, a fixed for a."""
  std = position * height
  return np.stack([std, std, np.full_like(height, aspect), std], axis=-1)


def kalman_initiate(xyah) -> tuple[np.ndarray, np.ndarray]:
  """First measurement(s) [..., 4] -> (mean [..., 8], covariance [..., 8, 8]), velocity 0
  but uncertain: SORT's 2 and 10 times the per-frame noise."""
  xyah = np.asarray(xyah, np.float64)
  height = xyah[..., 3]
  std = np.concatenate([_noise(height, 2 * _POSITION_WEIGHT, 1e-2),
                        _noise(height, 10 * _VELOCITY_WEIGHT, 1e-5)], axis=-1)
  return np.concatenate([xyah, np.zeros_like(xyah)], axis=-1), _covariance(std)


def kalman_predict(mean, covariance) -> tuple[np.ndarray, np.ndarray]:
  """One frame ahead at constant velocity: (mean [..., 8], covariance [..., 8, 8]) ->
  the same, with process noise scaled by the current height."""
  mean, covariance = np.asarray(mean, np.float64), np.asarray(covariance, np.float64)
  height = mean[..., 3]
  std = np.concatenate([_noise(height, _POSITION_WEIGHT, 1e-2),
                        _noise(height, _VELOCITY_WEIGHT, 1e-5)], axis=-1)
  return mean @ _MOTION.T, _MOTION @ covariance @ _MOTION.T + _covariance(std)


def kalman_update(mean, covariance, xyah) -> tuple[np.ndarray, np.ndarray]:
  """Corrects a prediction (mean [..., 8], covariance [..., 8, 8]) with a measured
  (cx, cy, a, h) [..., 4]; the measurement noise scales with the predicted height."""
  mean, covariance = np.asarray(mean, np.float64), np.asarray(covariance, np.float64)
  innovation_cov = covariance[..., :4, :4] + _covariance(_noise(mean[..., 3],
                                                                _POSITION_WEIGHT, 1e-1))
  # Gain P H^T S^-1, from S^-1 (H P) as S and P are symmetric: [..., 8, 4].
  gain = np.swapaxes(np.linalg.solve(innovation_cov, covariance[..., :4, :]), -1, -2)
  innovation = np.asarray(xyah, np.float64) - mean[..., :4]
  mean = mean + (gain @ innovation[..., None])[..., 0]
  return mean, covariance - gain @ innovation_cov @ np.swapaxes(gain, -1, -2)


def assign(cost, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Minimum-cost matching of rows to columns using only pairs costing <= `threshold`
  -> (matched pairs [K, 2], unmatched rows, unmatched columns).

  As lap.lapjv's `cost_limit`: a row or column may stay unmatched at half the
  threshold, so a pair is taken only where it is cheaper than leaving both.
  """
  cost = np.asarray(cost, np.float64)
  rows, cols = cost.shape
  pairs = np.zeros((0, 2), np.int64)
  if rows and cols:
    extended = np.full((rows + cols, cols + rows), threshold / 2)
    extended[:rows, :cols] = np.minimum(cost, 2 * threshold + 1)  # Finite: inf forbids nothing.
    extended[rows:, cols:] = 0.0
    r, c = linear_sum_assignment(extended)
    kept = (r < rows) & (c < cols)
    r, c = r[kept], c[kept]
    kept = cost[r, c] <= threshold
    pairs = np.stack([r[kept], c[kept]], axis=1).astype(np.int64)
  return (pairs, np.setdiff1d(np.arange(rows), pairs[:, 0]),
          np.setdiff1d(np.arange(cols), pairs[:, 1]))


def association_cost(track_boxes, track_labels, boxes, scores, labels, *, fuse_score: bool,
                     class_aware: bool) -> np.ndarray:
  """Tracks [T, 4] x detections [D, 4] -> cost [T, D]: 1 - IoU, or 1 - IoU * score when
  fused (a confident detection is the cheaper match); inf across labels if class_aware."""
  similarity = box_iou(track_boxes, boxes)
  if fuse_score:
    similarity = similarity * np.asarray(scores, np.float64)[None, :]
  cost = 1.0 - similarity
  if class_aware:
    same = np.asarray(track_labels)[:, None] == np.asarray(labels)[None, :]
    cost = np.where(same, cost, np.inf)
  return cost


def _detections(boxes, scores, labels) -> tuple[np.ndarray, ...]:
  """(boxes, scores, labels) of the proper detections, and their indices in the input."""
  boxes = np.asarray(boxes, np.float64)
  if boxes.size == 0:
    boxes = boxes.reshape(0, 4)
  scores = np.asarray(scores, np.float64).reshape(-1)
  labels = np.zeros(len(scores), np.int64) if labels is None else np.asarray(labels).reshape(-1)
  n = len(boxes)
  if boxes.shape != (n, 4) or scores.shape != (n,) or labels.shape != (n,):
    raise ValueError(f'expected boxes [N, 4] (x0, y0, x1, y1), scores [N] and labels [N]; '
                     f'got {boxes.shape}, {scores.shape} and {labels.shape}')
  proper = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
  return boxes[proper], scores[proper], labels[proper], np.flatnonzero(proper)


@dataclasses.dataclass(eq=False)
class _Track:
  track_id: int
  label: object
  score: float
  mean: np.ndarray  # [8] (cx, cy, a, h) and their velocities.
  covariance: np.ndarray  # [8, 8]
  start_frame: int
  last_frame: int  # The last frame a detection matched it.
  confirmed: bool
  lost: bool = False
  detection: int = -1  # The input index of this frame's matched detection; -1: none.

  @property
  def box(self) -> np.ndarray:
    return xyah_to_xyxy(self.mean[:4])


class ByteTracker:
  """Online ByteTrack: call `update` once per frame, in order; `reset` between videos."""

  def __init__(self, track_thresh: float = 0.5, low_thresh: float = 0.1,
               match_thresh: float = 0.8, second_match_thresh: float = 0.5,
               new_track_thresh: float = 0.6, track_buffer: int = 30, frame_rate: float = 30,
               class_aware: bool = True, *, unconfirmed_match_thresh: float = 0.7,
               fuse_score: bool = True):
    # ByteTrack's MOT17 settings: track_thresh, match_thresh and track_buffer are its
    # tools/track.py flags (--track_thresh 0.5, --match_thresh 0.8, --track_buffer 30);
    # low_thresh 0.1 (`scores > 0.1`), second_match_thresh 0.5 and unconfirmed_match_thresh
    # 0.7 are constants in byte_tracker.py; new_track_thresh is its det_thresh =
    # track_thresh + 0.1; frame_rate 30 is MOT17's; fuse_score is on unless --mot20.
    # class_aware is ours: ByteTrack tracks one class.
    if not 0 <= low_thresh <= track_thresh:
      raise ValueError(f'need 0 <= low_thresh <= track_thresh; got {low_thresh}, {track_thresh}')
    self.track_thresh, self.low_thresh = track_thresh, low_thresh
    self.match_thresh, self.second_match_thresh = match_thresh, second_match_thresh
    self.unconfirmed_match_thresh = unconfirmed_match_thresh
    self.new_track_thresh = new_track_thresh
    self.max_frames_lost = int(frame_rate / 30.0 * track_buffer)
    self.class_aware, self.fuse_score = class_aware, fuse_score
    self.reset()

  def reset(self) -> None:
    """Forgets every track and restarts the frame count and the ids (a new video)."""
    self._tracks: list[_Track] = []  # Live tracks, tracked and lost, in id order.
    self._frame = 0
    self._next_id = 1
    self.matches: dict[int, int] = {}

  def _predict(self) -> None:
    if not self._tracks:
      return
    mean = np.stack([t.mean for t in self._tracks])
    mean[[t.lost for t in self._tracks], 7] = 0.0  # ByteTrack stops a lost box's growth.
    mean, covariance = kalman_predict(mean, np.stack([t.covariance for t in self._tracks]))
    for track, m, c in zip(self._tracks, mean, covariance):
      track.mean, track.covariance = m, c

  def _match(self, tracks, chosen, detections, threshold, fuse_score):
    """Tracks x the detections at indices `chosen` -> ([(track, detection index)],
    unmatched tracks, unmatched detection indices)."""
    boxes, scores, labels = (d[chosen] for d in detections)
    track_boxes = np.array([t.box for t in tracks]).reshape(-1, 4)
    cost = association_cost(track_boxes, [t.label for t in tracks], boxes, scores, labels,
                            fuse_score=fuse_score, class_aware=self.class_aware)
    pairs, free_tracks, free_detections = assign(cost, threshold)
    return ([(tracks[t], chosen[d]) for t, d in pairs], [tracks[t] for t in free_tracks],
            chosen[free_detections])

  def _hit(self, track: _Track, box, score, label, detection: int) -> None:
    track.mean, track.covariance = kalman_update(track.mean, track.covariance,
                                                 xyxy_to_xyah(box))
    track.score, track.label, track.detection = float(score), label, detection
    track.last_frame, track.lost, track.confirmed = self._frame, False, True

  def _drop_duplicates(self) -> None:
    """Of a tracked and a lost track on one object, keeps the one followed longer."""
    tracked = [t for t in self._tracks if not t.lost]
    lost = [t for t in self._tracks if t.lost]
    overlap = box_iou([t.box for t in tracked], [t.box for t in lost]) > DUPLICATE_IOU
    dropped = set()
    for p, q in zip(*np.nonzero(overlap)):
      a, b = tracked[p], lost[q]
      if self.class_aware and a.label != b.label:
        continue
      longer = (a.last_frame - a.start_frame) > (b.last_frame - b.start_frame)
      dropped.add(id(b) if longer else id(a))
    self._tracks = [t for t in self._tracks if id(t) not in dropped]

  def update(self, boxes, scores, labels=None) -> np.ndarray:
    """One frame's detections: boxes [N, 4] (x0, y0, x1, y1) pixels, scores [N], labels [N]
    (None: one class) -> rows [M, 7] (x0, y0, x1, y1, track_id, score, label) of the
    confirmed tracks seen in this frame, by track id. `self.matches` is then {track_id:
    index of the input detection it matched} for those tracks."""
    *detections, index = _detections(boxes, scores, labels)
    boxes, scores, labels = detections
    self._frame += 1
    for track in self._tracks:
      track.detection = -1
    self._predict()
    high = np.flatnonzero(scores >= self.track_thresh)
    low = np.flatnonzero((scores >= self.low_thresh) & (scores < self.track_thresh))
    pool = sorted((t for t in self._tracks if t.confirmed), key=lambda t: t.lost)

    # First association: high detections to tracked and lost tracks.
    pairs, free_tracks, free_high = self._match(pool, high, detections, self.match_thresh,
                                                self.fuse_score)
    # Second association: low detections to the tracks that were tracked until now.
    still_tracked = [t for t in free_tracks if not t.lost]
    low_pairs, unmatched, _ = self._match(still_tracked, low, detections,
                                          self.second_match_thresh, False)
    for track in unmatched:
      track.lost = True
    # Unconfirmed tracks (one detection so far) get one more chance, from the high ones left.
    unconfirmed = [t for t in self._tracks if not t.confirmed]
    born_pairs, stillborn, free_high = self._match(
        unconfirmed, free_high, detections, self.unconfirmed_match_thresh, self.fuse_score)
    for track, d in pairs + low_pairs + born_pairs:
      self._hit(track, boxes[d], scores[d], labels[d], int(index[d]))

    gone = {id(t) for t in stillborn}
    gone |= {id(t) for t in self._tracks
             if t.lost and self._frame - t.last_frame > self.max_frames_lost}
    self._tracks = [t for t in self._tracks if id(t) not in gone]
    for d in free_high[scores[free_high] >= self.new_track_thresh]:
      mean, covariance = kalman_initiate(xyxy_to_xyah(boxes[d]))
      self._tracks.append(_Track(self._next_id, labels[d], float(scores[d]), mean, covariance,
                                 self._frame, self._frame, confirmed=self._frame == 1,
                                 detection=int(index[d])))
      self._next_id += 1
    self._drop_duplicates()

    shown = [t for t in self._tracks if t.confirmed and not t.lost]
    self.matches = {t.track_id: t.detection for t in shown}
    rows = [[*t.box, t.track_id, t.score, t.label] for t in shown]
    return np.asarray(rows, np.float64).reshape(-1, len(ROW_FIELDS))


def track_video(per_frame_detections: Mapping | Sequence, *, matches: dict | None = None,
                **kwargs) -> dict[int, np.ndarray]:
  """A whole video's detections -> {frame: rows [M, 7]} for every frame, by a fresh
  `ByteTracker(**kwargs)`.

  `per_frame_detections` is {frame: (boxes, scores[, labels])} with 0-based frames, or a
  sequence of such tuples indexed by frame. A frame missing from a mapping (up to its
  last) has no detections, but the tracker still steps: the filter counts frames.
  A `matches` dict given is filled with {frame: ByteTracker.matches of that frame}.
  """
  if isinstance(per_frame_detections, Mapping):
    frames = {int(frame): value for frame, value in per_frame_detections.items()}
    if frames and min(frames) < 0:
      raise ValueError(f'frame {min(frames)} is negative; frames are 0-based indices')
  else:
    frames = dict(enumerate(per_frame_detections))
  tracker = ByteTracker(**kwargs)
  empty = (np.zeros((0, 4)), np.zeros(0))
  rows = {}
  for frame in range(max(frames, default=-1) + 1):
    rows[frame] = tracker.update(*frames.get(frame, empty))
    if matches is not None:
      matches[frame] = tracker.matches
  return rows
