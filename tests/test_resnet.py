"""The Flax ResNet and its torchvision/timm converter, against outputs real torch computed.

The fixtures (tiny-width timm ResNets, random weights and BN statistics, eval
mode) come from tests/fixtures/pretrained/make_resnet_fixtures.py.
"""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from vidjax.errors import UserError
from vidjax.models.lrcn import LRCN, default_config as lrcn_config
from vidjax.models.resnet import ResNet
from vidjax.models.single_frame import SingleFrame
from vidjax.pretrained.checkpoint_files import load_arrays
from vidjax.pretrained.mapping import MappingError, counts
from vidjax.pretrained.resnet import convert_resnet

FIXTURES = pathlib.Path(__file__).parent / 'fixtures' / 'pretrained'
TINY = {  # fixture -> the ResNet it holds; timm's 7x7 stem is 64 wide whatever the widths.
    'resnet18_tiny': dict(depth=18, widths=(4, 8, 16, 32)),
    'resnet50_tiny': dict(depth=50, widths=(2, 4, 8, 16)),
}
TOLERANCE = 1e-5


def _reference(name):
  with np.load(FIXTURES / f'{name}_reference.npz') as data:
    return {k: data[k] for k in data.files}


def _leaves(tree):
  return traverse_util.flatten_dict(tree, sep='/')


@pytest.mark.parametrize('name', list(TINY))
def test_converted_model_matches_torch(name):
  """Logits, pooled features and the last map equal torch's (eval mode) to 1e-5."""
  ref = _reference(name)
  images = ref['input_nchw'].transpose(0, 2, 3, 1)  # NCHW -> NHWC
  model = ResNet(num_classes=5, **TINY[name])
  target = jax.eval_shape(model.init, jax.random.key(0), images)
  params, entries = convert_resnet(load_arrays(FIXTURES / f'{name}.pth'), target)
  assert counts(entries)['matched'] == len(_leaves(target)) == len(entries)
  with jax.default_matmul_precision('highest'):
    logits, feature_map = jax.jit(lambda p, x: model.apply(p, x, return_map=True))(params, images)
    features = jax.jit(ResNet(**TINY[name]).apply)(
        {'params': {k: v for k, v in params['params'].items() if k != 'fc'}}, images)
  diffs = {'logits': np.abs(logits - ref['logits']).max(),
           'features': np.abs(features - ref['features']).max(),
           'map': np.abs(feature_map - ref['feature_map_nchw'].transpose(0, 2, 3, 1)).max()}
  print(name, 'max abs differences:', diffs)
  assert max(diffs.values()) < TOLERANCE, diffs


@pytest.mark.parametrize('arch', ['resnet18', 'resnet50'])
def test_torchvision_names_and_shapes_all_map(arch):
  """Every parameter of torchvision's full-size resnet18/50 finds its target, and back."""
  with open(FIXTURES / 'torchvision_resnet_shapes.json') as f:
    shapes = json.load(f)[arch]
  arrays = {k: np.broadcast_to(np.float32(1), s) for k, s in shapes.items()}
  model = ResNet(depth=int(arch[6:]), num_classes=1000)
  target = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  params, entries = convert_resnet(arrays, target, source='torchvision')
  assert counts(entries) == {'matched': len(_leaves(target)), 'resampled': 0, 'inflated': 0,
                             'new': 0, 'ignored': 0}
  assert jax.tree.map(np.shape, params) == jax.tree.map(lambda s: s.shape, target)


def test_imagenet_head_is_ignored_or_new_and_prefixes_are_stripped():
  arrays = {f'model.{k}': v for k, v in load_arrays(FIXTURES / 'resnet18_tiny.pth').items()}
  images = jnp.zeros((1, 32, 32, 3))
  no_head = jax.eval_shape(ResNet(**TINY['resnet18_tiny']).init, jax.random.key(0), images)
  _, entries = convert_resnet(arrays, no_head, source='timm')
  ignored = {e.source for e in entries if e.action == 'ignored'}
  assert ignored == {'model.fc.weight', 'model.fc.bias'}
  other_head = jax.eval_shape(ResNet(num_classes=7, **TINY['resnet18_tiny']).init,
                              jax.random.key(0), images)
  params, entries = convert_resnet(arrays, other_head, source='timm')
  assert {e.target for e in entries if e.action == 'new'} == {'params/fc/kernel', 'params/fc/bias'}
  assert params['params']['fc']['kernel'] is other_head['params']['fc']['kernel']  # Kept as given.


