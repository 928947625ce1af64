"""Published ViT / TimeSformer weights in SpaceTimeTransformer give the source model's logits.

The fixtures (tests/fixtures/pretrained/, written by make_vit_fixtures.py with
PyTorch, which vidjax never imports) are tiny random models: img 32, patch 8
(4x4 grid), dim 32, depth 2, 4 heads, 10 classes, with their reference outputs.
"""
import jax
import ml_collections
import numpy as np
import pytest

from vidjax.errors import UserError
from vidjax.models import space_time_attention
from vidjax.models.space_time_attention import SpaceTimeTransformer
from vidjax.pretrained import vit, vit_big_vision, vit_formats, vit_timm
from vidjax.pretrained.mapping import MappingError, counts

FIXTURES = 'tests/fixtures/pretrained'
SIZES = dict(patch_size=8, hidden_size=32, num_layers=2, num_heads=4, mlp_dim=128,
             num_temporal_layers=1)


def _load(name):
  data = dict(np.load(f'{FIXTURES}/{name}.npz'))
  return ({k: v for k, v in data.items() if not k.startswith('ref/')},
          {k[4:]: v for k, v in data.items() if k.startswith('ref/')})


TIMM, REF = _load('timm_vit')


def _model(attention, **overrides):
  return SpaceTimeTransformer(**{**dict(num_classes=10, attention=attention,
                                        approximate_gelu=False, **SIZES), **overrides})


def _target(model, video):
  """Random params with the model's tree, drawn in numpy: cheaper on CPU than `model.init`."""
  shapes = jax.eval_shape(lambda key: model.init(key, video[:1]), jax.random.key(0))['params']
  rng = np.random.default_rng(0)
  return jax.tree_util.tree_map(lambda s: rng.normal(size=s.shape).astype(s.dtype), shapes)


def _convert(model, video, convert=vit_timm.from_timm, arrays=TIMM, **kwargs):
  target = _target(model, video)
  params, entries = convert(arrays, model, target, **kwargs)
  leaves = jax.tree_util.tree_leaves(target)
  assert len([e for e in entries if e.action != 'ignored']) == len(leaves)
  assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(target)
  return params, entries


def _logits(model, params, video, **kwargs):
  with jax.default_matmul_precision('highest'):
    return np.asarray(model.apply({'params': params}, video, **kwargs))


def _clip(images, frames):  # [B, H, W, C] -> [B, T, H, W, C], identical frames
  return np.repeat(images[:, None], frames, axis=1)


@pytest.mark.parametrize('attention,frames,overrides', [
    ('space_only', 1, {}),
    ('space_only', 3, {}),  # frames averaged: identical frames give the image's logits
    ('joint', 1, {}),
    ('joint', 1, dict(position_embedding='space_time')),  # the image grid on every frame
    ('divided', 3, dict(temporal_fc=True)),  # zero temporal_fc: TimeSformer starts as the ViT
    ('divided', 3, {}),  # no temporal_fc: the copied temporal attention's output starts at zero
    ('factorized_self_attention', 3, {}),
    ('space_only', 2, dict(tubelet_size=2)),  # central-frame inflation
])
def test_timm_vit_logits(attention, frames, overrides):
  model = _model(attention, **overrides)
  video = _clip(REF['images'], frames)
  params, entries = _convert(model, video)
  np.testing.assert_allclose(_logits(model, params, video), REF['logits'], atol=1e-5, rtol=0)
  assert counts(entries)['ignored'] == 0 and counts(entries)['resampled'] == 0


def test_average_tubelet_inflation_on_identical_frames():
  model = _model('space_only', tubelet_size=2)
  video = _clip(REF['images'], 2)
  params, entries = _convert(model, video, tubelet_init='average')
  kernel = params['patch_embedding']['kernel']  # [2, 8, 8, 3, 32]
  np.testing.assert_allclose(kernel[0], kernel[1])
  assert [e.note for e in entries if e.action == 'inflated'] == ['average of 2 frames']
  np.testing.assert_allclose(_logits(model, params, video), REF['logits'], atol=1e-5, rtol=0)


def test_factorized_encoder_spatial_encoder_is_the_image_model():
  """ViViT model 2: each frame's CLS out of the spatial encoder is the ViT's pre-logits."""
  model = _model('factorized_encoder')
  video = _clip(REF['images'], 2)
  params, entries = _convert(model, video)
  _, state = model.apply({'params': params}, video, capture_intermediates=True,
                         mutable=['intermediates'])
  frames = np.asarray(state['intermediates']['spatial_encoder']['__call__'][0])  # [B, T, 1+N, D]
  for t in range(2):
    np.testing.assert_allclose(frames[:, t, 0], REF['pre_logits'], atol=1e-5, rtol=0)
  new = {e.target.split('/')[0] for e in entries if e.action == 'new'}
  assert new == {'temporal_encoder', 'temporal_cls', 'time_embedding'}


