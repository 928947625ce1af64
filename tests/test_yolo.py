"""The YOLOX-style detector: output shapes, the temporal modes, anchors and box decoding."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidjax.models.cost import count_params
from vidjax.models.yolo import (TemporalAttention, YoloDetector, anchor_points, decode_boxes,
                               default_config)

TINY = dict(widths=(8, 16, 16, 32), depth=0, temporal_heads=2)  # Compiles in seconds on CPU.


def _init(module, *args):
  """Real parameters, compiled cheaply: an rbg key and no LLVM optimisation (init runs once)."""
  key = jax.random.key(0, impl='unsafe_rbg')
  compiled = jax.jit(module.init).lower(key, *args).compile({'xla_backend_optimization_level': 0})
  return compiled(key, *args)


def _shapes(model, video_shape, dtype=jnp.uint8):
  video = jax.ShapeDtypeStruct(video_shape, dtype)
  params = jax.eval_shape(model.init, jax.random.key(0), video)
  out = jax.eval_shape(model.apply, params, video)
  return params, {k: v.shape for k, v in out.items()}


@pytest.mark.parametrize('temporal', ['none', 'mean', 'attention'])
@pytest.mark.parametrize('frames', [1, 3])
def test_output_shapes(temporal, frames):
  model = YoloDetector(num_classes=5, temporal=temporal, **dict(TINY, depth=1))
  _, shapes = _shapes(model, (2, frames, 64, 96, 3))
  anchors = 8 * 12 + 4 * 6 + 2 * 3  # 64x96 at strides 8, 16, 32.
  assert shapes == {'cls': (2, anchors, 5), 'obj': (2, anchors), 'reg': (2, anchors, 4)}


def test_parameter_count_at_128():
  model = YoloDetector(num_classes=80, **dict(default_config()))
  params, shapes = _shapes(model, (1, 1, 128, 128, 3))
  n = count_params(params)
  assert shapes['cls'] == (1, 16 * 16 + 8 * 8 + 4 * 4, 80)
  assert 2e5 < n < 2e6, f'YoloDetector (default config, 80 classes) has {n:,} parameters'


def test_temporal_attention_starts_as_the_identity():
  x = np.random.default_rng(0).normal(size=(2, 3, 4, 5, 8))  # [B, T, h, w, c]
  x = jnp.asarray(x, jnp.float32)
  block = TemporalAttention(heads=2)
  params = _init(block, x)
  np.testing.assert_array_equal(block.apply(params, x), x[:, -1])  # Bit for bit.


def test_attention_detector_at_init_is_the_single_frame_detector():
  rng = np.random.default_rng(1)
  frames = jnp.asarray(rng.integers(0, 256, (2, 3, 32, 32, 3)), jnp.uint8)  # [B, T, H, W, 3]
  attention = YoloDetector(num_classes=3, temporal='attention', **TINY)
  single = YoloDetector(num_classes=3, temporal='none', **TINY)
  params = _init(attention, frames)
  shared = {'params': {k: v for k, v in params['params'].items() if not k.startswith('temporal_')}}

  @jax.jit
  def run(params, shared):
    return {'clip': attention.apply(params, frames),
            'last': attention.apply(params, frames[:, -1:]),
            # Float frames are taken as normalised already; uint8 ones are scaled to [0, 1].
            'alone': single.apply(shared, frames.astype(jnp.float32) / 255)}

  out = run(params, shared)
  for key in ('cls', 'obj', 'reg'):
    # T = 1: attention over the frame itself adds exactly zero (and uint8 = float / 255).
    np.testing.assert_array_equal(out['last'][key], out['alone'][key])
    # T = 3: the same up to XLA's convolutions summing in another order for a batch of 6
    # frames than for a batch of 2 (about 1e-5 relative).
    np.testing.assert_allclose(out['clip'][key], out['alone'][key], rtol=1e-4, atol=1e-4)


def test_bad_settings_are_one_line_errors():
  video = jnp.zeros((1, 1, 48, 64, 3), jnp.uint8)
  with pytest.raises(ValueError, match='divisible by the largest stride 32'):
    YoloDetector(num_classes=2, **TINY).init(jax.random.key(0), video)
  with pytest.raises(ValueError, match='temporal must be one of'):
    YoloDetector(num_classes=2, temporal='lstm', **TINY).init(jax.random.key(0), video[:, :, :32])
  with pytest.raises(ValueError, match='last stages of the backbone'):
    YoloDetector(num_classes=2, strides=(4, 16), **TINY).init(jax.random.key(0), video[:, :, :32])


def test_anchor_points_by_hand():
  centers, strides = anchor_points(64, 64, (8, 16, 32))
  assert centers.shape == (84, 2) and strides.shape == (84,)
  np.testing.assert_array_equal(centers[[0, 1, 8, 63]], [[4, 4], [12, 4], [4, 12], [60, 60]])
  np.testing.assert_array_equal(centers[[64, 65, 79]], [[8, 8], [24, 8], [56, 56]])
  np.testing.assert_array_equal(centers[80:], [[16, 16], [48, 16], [16, 48], [48, 48]])
  np.testing.assert_array_equal(strides[[0, 63, 64, 79, 80, 83]], [8, 8, 16, 16, 32, 32])
  with pytest.raises(ValueError):
    anchor_points(60, 64, (8, 16, 32))


def test_input_scale_is_the_upsampled_detector_in_data_pixels():
  """input_scale=2 on 32x64 frames: the cells of 64x128 frames, anchors and strides halved."""
  model = YoloDetector(num_classes=3, input_scale=2, **TINY)
  _, shapes = _shapes(model, (2, 1, 32, 64, 3))
  anchors = 8 * 16 + 4 * 8 + 2 * 4  # 64x128 at strides 8, 16, 32.
  assert shapes['cls'] == (2, anchors, 3)
  centers, strides = anchor_points(32, 64, (8, 16, 32), input_scale=2)
  assert centers.shape == (anchors, 2)
  np.testing.assert_array_equal(centers[[0, 1, 16]], [[2, 2], [6, 2], [2, 6]])
  np.testing.assert_array_equal(strides[[0, 127, 128, 160]], [4, 4, 8, 16])
  # Same weights, same frames: the scaled detector is the plain one on the upsampled frames.
  video = jax.random.uniform(jax.random.key(1), (1, 1, 32, 64, 3))
  params = _init(model, video)
  big = jax.image.resize(video, (1, 1, 64, 128, 3), 'bilinear')
  plain = YoloDetector(num_classes=3, **TINY).apply(params, big)
  np.testing.assert_allclose(model.apply(params, video)['reg'], plain['reg'], atol=1e-5)
  with pytest.raises(ValueError, match='input_scale'):
    YoloDetector(num_classes=3, input_scale=0, **TINY).init(jax.random.key(0), video)


def test_decode_boxes_by_hand():
  centers = np.array([[4, 4], [24, 40]], np.float32)
  strides = np.array([8, 16], np.float32)
  reg = jnp.array([[[0, 0, 0, 0], [0.5, -1, np.log(2), 0]]], jnp.float32)  # [1, 2, 4]
  # Anchor 0: centre (4, 4), size 8x8. Anchor 1: centre (24 + 8, 40 - 16), size 32x16.
  np.testing.assert_allclose(decode_boxes(reg, centers, strides),
                             [[[0, 0, 8, 8], [16, 16, 48, 32]]], atol=1e-5)


def _torchvision_resnet18(rng):
  """torchvision's resnet18 names and shapes, with random values (convs fan-in scaled, so
  18 layers stay finite)."""
  import json
  import pathlib
  path = pathlib.Path(__file__).parent / 'fixtures' / 'pretrained' / 'torchvision_resnet_shapes.json'
  shapes = json.loads(path.read_text())['resnet18']
  return {k: (rng.normal(0, (2 / np.prod(s[1:])) ** 0.5, s) if len(s) == 4
              else rng.uniform(0.5, 1.5, s)).astype(np.float32) for k, s in shapes.items()}


def test_resnet_backbone_takes_torchvision_weights():
  """Every ResNet leaf from the file (the ImageNet fc ignored), exactly as a lone ResNet-18
  gets them; the adapters, neck and heads new; and the detector runs on them."""
  from vidjax.models.resnet import ResNet
  from vidjax.pretrained.mapping import counts
  from vidjax.pretrained.resnet import convert_resnet
  video = jnp.zeros((1, 1, 32, 32, 3), jnp.float32)
  model = YoloDetector(num_classes=3, backbone='resnet18', **TINY)
  target = jax.eval_shape(model.init, jax.random.key(0), video)
  assert sorted(target['params']) == ['adapter_0', 'adapter_1', 'adapter_2', 'backbone',
                                      'head_0', 'head_1', 'head_2', 'neck']
  arrays = _torchvision_resnet18(np.random.default_rng(0))
  params, entries = convert_resnet(arrays, target)
  alone, _ = convert_resnet(arrays, jax.eval_shape(ResNet(18).init, jax.random.key(0), video[0]))
  jax.tree.map(np.testing.assert_array_equal, params['params']['backbone'], alone['params'])
  assert counts(entries)['ignored'] == 2  # fc.weight, fc.bias.
  new = {e.target.split('/')[1] for e in entries if e.action == 'new'}
  assert new == {'adapter_0', 'adapter_1', 'adapter_2', 'neck', 'head_0', 'head_1', 'head_2'}
  # The adapters bring ResNet-18's 128/256/512 channels down to the neck's 16/16/32.
  assert target['params']['adapter_2']['conv']['kernel'].shape == (1, 1, 512, 32)
  params = jax.tree.map(lambda v: jnp.full(v.shape, 0.01, v.dtype)  # The 'new' leaves.
                        if isinstance(v, jax.ShapeDtypeStruct) else v, params)
  out = jax.jit(model.apply)(params, jnp.ones_like(video))
  assert out['cls'].shape == (1, 16 + 4 + 1, 3) and np.isfinite(out['reg']).all()


def test_linear_probe_freezes_the_resnet_only():
  from vidjax.pretrained.fine_tune import trainable_labels
  model = YoloDetector(num_classes=3, backbone='resnet18', **TINY)
  target = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 1, 32, 32, 3)))
  labels = trainable_labels(target['params'], 'backbone')
  assert set(jax.tree.leaves(labels['backbone'])) == {'frozen'}
  assert set(jax.tree.leaves({k: v for k, v in labels.items() if k != 'backbone'})) == {'train'}


def test_bad_backbones_are_one_line_errors():
  video = jnp.zeros((1, 1, 32, 32, 3), jnp.uint8)
  with pytest.raises(ValueError, match="backbone must be one of csp, resnet18, resnet34, resnet50, "
                                       "got 'vgg16'"):
    YoloDetector(num_classes=2, backbone='vgg16', **TINY).init(jax.random.key(0), video)
  with pytest.raises(ValueError, match='a ResNet backbone has 4 stages'):
    YoloDetector(num_classes=2, backbone='resnet18', widths=(16, 16, 32)).init(
        jax.random.key(0), video)


def test_resnet_detection_config_starts_from_imagenet():
  from vidjax import config as config_lib
  config = config_lib.load('configs/detection.py:resnet18', [])
  assert config.model.yolo.backbone == 'resnet18'
  assert config.init.checkpoint == 'pretrained/resnet18-f37072fd.pth'
  assert tuple(config.data.mean) == (0.485, 0.456, 0.406)
  assert config.model.yolo.input_scale == 1  # The ResNet reads the frames at their own size.
  assert config_lib.load('configs/detection.py', []).model.yolo.backbone == 'csp'
