"""What detection and tracking layouts return, and the one check of their boxes.

COCO JSON, CocoVID, the YOLO folders and MOT Challenge sequences all annotate
frames with boxes. Each loader reads its files into the same
`DetectionDataset`: one `Record` per video, whose path is a video file, a
folder of frames, or a single image (a one-frame video). Every box passes
`check_boxes`, so a bad box is treated the same whichever layout it came
from: clipped or dropped and counted in `Problems` -- never an exception,
because the published files do contain them (MOT17's boxes reach past the
image, COCO has boxes of zero width). A malformed *file* is different:
nothing sensible can be read from it, so it is a one-line ValueError
(`untrimmed.malformed`) naming the file, the line and the fix.

A record's annotation holds:
  'boxes'         float32 [N, 4], x0, y0, x1, y1 in pixels, inside the image
  'box_labels'    int32 [N], indices into `class_names`
  'box_frames'    int32 [N], 0-based frame of the record (indexes 'frame_files')
  'track_ids'     int32 [N], -1 where the layout has none
  'crowd_boxes'   float32 [M, 4], COCO's iscrowd regions (a metric ignores
                  detections there); 'crowd_labels', 'crowd_frames' int32 [M];
                  empty in the other layouts
  'width', 'height', 'num_frames'  ints
  'frame_files'   the frames' image paths in frame order, or None for a video file
"""
from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
from typing import Iterable, Mapping, Sequence

import numpy as np

from vidjax.data.records import Record

log = logging.getLogger(__name__)

# kind -> (one, many, what happened to them), in the order of the summary.
_KINDS = {
    'clipped': ('box', 'boxes', 'clipped to the image'),
    'outside': ('box', 'boxes', 'outside the image dropped'),
    'empty': ('box', 'boxes', 'with zero or negative size dropped'),
    'not_finite': ('box', 'boxes', 'with a coordinate that is not a number dropped'),
    'unknown_class': ('box', 'boxes', 'with an unknown class id dropped'),
    'missing_frame': ('box', 'boxes', 'on a frame that does not exist dropped'),
    'missing_image': ('frame', 'frames', 'whose image is missing left out'),
    'unreadable_image': ('image', 'images', 'that cannot be read left out'),
    # Not faults: what the layout says, counted so that the totals add up.
    'crowd': ('crowd box', 'crowd boxes', 'kept apart'),
    'unscored': ('row', 'rows', 'not to be scored (conf 0 or another class) skipped'),
    'no_label_file': ('image', 'images', 'without a label file (no objects)'),
    'empty_label_file': ('image', 'images', 'with an empty label file (no objects)'),
    'no_gt': ('sequence', 'sequences', 'without gt/gt.txt (no boxes)'),
}
_NOTES = frozenset({'crowd', 'unscored', 'no_label_file', 'empty_label_file', 'no_gt'})


class Problems:
  """How many boxes, frames and images were repaired, dropped or noted, by kind.

  Real datasets have thousands of such boxes (MOT17 clips one in ten), so
  only the first few messages of each kind are kept, for the log.
  """
  EXAMPLES = 3

  def __init__(self, source: str):
    self.source = source
    self.counts: collections.Counter[str] = collections.Counter()
    self.examples: dict[str, list[str]] = {}

  def add(self, kind: str, count: int = 1, messages: Iterable[str] = ()) -> None:
    """Counts `count` of `kind`; a generator of messages is read only as far as kept."""
    if kind not in _KINDS:
      raise KeyError(f'unknown problem kind {kind!r}; known: {", ".join(_KINDS)}')
    if count <= 0:
      return
    self.counts[kind] += count
    kept = self.examples.setdefault(kind, [])
    kept.extend(itertools.islice(messages, self.EXAMPLES - len(kept)))

  @property
  def faults(self) -> int:
    """Boxes, frames and images repaired or lost (notes excluded)."""
    return sum(n for kind, n in self.counts.items() if kind not in _NOTES)

  def lines(self) -> list[str]:
    """The kept messages, faults first, in the order of the summary."""
    return [m for kind in _KINDS for m in self.examples.get(kind, ())]

  def summary(self) -> str:
    """One line: "COCO val2017: 3 boxes clipped to the image, 1 box with zero ..."."""
    parts = []
    for kind, (one, many, what) in _KINDS.items():
      if self.counts[kind]:
        parts.append(f'{self.counts[kind]} {one if self.counts[kind] == 1 else many} {what}')
    return f'{self.source}: {", ".join(parts) or "no problems"}'


