"""On-device post-processing of the YOLO detector: scores, top-k, class-aware NMS.

Static shapes throughout, so it jits once and runs inside the eval step
instead of shipping every anchor's prediction to the host:

1. Each anchor's score is sigmoid(obj) * sigmoid(cls) of its best class, and
   that class is its label (YOLOX's post-processing: one label per anchor).
   With `multi_label`, every (anchor, class) pair is a candidate instead, so
   a box whose class is in doubt is also offered, at its lower score, as its
   second class: Ultralytics' validation protocol (`multi_label=True` in its
   NMS), which suits mAP; tracking keeps one label per box.
2. The `pre_nms_top_k` highest-scoring anchors are kept, in score order; those
   under `score_threshold` are marked invalid but keep their slots.
3. Greedy class-aware NMS over them: a box is kept unless an earlier
   (higher-scoring) KEPT box of the same label overlaps it with IoU >
   `iou_threshold` (strictly greater, as torchvision's `batched_nms`, which
   YOLOX uses; note the 1-D localization NMS suppresses at >=).
4. The first `max_detections` kept boxes, best first, padded with
   valid = False, box 0, score 0 and label -1.

Step 3 is solved with the suppression matrix S[j, i] (j earlier than i, same
label, IoU above the threshold) by iterating keep <- valid & ~any_j(keep[j] &
S[j, i]) from keep = valid until it stops changing. Entry i is final once
entries before it are, so it reaches exactly the greedy result in at most
`pre_nms_top_k` rounds, and in practice in as many rounds as the longest
chain of suppressions (a handful), each one matrix-vector product.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from vidjax.models.yolo import decode_boxes
from vidjax.tasks.detection_assign import box_iou


def greedy_keep(boxes, labels, valid, iou_threshold: float):
  """boxes [N, 4] sorted best first, labels [N], valid [N] -> kept [N] bool (greedy NMS)."""
  n = boxes.shape[0]
  order = jnp.arange(n)
  suppresses = ((box_iou(boxes, boxes) > iou_threshold) & (labels[:, None] == labels[None, :])
                & (order[:, None] < order[None, :]))  # [j, i]: j may suppress i.

  def step(state):
    keep, _, rounds = state
    new = valid & ~jnp.any(suppresses & keep[:, None], axis=0)
    return new, jnp.any(new != keep), rounds + 1

  keep, _, _ = jax.lax.while_loop(lambda s: s[1] & (s[2] <= n), step,
                                  (valid, jnp.array(True), jnp.array(0)))
  return keep


def nms_image(boxes, scores, labels, *, iou_threshold: float = 0.65, max_detections: int = 100,
              pre_nms_top_k: int = 1000, score_threshold: float = 0.01):
  """One image: boxes [N, 4], scores [N], labels [N] -> (boxes [K, 4], scores [K],
  labels [K] int32, valid [K] bool), K = `max_detections`, best first."""
  k0 = min(pre_nms_top_k, boxes.shape[0])
  top_scores, index = jax.lax.top_k(scores, k0)  # Sorted, best first.
  top_boxes, top_labels = boxes[index], labels[index].astype(jnp.int32)
  keep = greedy_keep(top_boxes, top_labels, top_scores >= score_threshold, iou_threshold)
  kept_first = jnp.argsort(~keep, stable=True)[:min(max_detections, k0)]  # Kept, in score order.
  valid = keep[kept_first]
  pad = max_detections - kept_first.shape[0]
  padded = lambda x: jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
  valid = padded(valid)
  out_boxes = jnp.where(valid[:, None], padded(top_boxes[kept_first]), 0.0)
  out_scores = jnp.where(valid, padded(top_scores[kept_first]), 0.0)
  out_labels = jnp.where(valid, padded(top_labels[kept_first]), -1)
  return out_boxes, out_scores, out_labels, valid


def postprocess(outputs, centers, strides, multi_label: bool = False, **nms_kwargs):
  """The detector's outputs {'cls' [B, A, C], 'obj' [B, A], 'reg' [B, A, 4]} and
  `anchor_points` -> (boxes [B, K, 4] x0y0x1y1 pixels, scores [B, K], labels [B, K],
  valid [B, K]); keyword arguments go to `nms_image`."""
  boxes = decode_boxes(outputs['reg'], centers, strides)  # [B, A, 4]
  class_scores = jax.nn.sigmoid(outputs['obj'])[..., None] * jax.nn.sigmoid(outputs['cls'])
  if multi_label:  # Candidates [B, A * C]: anchor-major, class-minor.
    b, a, c = class_scores.shape
    boxes = jnp.repeat(boxes, c, axis=1)
    scores = class_scores.reshape(b, a * c)
    labels = jnp.broadcast_to(jnp.tile(jnp.arange(c), a), (b, a * c))
  else:
    scores, labels = class_scores.max(-1), class_scores.argmax(-1)  # [B, A]
  return jax.vmap(functools.partial(nms_image, **nms_kwargs))(boxes, scores, labels)
