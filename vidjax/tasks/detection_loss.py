"""The YOLOX training loss on top of SimOTA's assignment.

Three parts, each summed over the batch and divided by the number of
foreground anchors in the batch (at least 1), as YOLOX does:
- box: 1 - GIoU between each foreground prediction and its matched box
  (`box_loss='giou'`, the default), or YOLOX's own 1 - IoU**2
  (`box_loss='iou'`). GIoU still has a gradient when a prediction does not
  overlap its box yet, which early in training SimOTA's fallback pairs can
  produce; weight `box_weight` (5, YOLOX's).
- objectness: BCE on every anchor, target 1 on foreground, 0 elsewhere.
- class: BCE on foreground anchors only, against one-hot(label) * IoU, so
  the class score also says how good the box is (IoU-aware target).

The assignment and the IoU targets carry no gradient; padded ground-truth
rows (mask 0) are never assigned, so an image without boxes trains only
objectness towards 0.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from vidjax.models.yolo import decode_boxes
from vidjax.tasks.detection_assign import box_area, simota_assign_batch


def paired_iou(boxes1, boxes2, *, generalized: bool = False):
  """IoU (or GIoU) of corresponding boxes: [..., 4], [..., 4] x0y0x1y1 -> [...]."""
  top_left = jnp.maximum(boxes1[..., :2], boxes2[..., :2])
  bottom_right = jnp.minimum(boxes1[..., 2:], boxes2[..., 2:])
  wh = jnp.clip(bottom_right - top_left, 0)
  inter = wh[..., 0] * wh[..., 1]
  union = box_area(boxes1) + box_area(boxes2) - inter
  iou = inter / jnp.maximum(union, 1e-9)
  if not generalized:
    return iou
  hull = (jnp.maximum(boxes1[..., 2:], boxes2[..., 2:]) -
          jnp.minimum(boxes1[..., :2], boxes2[..., :2]))  # Enclosing box's (w, h).
  hull_area = jnp.maximum(hull[..., 0] * hull[..., 1], 1e-9)
  return iou - (hull_area - union) / hull_area


def yolox_loss(outputs, centers, strides, gt_boxes, gt_labels, gt_mask, *,
               box_loss: str = 'giou', box_weight: float = 5.0, center_radius: float = 2.5):
  """outputs: the detector's {'cls' [B, A, C], 'obj' [B, A], 'reg' [B, A, 4]};
  centers [A, 2], strides [A] from `anchor_points`; gt_boxes [B, G, 4] x0y0x1y1 pixels,
  gt_labels [B, G] int, gt_mask [B, G] -> (loss scalar, {'box', 'obj', 'cls', 'num_fg',
  'fg_iou'}), parts already normalised; 'box' is before `box_weight`."""
  if box_loss not in ('giou', 'iou'):
    raise ValueError(f"box_loss must be 'giou' or 'iou', got '{box_loss}'")
  if gt_boxes.shape[1] == 0:  # No rows at all (a static shape): give the gathers one padded row.
    batch = gt_boxes.shape[0]
    gt_boxes, gt_labels = jnp.zeros((batch, 1, 4)), jnp.zeros((batch, 1), jnp.int32)
    gt_mask = jnp.zeros((batch, 1), bool)
  cls_logits, obj_logits = outputs['cls'], outputs['obj']
  num_classes = cls_logits.shape[-1]
  boxes = decode_boxes(outputs['reg'], centers, strides)  # [B, A, 4]
  fg, matched, matched_iou = jax.lax.stop_gradient(simota_assign_batch(
      boxes, cls_logits, obj_logits, centers, strides, gt_boxes, gt_labels, gt_mask,
      center_radius=center_radius))  # [B, A] each
  fg_float = fg.astype(jnp.float32)
  num_fg = jnp.maximum(fg_float.sum(), 1.0)

  index = jnp.where(fg, matched, 0)[..., None]  # [B, A, 1]
  target_boxes = jnp.take_along_axis(gt_boxes.astype(jnp.float32), index, axis=1)  # [B, A, 4]
  target_labels = jnp.take_along_axis(gt_labels, index[..., 0], axis=1)  # [B, A]
  if box_loss == 'giou':
    per_box = 1.0 - paired_iou(boxes, target_boxes, generalized=True)
  else:
    per_box = 1.0 - paired_iou(boxes, target_boxes) ** 2
  box = jnp.sum(jnp.where(fg, per_box, 0.0)) / num_fg  # where, not *: background reads row 0.

  obj = optax.sigmoid_binary_cross_entropy(obj_logits, fg_float).sum() / num_fg
  cls_target = jax.nn.one_hot(target_labels, num_classes) * matched_iou[..., None]
  per_class = optax.sigmoid_binary_cross_entropy(cls_logits, cls_target).sum(-1)  # [B, A]
  cls = jnp.sum(jnp.where(fg, per_class, 0.0)) / num_fg

  loss = box_weight * box + obj + cls
  fg_iou = jnp.sum(matched_iou * fg_float) / num_fg
  return loss, {'box': box, 'obj': obj, 'cls': cls, 'num_fg': fg_float.sum(), 'fg_iou': fg_iou}