@pytest.mark.parametrize('size', [(6, 6), (3, 2)])
def test_resample_grid_matches_timm(size):
  pos = TIMM['pos_embed'][0, 1:].reshape(4, 4, -1)
  want = REF[f'pos_embed_{size[0]}x{size[1]}'][0, 1:].reshape(*size, -1)
  np.testing.assert_allclose(vit.resample_grid(pos, size), want, atol=1e-6, rtol=0)


def test_non_square_target_grid():
  model = _model('space_only')
  video = np.zeros((1, 1, 24, 16, 3), np.float32)  # a 3x2 patch grid
  params, _ = _convert(model, video, grid=(3, 2))
  want = REF['pos_embed_3x2'][0, 1:].reshape(1, 1, 6, -1)
  np.testing.assert_allclose(params['space_embedding'], want, atol=1e-6, rtol=0)


def test_resampled_position_embedding_gives_timm_logits_at_48px():
  model = _model('space_only')
  video = REF['images_48'][:, None]
  params, entries = _convert(model, video)
  assert [e.note for e in entries if e.action == 'resampled'] == ['4x4 -> 6x6 bilinear']
  np.testing.assert_allclose(_logits(model, params, video), REF['logits_48'], atol=1e-5, rtol=0)


def test_new_head_when_class_count_differs():
  model = _model('space_only', num_classes=7)
  video = _clip(REF['images'], 1)
  target = _target(model, video)
  params, entries = vit_timm.from_timm(TIMM, model, target)
  by_action = {}
  for e in entries:
    by_action.setdefault(e.action, []).append(e.target or e.source)
  assert by_action['new'] == ['head/kernel', 'head/bias']
  assert sorted(by_action['ignored']) == ['head.bias', 'head.weight']
  np.testing.assert_array_equal(params['head']['kernel'], target['head']['kernel'])


@pytest.mark.parametrize('overrides,message', [
    (dict(approximate_gelu=True), 'approximate_gelu=False'),
    (dict(hidden_size=48, mlp_dim=192), 'hidden_size=32'),
    (dict(num_layers=3), 'num_layers=2'),
])
def test_incompatible_config_is_a_one_line_user_error(overrides, message):
  model = _model('space_only', **overrides)
  target = _target(model, _clip(REF['images'], 1))
  with pytest.raises(MappingError, match=message) as error:
    vit_timm.from_timm(TIMM, model, target)
  assert isinstance(error.value, UserError) and '\n' not in str(error.value)


def test_unsupported_keys_and_grids_are_named():
  model = _model('space_only')
  target = _target(model, _clip(REF['images'], 1))
  with pytest.raises(MappingError, match='blocks.0.ls1.gamma'):
    vit_timm.from_timm({**TIMM, 'blocks.0.ls1.gamma': np.ones(32)}, model, target)
  with pytest.raises(MappingError, match='grid'):
    vit_timm.from_timm(TIMM, model, target, grid=(2, 4))


@pytest.mark.parametrize('temporal_fc', [True, False])  # False: temporal_fc folded into `out`
def test_official_timesformer_logits(temporal_fc):
  arrays, ref = _load('timesformer')
  arrays = {f'model_state/{k}': v for k, v in arrays.items()}  # as load_arrays may prefix them
  model = _model('divided', temporal_fc=temporal_fc)
  params, entries = _convert(model, ref['clip'], vit_timm.from_timesformer, arrays)
  assert counts(entries)['new'] == counts(entries)['ignored'] == 0
  np.testing.assert_allclose(_logits(model, params, ref['clip']), ref['logits'], atol=1e-5, rtol=0)


def test_timesformer_time_embedding_resampled_to_more_frames():
  arrays, ref = _load('timesformer')
  model = _model('divided', temporal_fc=True)
  params, entries = _convert(model, _clip(ref['clip'][:, 0], 8), vit_timm.from_timesformer, arrays)
  assert [e.note for e in entries if e.action == 'resampled'] == ['4 -> 8 frames linear']
  embedding = params['time_embedding'][0, :, 0]  # [8, D]
  source = arrays['model.time_embed'][0]  # [4, D]
  np.testing.assert_allclose(embedding[[0, -1]], source[[0, -1]], atol=1e-6)  # edges clamp
  np.testing.assert_allclose(embedding[1], 0.75 * source[0] + 0.25 * source[1], atol=1e-6)


