"""Track-level class voting: one label per track, read from all of its frames.

A per-frame detector reads a small handwritten 2 as a 7 in some frames and
as a 2 in the rest; the tracker (class-agnostic, as ByteTrack is) follows the
object through the flicker (a class-aware tracker would start a new track at
each flip, leaving nothing to vote over). Once a whole video is tracked, every detection a
track matched takes the track's label: the class with the largest sum of its
detections' scores. Detections no confirmed track matched keep their own
label, and no box or score changes, so only classification can change.

This is the labelling half of the tubelet rescoring that video object
detectors apply after linking boxes over time (Kang et al., T-CNN, 2017;
Han et al., Seq-NMS, 2016). It is offline: a frame's label depends on the
frames after it too, so it suits evaluation and `--mode predict` over whole
files, not a live stream.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

LABEL_COLUMN = 6  # Of the tracker's rows (x0, y0, x1, y1, track_id, score, label).


def track_labels(detections: Mapping[int, dict], matches: Mapping[int, Mapping[int, int]]
                 ) -> dict[int, int]:
  """{frame: {'scores' [M], 'labels' [M], ...}} and {frame: {track_id: detection index}}
  -> {track_id: the label with the largest summed score over the track's detections}."""
  votes: dict[int, dict[int, float]] = {}
  for frame, matched in matches.items():
    found = detections.get(frame)
    for track, d in matched.items():
      label, score = int(found['labels'][d]), float(found['scores'][d])
      mine = votes.setdefault(track, {})
      mine[label] = mine.get(label, 0.0) + score
  return {track: max(sorted(mine), key=mine.get) for track, mine in votes.items()}


def relabel(detections: Mapping[int, dict], tracks: Mapping[int, np.ndarray],
            matches: Mapping[int, Mapping[int, int]]) -> tuple[dict, dict]:
  """One video's detections, tracker rows and matches (frame-keyed) -> (detections,
  tracks) with every tracked detection and every track row carrying its track's label.
  The inputs are not changed."""
  voted = track_labels(detections, matches)
  new_detections = {}
  for frame, found in detections.items():
    labels = np.array(found['labels'], copy=True)
    for track, d in matches.get(frame, {}).items():
      labels[d] = voted[track]
    new_detections[frame] = {**found, 'labels': labels}
  new_tracks = {}
  for frame, rows in tracks.items():
    rows = np.array(rows, np.float64, copy=True)
    for row in rows:
      row[LABEL_COLUMN] = voted.get(int(row[4]), row[LABEL_COLUMN])
    new_tracks[frame] = rows
  return new_detections, new_tracks
