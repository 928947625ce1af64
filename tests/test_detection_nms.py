"""On-device NMS by hand, against a plain Python greedy NMS, and end to end on outputs."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from vidjax.models.yolo import anchor_points, decode_boxes
from vidjax.tasks.detection_nms import nms_image, postprocess

# IoU(A, B) = 80 / 120 = 0.667 > 0.65; C is far from both.
A, B, C = [0, 0, 10, 10], [0, 2, 10, 12], [20, 20, 30, 30]


def _nms(boxes, scores, labels, **kwargs):
  out = jax.jit(functools.partial(nms_image, **kwargs))(
      jnp.asarray(boxes, jnp.float32), jnp.asarray(scores, jnp.float32), jnp.asarray(labels))
  return [np.asarray(x) for x in out]


def test_same_class_keeps_the_higher_different_classes_keep_both():
  boxes, scores, labels, valid = _nms([A, B, C], [0.8, 0.9, 0.5], [0, 0, 0], max_detections=4)
  np.testing.assert_array_equal(valid, [True, True, False, False])
  np.testing.assert_array_equal(boxes[:2], [B, C])
  np.testing.assert_allclose(scores, [0.9, 0.5, 0, 0])
  np.testing.assert_array_equal(labels, [0, 0, -1, -1])
  np.testing.assert_array_equal(boxes[2:], 0)
  boxes, scores, labels, valid = _nms([A, B, C], [0.8, 0.9, 0.5], [0, 1, 0], max_detections=4)
  np.testing.assert_array_equal(valid, [True, True, True, False])
  np.testing.assert_array_equal(boxes[:3], [B, A, C])
  np.testing.assert_array_equal(labels[:3], [1, 0, 0])


def test_threshold_cap_and_fixed_shapes():
  # Below the 0.65 threshold (IoU(A, B) = 0.667): both kept. Score threshold drops C.
  boxes, scores, labels, valid = _nms([A, B, C], [0.8, 0.9, 0.005], [0, 0, 0],
                                      iou_threshold=0.7, max_detections=5)
  assert boxes.shape == (5, 4) and scores.shape == labels.shape == valid.shape == (5,)
  np.testing.assert_array_equal(valid, [True, True, False, False, False])
  # More kept boxes than slots: the best ones fill them.
  _, scores, _, valid = _nms([A, B, C], [0.8, 0.9, 0.5], [0, 1, 2], max_detections=2)
  np.testing.assert_allclose(scores, [0.9, 0.8])
  assert valid.all()


def _reference(boxes, scores, labels, iou_threshold, score_threshold):
  """Greedy NMS as torchvision's batched_nms: by score, drop same-label IoU > threshold."""
  def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union
  kept = []
  for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
    if scores[i] < score_threshold:
      break
    if all(labels[j] != labels[i] or iou(boxes[i], boxes[j]) <= iou_threshold for j in kept):
      kept.append(i)
  return kept


def test_equals_python_greedy_nms_on_random_boxes():
  rng = np.random.default_rng(0)
  for trial in range(3):
    n = 300
    corner = rng.uniform(0, 100, (n, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(5, 40, (n, 2))], 1).astype(np.float32)
    scores = rng.permutation(n).astype(np.float32) / n  # Distinct: no ties to break.
    labels = rng.integers(0, 3, n)
    want = _reference(boxes.tolist(), scores.tolist(), labels.tolist(), 0.5, 0.1)
    got_boxes, got_scores, got_labels, valid = _nms(boxes, scores, labels, iou_threshold=0.5,
                                                    score_threshold=0.1, max_detections=n)
    assert valid.sum() == len(want) and valid[:len(want)].all()
    np.testing.assert_array_equal(got_boxes[:len(want)], boxes[want])
    np.testing.assert_array_equal(got_labels[:len(want)], labels[want])
    # Pre-selection: only the 50 best enter NMS.
    top = np.argsort(-scores)[:50]
    want = top[_reference(boxes[top].tolist(), scores[top].tolist(), labels[top].tolist(), 0.5, 0)]
    got_boxes, *_ = _nms(boxes, scores, labels, iou_threshold=0.5, score_threshold=0.0,
                         pre_nms_top_k=50, max_detections=100)
    np.testing.assert_array_equal(got_boxes[:len(want)], boxes[want])


def test_postprocess_scores_labels_and_batch():
  centers, strides = anchor_points(32, 32, (8, 16, 32))  # 16 + 4 + 1 = 21 anchors.
  reg = jnp.zeros((2, 21, 4))
  cls = jnp.full((2, 21, 3), -10.0).at[0, 5, 2].set(2.0).at[1, 20, 1].set(1.0)
  obj = jnp.full((2, 21), -10.0).at[0, 5].set(3.0).at[1, 20].set(0.0)
  boxes, scores, labels, valid = jax.jit(postprocess)({'cls': cls, 'obj': obj, 'reg': reg},
                                                      centers, strides)
  assert boxes.shape == (2, 100, 4) and valid.shape == (2, 100)
  np.testing.assert_array_equal(valid.sum(1), [1, 1])
  sigmoid = jax.nn.sigmoid
  np.testing.assert_allclose(scores[:, 0], [sigmoid(3.0) * sigmoid(2.0), 0.5 * sigmoid(1.0)],
                             rtol=1e-6)
  np.testing.assert_array_equal(labels[:, 0], [2, 1])
  np.testing.assert_allclose(boxes[0, 0], decode_boxes(reg, centers, strides)[0, 5])
  np.testing.assert_allclose(boxes[1, 0], [0, 0, 32, 32])  # The stride-32 cell, 1 stride wide.


def test_multi_label_offers_each_class_of_a_box_in_doubt():
  """One box, classes 0.9 / 0.6 / 0.001 (obj 1): single-label gives class 0 only;
  multi-label gives class 0 then class 1 at its own score on the same box, not class 2."""
  centers, strides = anchor_points(32, 32, (8, 16, 32))
  reg = jnp.zeros((1, 21, 4))
  logit = lambda p: float(np.log(p / (1 - p)))
  cls = jnp.full((1, 21, 3), -10.0).at[0, 7].set(jnp.array([logit(0.9), logit(0.6), -7.0]))
  obj = jnp.full((1, 21), -10.0).at[0, 7].set(20.0)
  outputs = {'cls': cls, 'obj': obj, 'reg': reg}
  single = jax.jit(postprocess)(outputs, centers, strides)
  multi = jax.jit(functools.partial(postprocess, multi_label=True))(outputs, centers, strides)
  assert int(single[3].sum()) == 1 and int(single[2][0, 0]) == 0
  boxes, scores, labels, valid = (np.asarray(x) for x in multi)
  np.testing.assert_array_equal(valid.sum(1), [2])
  np.testing.assert_array_equal(labels[0, :2], [0, 1])
  np.testing.assert_allclose(scores[0, :2], [0.9, 0.6], rtol=1e-5)
  np.testing.assert_allclose(boxes[0, 1], boxes[0, 0])
  np.testing.assert_allclose(boxes[0, 0], decode_boxes(reg, centers, strides)[0, 7])