def test_space_time_embedding_is_space_plus_time():
  """A TimeSformer into one embedding per token: its grid on every frame plus that frame's time."""
  arrays, ref = _load('timesformer')
  separable = _model('joint')
  params, _ = _convert(separable, ref['clip'], vit_timm.from_timesformer, arrays)
  per_token = _model('joint', position_embedding='space_time')
  joint, entries = _convert(per_token, ref['clip'], vit_timm.from_timesformer, arrays)
  entry = next(e for e in entries if e.target == 'space_time_embedding')
  assert entry.action == 'inflated' and 'time embedding' in entry.note
  np.testing.assert_allclose(joint['space_time_embedding'],
                             params['space_embedding'] + params['time_embedding'], atol=1e-6)
  np.testing.assert_allclose(_logits(per_token, joint, ref['clip']),
                             _logits(separable, params, ref['clip']), atol=1e-5)


@pytest.mark.parametrize('pool', ['tok', 'gap'])
@pytest.mark.parametrize('attention', ['space_only', 'divided'])
def test_big_vision_logits(pool, attention):
  """big_vision's own flax ViT: 'tok' (CLS, no CLS position) and 'gap' (mean pooling)."""
  arrays, ref = _load(f'big_vision_{pool}')
  model = _model(attention, hidden_size=32, mlp_dim=64, approximate_gelu=True,
                 pooling='cls' if pool == 'tok' else 'mean')
  video = _clip(ref['images'], 1 if attention == 'space_only' else 2)
  params, entries = _convert(model, video, vit_big_vision.from_big_vision, arrays)
  np.testing.assert_allclose(_logits(model, params, video), ref['logits'], atol=1e-5, rtol=0)


def test_big_vision_scanned_and_old_layouts():
  """A scanned checkpoint (stacked blocks) and the ViT paper's names with CLS-first positions."""
  arrays, ref = _load('big_vision_tok')
  block = 'Transformer/encoderblock_'
  scanned = {k: v for k, v in arrays.items() if not k.startswith(block)}
  for name in {k.split('/', 2)[2] for k in arrays if k.startswith(block)}:
    scanned[f'Transformer/encoderblock/{name}'] = np.stack(
        [arrays[f'{block}{i}/{name}'] for i in range(2)])
  old = {k.replace('MultiHeadDotProductAttention_0', 'MultiHeadDotProductAttention_1')
         .replace('LayerNorm_1', 'LayerNorm_2').replace('MlpBlock_0', 'MlpBlock_3'): v
         for k, v in arrays.items() if k not in ('pos_embedding', 'cls')}
  cls_pos = np.random.default_rng(0).normal(size=(1, 1, 32)).astype(np.float32)
  old['Transformer/posembed_input/pos_embedding'] = np.concatenate(
      [cls_pos, arrays['pos_embedding']], axis=1)
  old['cls'] = arrays['cls'] - cls_pos
  model = _model('space_only', hidden_size=32, mlp_dim=64, approximate_gelu=True)
  video = _clip(ref['images'], 1)
  for layout in (scanned, old):
    params, _ = _convert(model, video, vit_big_vision.from_big_vision, layout)
    np.testing.assert_allclose(_logits(model, params, video), ref['logits'], atol=1e-5, rtol=0)


@pytest.mark.parametrize('name', ['timm_vit', 'timesformer', 'big_vision_tok'])
def test_convert_space_time_from_config(name):
  """The converters.py-style entry: format detected, model built from the config, 'params' kept."""
  arrays, ref = _load(name)
  options = dict(SIZES, attention='divided', temporal_fc=True,
                 approximate_gelu=name == 'big_vision_tok')
  if name == 'big_vision_tok':
    options.update(hidden_size=32, mlp_dim=64)
  config = ml_collections.ConfigDict(dict(model=dict(space_time_attention=dict(
      space_time_attention.default_config(), **options))))
  model = SpaceTimeTransformer(num_classes=10, **config.model.space_time_attention)
  video = ref['clip'] if name == 'timesformer' else _clip(ref['images'], 2)
  fresh = {'params': _target(model, video)}
  params, entries = vit_formats.convert_space_time(arrays, fresh, config)
  assert all(e.target.startswith('params/') for e in entries if e.target)
  np.testing.assert_allclose(_logits(model, params['params'], video), ref['logits'],
                             atol=1e-5, rtol=0)