@dataclasses.dataclass(frozen=True)
class DetectionDataset:
  """The videos found, the class names, the listed-but-absent paths, what was repaired.

  `missing` lists the images, frame folders or videos that are absent (left
  out of `records`); `problems` counts the boxes and frames dropped,
  clipped or noted.
  """
  records: list[Record]
  class_names: list[str]
  missing: list[str]
  problems: Problems

  def __len__(self) -> int:
    return len(self.records)

  def summary(self) -> str:
    """One line: videos, frames, classes, boxes, tracks, missing files, then the problems."""
    notes = [r.annotation for r in self.records]
    empty = sum(len(a['boxes']) == 0 for a in notes)
    tracks = sum(len(np.unique(a['track_ids'][a['track_ids'] >= 0])) for a in notes)
    line = (f'{len(self.records)} videos ({sum(a["num_frames"] for a in notes)} frames, '
            f'{empty} without boxes), {len(self.class_names)} classes, '
            f'{sum(len(a["boxes"]) for a in notes)} boxes, {tracks} tracks')
    if self.missing:
      listed = len(self.records) + len(self.missing)
      line += (f', {len(self.missing)} of {listed} listed missing '
               f'({100 * len(self.missing) / listed:.1f}%), e.g. {self.missing[0]}')
    return f'{line}; {self.problems.summary()}'