def test_shape_mismatch_names_the_parameter_and_both_shapes():
  arrays = load_arrays(FIXTURES / 'resnet18_tiny.pth')
  wider = ResNet(depth=18, widths=(4, 8, 16, 64))
  target = jax.eval_shape(wider.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  with pytest.raises(MappingError) as e:
    convert_resnet(arrays, target)
  message = str(e.value)  # The first leaf of layer4_0 in the tree's order.
  assert "'params/layer4_0/bn1/bias' has shape (64,) but 'layer4.0.bn1.bias' gives (32,)" in message
  assert '\n' not in message
  deeper = ResNet(depth=34, widths=(4, 8, 16, 32))
  with pytest.raises(MappingError, match=r"'params/layer1_2/\w+/\w+' needs 'layer1\.2\."):
    convert_resnet(arrays, jax.eval_shape(deeper.init, jax.random.key(0), jnp.zeros((1, 8, 8, 3))))


def test_unknown_source_is_a_user_error():
  with pytest.raises(UserError, match="unknown ResNet source 'keras'"):
    convert_resnet({}, {}, source='keras')


@pytest.mark.parametrize('cls', [LRCN, SingleFrame])
def test_resnet18_backbone_takes_torchvision_weights_and_runs_on_a_clip(cls):
  extra = {'lstm_hidden_size': 8} if cls is LRCN else {}
  model = cls(num_classes=3, backbone='resnet18', **extra)
  video = jax.random.normal(jax.random.key(0), (1, 2, 32, 32, 3))  # [B, T, H, W, C]
  target = jax.eval_shape(model.init, jax.random.key(1), video)
  assert set(target) == {'params'} and 'cnn' not in target['params']  # No batch_stats.
  with open(FIXTURES / 'torchvision_resnet_shapes.json') as f:
    shapes = json.load(f)['resnet18']
  arrays = {k: np.broadcast_to(np.float32(len(s) < 4), s) for k, s in shapes.items()}  # Convs 0.
  params, entries = convert_resnet(arrays, target)
  assert counts(entries)['ignored'] == 2  # The ImageNet fc.
  assert {e.target.split('/')[1] for e in entries if e.action == 'matched'} == {'backbone'}
  new = {e.target for e in entries if e.action == 'new'}
  assert new and not any(t.startswith('params/backbone/') for t in new)
  params = jax.tree.map(lambda v: jnp.zeros(v.shape, v.dtype) if isinstance(v, jax.ShapeDtypeStruct)
                        else v, params)  # The 'new' LSTM and head, left as shapes.
  logits = jax.jit(model.apply)(params, video)
  assert logits.shape == (1, 3) and np.all(np.isfinite(logits))


def test_default_backbone_keeps_the_frame_cnn_parameter_tree():
  video = jnp.zeros((1, 2, 64, 64, 3))
  config = dict(lrcn_config())
  assert config['backbone'] == 'frame_cnn'
  default = jax.eval_shape(LRCN(num_classes=3, **config).init, jax.random.key(0), video)
  without = {k: v for k, v in config.items() if k != 'backbone'}
  old = jax.eval_shape(LRCN(num_classes=3, **without).init, jax.random.key(0), video)
  assert jax.tree.map(lambda s: s.shape, default) == jax.tree.map(lambda s: s.shape, old)
  assert sorted(default['params']) == ['cnn', 'head', 'lstm_0']
  assert sorted(default['params']['cnn']) == ['conv_0', 'conv_1', 'conv_2', 'conv_3', 'embed',
                                              'norm_0', 'norm_1', 'norm_2', 'norm_3']
  single = jax.eval_shape(SingleFrame(num_classes=3).init, jax.random.key(0), video)
  assert sorted(single['params']) == ['cnn', 'head']


def test_unknown_backbone_is_a_user_error():
  with pytest.raises(UserError, match="unknown backbone 'resnet101'; use one of frame_cnn"):
    LRCN(num_classes=3, backbone='resnet101').init(jax.random.key(0), jnp.zeros((1, 1, 8, 8, 3)))
