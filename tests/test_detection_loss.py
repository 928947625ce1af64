"""The YOLOX loss: finite without boxes, and it teaches a tiny detector two squares."""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from vidjax.models.yolo import YoloDetector, anchor_points
from vidjax.tasks.detection_assign import box_iou
from vidjax.tasks.detection_loss import paired_iou, yolox_loss
from vidjax.tasks.detection_nms import postprocess


def test_paired_iou_and_giou_by_hand():
  a = jnp.array([[0.0, 0, 10, 10], [0, 0, 10, 10]])
  b = jnp.array([[5.0, 0, 15, 10], [20, 0, 30, 10]])
  np.testing.assert_allclose(paired_iou(a, b), [50 / 150, 0.0], atol=1e-6)
  # GIoU = IoU - (hull - union) / hull: hull 150 (no gap) and 300 (gap of 100).
  np.testing.assert_allclose(paired_iou(a, b, generalized=True), [50 / 150, -100 / 300], atol=1e-6)


def test_finite_without_ground_truth_boxes():
  centers, strides = anchor_points(64, 64, (8, 16, 32))
  rng = np.random.default_rng(0)
  outputs = {'cls': rng.normal(size=(2, 84, 3)), 'obj': rng.normal(size=(2, 84)),
             'reg': rng.normal(size=(2, 84, 4))}
  outputs = {k: jnp.asarray(v, jnp.float32) for k, v in outputs.items()}
  no_boxes = (jnp.zeros((2, 4, 4)), jnp.zeros((2, 4), jnp.int32), jnp.zeros((2, 4), bool))
  loss_fn = lambda o: yolox_loss(o, centers, strides, *no_boxes)
  (loss, parts), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(outputs)
  assert np.isfinite(loss) and parts['num_fg'] == 0 and parts['box'] == 0 and parts['cls'] == 0
  # Only objectness is left, towards 0 everywhere, summed over anchors (divided by max(0, 1)).
  expected = optax.sigmoid_binary_cross_entropy(outputs['obj'], 0.0).sum()
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  # No rows at all (G = 0) is the same as rows that are all padding.
  no_rows = (jnp.zeros((2, 0, 4)), jnp.zeros((2, 0), jnp.int32), jnp.zeros((2, 0), bool))
  np.testing.assert_allclose(jax.jit(yolox_loss)(outputs, centers, strides, *no_rows)[0], loss,
                             rtol=1e-6)


def test_one_hundred_adam_steps_learn_two_squares():
  image = np.full((64, 64, 3), 40, np.uint8)
  image[8:24, 8:24] = (230, 40, 40)  # Class 0, red.
  image[30:54, 36:56] = (40, 60, 230)  # Class 1, blue.
  squares = np.array([[8, 8, 24, 24], [36, 30, 56, 54]], np.float32)
  video = jnp.asarray(image)[None, None]  # [1, 1, 64, 64, 3]
  gt_boxes = jnp.asarray(np.concatenate([squares, np.zeros((1, 4), np.float32)]))[None]
  gt_labels, gt_mask = jnp.array([[0, 1, 0]]), jnp.array([[True, True, False]])
  # A small model with all the parts, but two levels (strides 8 and 16) and CSP blocks without
  # bottlenecks: on CPU, compiling the training step is nearly all of the test, and it grows
  # with the number of layers. Three levels are covered by the other tests.
  model = YoloDetector(num_classes=2, widths=(8, 16, 16), depth=0, strides=(8, 16))
  centers, strides = anchor_points(64, 64, model.strides)
  # Initialisation runs once: compiled without LLVM's optimisations (and with a key that is
  # cheaper to compile than threefry), it costs seconds less.
  key = jax.random.key(0, impl='unsafe_rbg')
  params = jax.jit(model.init).lower(key, video).compile(
      {'xla_backend_optimization_level': 0})(key, video)
  optimizer = optax.adam(1e-2)

  def loss_fn(p):
    outputs = model.apply(p, video)
    return yolox_loss(outputs, centers, strides, gt_boxes, gt_labels, gt_mask)[0], outputs

  @jax.jit
  def fit(params):
    def step(carry, _):
      p, opt_state = carry
      (loss, outputs), grads = jax.value_and_grad(loss_fn, has_aux=True)(p)
      updates, opt_state = optimizer.update(grads, opt_state, p)
      return (optax.apply_updates(p, updates), opt_state), (loss, outputs)
    # 101 steps; the last one's forward pass (after 100 updates) gives the detections, so
    # no second forward pass needs compiling.
    _, (losses, outputs) = jax.lax.scan(step, (params, optimizer.init(params)), None, length=101)
    last = jax.tree.map(lambda x: x[-1], outputs)
    return losses, postprocess(last, centers, strides, max_detections=2)

  losses, (boxes, scores, labels, valid) = fit(params)
  assert losses[-5:].mean() * 2 <= losses[0], f'loss {losses[0]:.3f} -> {losses[-5:].mean():.3f}'
  assert valid.all(), scores
  iou = np.asarray(box_iou(jnp.asarray(squares), boxes[0]))  # [2 squares, 2 detections]
  best = iou.argmax(axis=1)
  assert (iou.max(axis=1) > 0.5).all(), (iou, boxes)
  np.testing.assert_array_equal(labels[0][best], [0, 1])
