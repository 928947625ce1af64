"""SimOTA by hand: candidates, padding, dynamic k and competition between boxes.

The anchors are the stride-8 grid of a 64x64 image: anchor 8 * row + col sits
at (8 * col + 4, 8 * row + 4). The main box [16, 16, 48, 48] holds the 4x4
anchors with rows and columns 2..5, which are also all within 2.5 strides
(20 px) of its centre (32, 32).
"""
import jax
import jax.numpy as jnp
import numpy as np

from vidjax.models.yolo import anchor_points
from vidjax.tasks.detection_assign import box_iou, simota_assign, simota_assign_batch

CENTERS, STRIDES = anchor_points(64, 64, (8,))  # [64, 2], [64]
BOX = [16.0, 16.0, 48.0, 48.0]
INSIDE = [8 * r + c for r in range(2, 6) for c in range(2, 6)]
MIDDLE = 8 * 3 + 3  # Anchor at (28, 28).
FAR = [0.0, 0.0, 2.0, 2.0]  # A prediction that overlaps nothing.


def _assign(pred_boxes, gt_boxes, gt_labels, gt_mask, cls_logits=None, num_classes=2):
  pred_boxes = jnp.asarray(pred_boxes, jnp.float32)
  a = pred_boxes.shape[0]
  cls_logits = jnp.zeros((a, num_classes)) if cls_logits is None else jnp.asarray(cls_logits)
  fg, gt, iou = jax.jit(simota_assign)(pred_boxes, cls_logits, jnp.zeros((a,)), CENTERS, STRIDES,
                                       jnp.asarray(gt_boxes, jnp.float32), jnp.asarray(gt_labels),
                                       jnp.asarray(gt_mask))
  return np.asarray(fg), np.asarray(gt), np.asarray(iou)


def _predictions(default, **special):
  pred = np.tile(np.asarray(default, np.float32), (64, 1))
  for index, box in special.items():
    pred[int(index[1:])] = box
  return pred


def test_box_iou_by_hand():
  iou = box_iou(jnp.array([BOX]), jnp.array([[16, 16, 32, 32], [48, 48, 60, 60], [0, 0, 0, 0]]))
  np.testing.assert_allclose(iou, [[0.25, 0.0, 0.0]])


def test_a_perfect_prediction_inside_is_matched_and_one_outside_never():
  # Anchor 0 at (4, 4) predicts the box perfectly too, but it is neither in the box nor near it.
  pred = _predictions(FAR, **{f'a{MIDDLE}': BOX, 'a0': BOX})
  fg, gt, iou = _assign(pred, [BOX], [1], [True])
  assert np.flatnonzero(fg).tolist() == [MIDDLE]  # Top-10 IoUs sum to 1: k = 1.
  assert gt[MIDDLE] == 0 and iou[MIDDLE] == 1.0
  assert (gt[~fg] == -1).all() and (iou[~fg] == 0).all()


def test_padded_rows_never_match():
  # Row 1 is padding over a box that anchor 0 predicts perfectly; row 2 is padding of zeros.
  pred = _predictions(FAR, **{f'a{MIDDLE}': BOX, 'a0': [0, 0, 8, 8]})
  gt_boxes = [BOX, [0, 0, 8, 8], [0, 0, 0, 0]]
  fg, gt, _ = _assign(pred, gt_boxes, [1, 0, 0], [True, False, False])
  assert np.flatnonzero(fg).tolist() == [MIDDLE] and set(gt[fg]) == {0}
  fg, gt, _ = _assign(pred, gt_boxes, [1, 0, 0], [False, False, False])
  assert not fg.any() and (gt == -1).all()


def test_dynamic_k_follows_the_sum_of_the_top_ten_ious():
  # All 16 inside anchors perfect: the top ten IoUs sum to 10, so k = 10 (the most it can be).
  pred = _predictions(FAR, **{f'a{i}': BOX for i in INSIDE})
  fg, _, _ = _assign(pred, [BOX], [0], [True])
  assert fg.sum() == 10 and set(np.flatnonzero(fg)) <= set(INSIDE)
  # Every prediction has IoU 0.25: the top ten sum to 2.5, floored to k = 2.
  fg, _, iou = _assign(_predictions([16, 16, 32, 32]), [BOX], [0], [True])
  assert fg.sum() == 2 and set(np.flatnonzero(fg)) <= set(INSIDE)
  np.testing.assert_allclose(iou[fg], 0.25)
  # No overlap anywhere: k is clamped to 1, and the anchor is still a candidate.
  fg, _, _ = _assign(_predictions(FAR), [BOX], [0], [True])
  assert fg.sum() == 1 and np.flatnonzero(fg)[0] in INSIDE


def test_two_boxes_competing_for_one_anchor_go_to_the_cheaper():
  # Both boxes contain the middle anchor, and its prediction is the best for either (k = 1 each).
  inner = [20.0, 20.0, 44.0, 44.0]
  near_outer = _predictions(FAR, **{f'a{MIDDLE}': [17, 17, 47, 47]})  # IoU 0.88 / 0.64.
  fg, gt, _ = _assign(near_outer, [BOX, inner], [0, 1], [True, True])
  assert fg[MIDDLE] and gt[MIDDLE] == 0
  near_inner = _predictions(FAR, **{f'a{MIDDLE}': [21, 21, 43, 43]})  # IoU 0.47 / 0.84.
  fg, gt, _ = _assign(near_inner, [BOX, inner], [0, 1], [True, True])
  assert fg[MIDDLE] and gt[MIDDLE] == 1
  # The class counts too: a confident class 1 outweighs the better IoU with box 0.
  logits = np.zeros((64, 2), np.float32)
  logits[MIDDLE] = [-5.0, 5.0]
  fg, gt, _ = _assign(near_outer, [BOX, inner], [0, 1], [True, True], cls_logits=logits)
  assert fg[MIDDLE] and gt[MIDDLE] == 1


def test_batch_matches_image_by_image():
  preds = np.stack([_predictions(FAR, **{f'a{MIDDLE}': BOX}), _predictions([16, 16, 32, 32])])
  gt_boxes = jnp.array([[BOX, [0, 0, 0, 0]], [BOX, [40, 0, 64, 24]]], jnp.float32)
  labels, mask = jnp.array([[1, 0], [0, 1]]), jnp.array([[True, False], [True, True]])
  cls_logits, obj_logits = jnp.zeros((2, 64, 2)), jnp.zeros((2, 64))
  batch = jax.jit(simota_assign_batch)(jnp.asarray(preds), cls_logits, obj_logits, CENTERS, STRIDES,
                                        gt_boxes, labels, mask)
  for b in range(2):
    single = _assign(preds[b], gt_boxes[b], labels[b], mask[b])
    for got, want in zip(batch, single):
      np.testing.assert_array_equal(got[b], want)