def xywh_to_xyxy(boxes) -> np.ndarray:
  """[N, 4] left, top, width, height (COCO, MOT) -> x0, y0, x1, y1."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def cxcywh_to_xyxy(boxes, width: int, height: int) -> np.ndarray:
  """[N, 4] centre x, centre y, width, height normalised to [0, 1] (YOLO) -> pixels."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4) * [width, height, width, height]
  half = boxes[:, 2:] / 2
  return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def check_boxes(video_id: str, boxes, classes: Sequence[int], frames: Sequence[int],
                track_ids: Sequence[int] | None, *, label_of: Mapping[int, int],
                frame_index: Mapping[int, int], width: int, height: int,
                problems: Problems, what: str = 'box') -> dict[str, np.ndarray]:
  """Every layout's boxes -> the record's arrays; what is wrong is counted in `problems`.

  Args:
    boxes: [N, 4] x0, y0, x1, y1 in pixels (each layout converts its own form first).
    classes: [N] the layout's class ids; `label_of` maps them to 0-based
      labels, and an id it lacks is unknown.
    frames: [N] the layout's frame numbers; `frame_index` maps the frames
      that exist to the record's 0-based frames.
    track_ids: [N], or None when the layout has none (-1 then).
    what: names the boxes in messages ('box', 'crowd box').

  Dropped, in this order: an unknown class, a frame that does not exist, a
  coordinate that is not finite, zero or negative width or height, a box
  entirely outside the `width` x `height` image. Clipped: a box partly outside.
  Returns 'boxes' float32 [M, 4], 'box_labels', 'box_frames', 'track_ids' int32 [M].
  """
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  classes = [int(c) for c in classes]
  frames = [int(f) for f in frames]
  labels = np.array([label_of.get(c, -1) for c in classes], np.int64)
  positions = np.array([frame_index.get(f, -1) for f in frames], np.int64)
  tracks = (np.full(len(boxes), -1, np.int64) if track_ids is None
            else np.asarray(track_ids, np.int64).reshape(-1))
  if not len(boxes) == len(labels) == len(positions) == len(tracks):
    raise ValueError(f'{video_id}: {len(boxes)} boxes, {len(labels)} classes, '
                     f'{len(positions)} frames, {len(tracks)} track ids: lengths differ')
  keep = np.ones(len(boxes), np.bool_)
  on_frame = len(frame_index) > 1

  def describe(i: int) -> str:
    where = f' on frame {frames[i]}' if on_frame else ''
    return f'{video_id}: {what} [{", ".join(f"{v:g}" for v in boxes[i])}]{where}'

  def drop(kind: str, mask: np.ndarray, why) -> None:
    mask = mask & keep
    chosen = np.flatnonzero(mask)
    problems.add(kind, len(chosen), (f'{describe(i)} {why(i)}; dropped' for i in chosen))
    keep[chosen] = False

  drop('unknown_class', labels < 0, lambda i: f'has class id {classes[i]}, not in the class list')
  drop('missing_frame', positions < 0,
       lambda i: 'is on a frame that does not exist (past the end, or its image is missing)')
  with np.errstate(invalid='ignore'):
    drop('not_finite', ~np.isfinite(boxes).all(axis=1),
         lambda i: 'has a coordinate that is not a number')
    x0, y0, x1, y1 = boxes.T
    drop('empty', (x1 <= x0) | (y1 <= y0), lambda i: 'has zero or negative width or height')
    drop('outside', (x0 >= width) | (y0 >= height) | (x1 <= 0) | (y1 <= 0),
         lambda i: f'lies outside the {width}x{height} image')
    partly = keep & ((x0 < 0) | (y0 < 0) | (x1 > width) | (y1 > height))
  chosen = np.flatnonzero(partly)
  problems.add('clipped', len(chosen), (f'{describe(i)} reaches outside the {width}x{height} '
                                        f'image; clipped to it' for i in chosen))
  clipped = np.clip(boxes, 0, [width, height, width, height])
  return {'boxes': clipped[keep].astype(np.float32),
          'box_labels': labels[keep].astype(np.int32),
          'box_frames': positions[keep].astype(np.int32),
          'track_ids': tracks[keep].astype(np.int32)}


def no_boxes() -> dict[str, np.ndarray]:
  """`check_boxes`'s result for a frame or video without boxes."""
  return {'boxes': np.zeros((0, 4), np.float32), 'box_labels': np.zeros((0,), np.int32),
          'box_frames': np.zeros((0,), np.int32), 'track_ids': np.zeros((0,), np.int32)}


def box_annotation(checked: Mapping[str, np.ndarray], *, width: int, height: int,
                   num_frames: int, frame_files: list[str] | None,
                   crowd: Mapping[str, np.ndarray] | None = None) -> dict:
  """A record's annotation: checked boxes (and crowd boxes), the frame size and count."""
  crowd = crowd if crowd is not None else no_boxes()
  return {**{k: checked[k] for k in ('boxes', 'box_labels', 'box_frames', 'track_ids')},
          'crowd_boxes': crowd['boxes'], 'crowd_labels': crowd['box_labels'],
          'crowd_frames': crowd['box_frames'],
          'width': int(width), 'height': int(height), 'num_frames': int(num_frames),
          'frame_files': list(frame_files) if frame_files is not None else None}


def finish(records: list[Record], class_names: list[str], missing: list[str],
           problems: Problems) -> DetectionDataset:
  """The dataset, with its problems logged once: a warning when boxes or frames were lost."""
  found = DetectionDataset(records, list(class_names), missing, problems)
  if problems.faults:
    example = ''.join(f'; e.g. {line}' for line in problems.lines()[:1])
    log.warning('%s%s', problems.summary(), example)
  elif problems.counts:
    log.info('%s', problems.summary())
  return found
