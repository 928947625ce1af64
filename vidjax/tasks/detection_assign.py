"""SimOTA label assignment (YOLOX, Ge et al. 2021) in jnp, with static shapes.

Which anchors should learn which ground-truth box is decided from the
current predictions, not from fixed geometry: an anchor is a good positive
for a box when its prediction already classifies and localises that box well.
Per image, with A anchors and G ground-truth rows (padded to a fixed G, with
a mask):

1. Candidates (YOLOX's prior): an anchor is a candidate if its centre lies
   inside some real box, or within `center_radius` strides of some real box's
   centre. Non-candidates are never assigned. A pair (box, anchor) where the
   anchor is not BOTH inside that box and near its centre costs an extra
   `outside_cost`, so such pairs are only used when nothing better exists.
2. Cost [G, A] = BCE of sqrt(sigmoid(cls) * sigmoid(obj)) against the box's
   one-hot class (summed over classes) + `iou_weight` * -log IoU(prediction,
   box) + the penalty above.
3. Dynamic k per box: the floor of the sum of its `candidate_k` largest IoUs
   with candidate predictions, at least 1 (0 for padded rows). Well-predicted
   boxes take more anchors, poorly-predicted ones few.
4. Each box takes its k cheapest anchors; an anchor taken by several boxes
   keeps the cheapest one.

Since each IoU is at most 1, k never exceeds `candidate_k`, so step 4 needs
only a top-`candidate_k` per box, not a sort over all anchors. Everything is
[G, A] arrays: no Python loops over boxes or anchors, one compile for every
image, vmap-able over the batch. The result carries no gradient.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

OUTSIDE_COST = 1e5  # YOLOX's penalty for a pair outside box-and-centre.
EXCLUDED = 1e9  # Cost of a non-candidate anchor or a padded row: never chosen.


def box_area(boxes):  # [..., 4] x0y0x1y1 -> [...]
  return jnp.clip(boxes[..., 2] - boxes[..., 0], 0) * jnp.clip(boxes[..., 3] - boxes[..., 1], 0)


def box_iou(boxes1, boxes2):
  """Pairwise IoU: [N, 4], [M, 4] x0y0x1y1 -> [N, M]; 0 where the union is empty."""
  top_left = jnp.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
  bottom_right = jnp.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
  wh = jnp.clip(bottom_right - top_left, 0)
  inter = wh[..., 0] * wh[..., 1]
  union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
  return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)


def _log(x):  # log clamped at -100, as torch's BCE does, so p = 0 or 1 stays finite.
  return jnp.maximum(jnp.log(x), -100.0)


def candidate_masks(centers, strides, gt_boxes, gt_mask, center_radius: float = 2.5):
  """(in_box [G, A], in_centre [G, A]): anchor centre inside the box / within
  `center_radius` strides of the box centre; False for padded rows."""
  x, y = centers[None, :, 0], centers[None, :, 1]  # [1, A]
  x0, y0, x1, y1 = (gt_boxes[:, i:i + 1] for i in range(4))  # [G, 1]
  in_box = (x > x0) & (x < x1) & (y > y0) & (y < y1)
  radius = center_radius * strides[None, :]
  cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
  in_centre = (jnp.abs(x - cx) < radius) & (jnp.abs(y - cy) < radius)
  valid = gt_mask[:, None].astype(bool)
  return in_box & valid, in_centre & valid


def simota_assign(pred_boxes, cls_logits, obj_logits, centers, strides, gt_boxes, gt_labels,
                  gt_mask, *, center_radius: float = 2.5, candidate_k: int = 10,
                  iou_weight: float = 3.0):
  """One image: pred_boxes [A, 4] x0y0x1y1 pixels, cls_logits [A, C], obj_logits [A],
  centers [A, 2], strides [A], gt_boxes [G, 4] x0y0x1y1, gt_labels [G] int, gt_mask [G]
  -> (foreground [A] bool, matched_gt [A] int32 (-1 where background),
      matched_iou [A] float32 (IoU of the prediction with its box; 0 where background)).
  """
  pred_boxes, cls_logits, obj_logits, gt_boxes = jax.lax.stop_gradient(
      (pred_boxes, cls_logits, obj_logits, gt_boxes))
  pred_boxes = pred_boxes.astype(jnp.float32)
  gt_boxes = gt_boxes.astype(jnp.float32)
  num_anchors, num_classes = cls_logits.shape
  if gt_boxes.shape[0] == 0:  # No rows at all (a static shape): nothing to assign.
    return (jnp.zeros((num_anchors,), bool), jnp.full((num_anchors,), -1, jnp.int32),
            jnp.zeros((num_anchors,), jnp.float32))
  valid = gt_mask.astype(bool)  # [G]
  in_box, in_centre = candidate_masks(centers, strides, gt_boxes, valid, center_radius)
  candidate = jnp.any(in_box | in_centre, axis=0)  # [A]

  iou = box_iou(gt_boxes, pred_boxes)  # [G, A]
  p = jnp.sqrt(jax.nn.sigmoid(cls_logits.astype(jnp.float32)) *
               jax.nn.sigmoid(obj_logits.astype(jnp.float32))[:, None])  # [A, C]
  negative = -_log(1 - p)  # [A, C]: BCE where the target is 0.
  label = jnp.clip(gt_labels, 0, num_classes - 1)
  # BCE against one-hot(label) = sum of negatives, with the label's term swapped to positive.
  cls_cost = (negative.sum(-1)[None, :] - negative[:, label].T - _log(p[:, label]).T)  # [G, A]
  cost = cls_cost + iou_weight * -jnp.log(iou + 1e-8)
  cost = cost + OUTSIDE_COST * ~(in_box & in_centre)
  usable = valid[:, None] & candidate[None, :]  # [G, A]
  cost = jnp.where(usable, cost, EXCLUDED)

  k = min(candidate_k, num_anchors)
  top_ious, _ = jax.lax.top_k(jnp.where(usable, iou, 0.0), k)  # [G, k]
  dynamic_k = jnp.maximum(jnp.floor(top_ious.sum(-1)).astype(jnp.int32), 1)
  dynamic_k = jnp.where(valid, dynamic_k, 0)  # [G]
  _, cheapest = jax.lax.top_k(-cost, k)  # [G, k] anchor indices, cheapest first.
  chosen = (jnp.arange(k)[None, :] < dynamic_k[:, None]) & jnp.take_along_axis(usable, cheapest, 1)
  rows = jnp.broadcast_to(jnp.arange(gt_boxes.shape[0])[:, None], cheapest.shape)
  matching = jnp.zeros(cost.shape, bool).at[rows, cheapest].max(chosen)  # [G, A]

  foreground = matching.any(axis=0)  # [A]
  matched_gt = jnp.argmin(jnp.where(matching, cost, jnp.inf), axis=0).astype(jnp.int32)
  matched_iou = jnp.take_along_axis(iou, matched_gt[None, :], 0)[0]
  return (foreground, jnp.where(foreground, matched_gt, -1),
          jnp.where(foreground, matched_iou, 0.0))


def simota_assign_batch(pred_boxes, cls_logits, obj_logits, centers, strides, gt_boxes,
                        gt_labels, gt_mask, **kwargs):
  """`simota_assign` over a batch: the per-image arrays gain a leading [B]; anchors are shared."""
  assign = lambda *a: simota_assign(*a[:3], centers, strides, *a[3:], **kwargs)
  return jax.vmap(assign)(pred_boxes, cls_logits, obj_logits, gt_boxes, gt_labels, gt_mask)
