"""A record's boxes -> one clip's detection targets, on the host (in the decode workers).

The detector predicts the boxes of a clip's LAST frame (vidjax/models/yolo.py),
so the targets are that frame's boxes (`ClipInfo.frame_indices[-1]`),
scaled from the annotation's image size to the clip's (frames are resized
to data.height x data.width, aspect not kept), mirrored when the clip was,
and padded to `max_boxes` rows with a mask so every batch has one shape.
Crowd boxes ('crowd_boxes': COCO's iscrowd, the embedded set's mostly hidden
objects) are no targets: the metric ignores detections on them, and training
should neither reward nor punish them.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from vidjax.data.records import ClipInfo, pad_rows


def frame_boxes(annotation: Mapping[str, Any], frame: int, crowd: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
  """(boxes [N, 4] x0y0x1y1 in the annotation's pixels, labels [N]) of one frame."""
  prefix = 'crowd_' if crowd else 'box_'
  boxes = np.asarray(annotation['crowd_boxes' if crowd else 'boxes'], np.float32).reshape(-1, 4)
  on_frame = np.asarray(annotation[f'{prefix}frames']) == frame
  return boxes[on_frame], np.asarray(annotation[f'{prefix}labels'], np.int32)[on_frame]


def scale_boxes(boxes, from_size: tuple[int, int], to_size: tuple[int, int],
                flipped: bool = False) -> np.ndarray:
  """Boxes [N, 4] in an image of (height, width) `from_size` -> in one of `to_size`,
  mirrored left to right after scaling when `flipped`."""
  (h0, w0), (h1, w1) = from_size, to_size
  boxes = np.asarray(boxes, np.float32).reshape(-1, 4) * np.float32(
      [w1 / w0, h1 / h0, w1 / w0, h1 / h0])
  if flipped:
    boxes = np.stack([w1 - boxes[:, 2], boxes[:, 1], w1 - boxes[:, 0], boxes[:, 3]], axis=1)
  return boxes


@dataclasses.dataclass(frozen=True)
class BoxTargets:
  """A grain-picklable targets function: (annotation, clip) -> {'boxes' [G, 4] float32,
  'box_labels' [G] int32, 'box_mask' [G] bool}, G = `max_boxes`, boxes in the clip's pixels."""
  max_boxes: int
  height: int
  width: int

  def __call__(self, annotation: Mapping[str, Any], clip: ClipInfo) -> dict[str, np.ndarray]:
    boxes, labels = frame_boxes(annotation, int(clip.frame_indices[-1]))
    boxes = scale_boxes(boxes, (annotation['height'], annotation['width']),
                        (self.height, self.width), clip.flipped)
    padded, mask = pad_rows(boxes, self.max_boxes, 4)
    padded_labels, _ = pad_rows(labels[:, None], self.max_boxes, 1, np.int32)
    return {'boxes': padded, 'box_labels': padded_labels[:, 0], 'box_mask': mask}

  def padding(self) -> dict[str, np.ndarray]:
    return {'boxes': np.zeros((self.max_boxes, 4), np.float32),
            'box_labels': np.zeros((self.max_boxes,), np.int32),
            'box_mask': np.zeros((self.max_boxes,), np.bool_)}
