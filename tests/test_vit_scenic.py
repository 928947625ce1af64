"""scenic's ViViT checkpoints in SpaceTimeTransformer give scenic's own logits.

The fixtures (tests/fixtures/pretrained/, written by make_scenic_fixtures.py
with scenic's own modules, which vidjax never imports) are tiny random
factorised-encoder ViViTs saved as scenic saves them (flax msgpack
`checkpoint_<step>` files): 4 frames of 8x8, 4x4x2 tubelets, width 16, 2 heads,
mlp 32, 2 spatial + 1 temporal layers, 5 classes; plus the names and shapes of
the released ViViT-B/16x2 FE Kinetics-400 model.
"""
import functools
import json
import pathlib
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vidjax import config as config_lib
from vidjax import tasks
from vidjax.errors import UserError
from vidjax.models import space_time_attention
from vidjax.models.space_time_attention import SpaceTimeTransformer
from vidjax.pretrained import checkpoint_files, converters, init_from, vit_formats, vit_scenic
from vidjax.pretrained.mapping import MappingError, counts

FIXTURES = pathlib.Path('tests/fixtures/pretrained')
FILES = {'fe_token': 'scenic_vivit_fe/checkpoint_7',  # scenic's TrainState: 'params'
         'fe_gap': 'scenic_vivit_fe_gap/checkpoint',  # the released layout: 'optimizer/target'
         'unfactorised': 'scenic_vivit_unfactorised/checkpoint'}
SIZES = dict(attention='factorized_encoder', patch_size=4, tubelet_size=2, hidden_size=16,
             num_layers=2, num_temporal_layers=1, num_heads=2, mlp_dim=32)
REF = dict(np.load(FIXTURES / 'scenic_vivit_reference.npz'))


def _arrays(name):
  return checkpoint_files.load_arrays(FIXTURES / FILES[name])


def _config(**overrides):
  options = dict(space_time_attention.default_config(), **{**SIZES, **overrides})
  return ml_collections.ConfigDict(dict(model=dict(space_time_attention=options)))


def _fresh(config, video, random=False):
  """The model's {'params': ...} shapes (or random values: cheaper than `model.init` on CPU)."""
  model = SpaceTimeTransformer(num_classes=5, **config.model.space_time_attention)
  shapes = jax.eval_shape(lambda key: model.init(key, video[:1]), jax.random.key(0))
  if not random:
    return model, shapes
  rng = np.random.default_rng(0)
  return model, jax.tree.map(lambda s: rng.normal(size=s.shape).astype(s.dtype), shapes)


def _logits(model, params, video):
  with jax.default_matmul_precision('highest'):
    return np.asarray(jax.jit(model.apply)(params, video))  # Compiled: faster than op by op.


@pytest.mark.parametrize('name,pooling', [('fe_token', 'cls'), ('fe_gap', 'mean')])
def test_scenic_factorised_encoder_logits(name, pooling):
  config = _config(pooling=pooling)
  model, fresh = _fresh(config, REF['clip'], random=True)
  params, entries = vit_formats.convert_space_time(_arrays(name), fresh, config)
  assert vit_formats.detect(_arrays(name)) == 'scenic'
  assert len(entries) == len(jax.tree.leaves(fresh))
  assert counts(entries)['matched'] == len(entries), counts(entries)
  difference = np.abs(_logits(model, params, REF['clip']) - REF[name]).max()
  assert difference <= 1e-5, difference


UNFACTORISED = dict(attention='joint', position_embedding='space_time', num_layers=1)


def test_scenic_unfactorised_logits():
  """Model 1 (one encoder over all tokens, one embedding per token) is joint attention with a
  space-time embedding; its CLS row goes into the token."""
  config = _config(**UNFACTORISED)
  model, fresh = _fresh(config, REF['clip'], random=True)
  arrays = _arrays('unfactorised')
  params, entries = vit_formats.convert_space_time(arrays, fresh, config)
  assert vit_formats.detect(arrays) == 'scenic'
  assert counts(entries)['matched'] == len(entries) == len(jax.tree.leaves(fresh))
  pos = arrays['Transformer/posembed_input/pos_embedding'][0]  # [1 + T'N, D]: T' 2, N 4.
  np.testing.assert_array_equal(params['params']['space_time_embedding'][0].reshape(8, 16), pos[1:])
  difference = np.abs(_logits(model, params, REF['clip']) - REF['unfactorised']).max()
  assert difference <= 1e-5, difference


def test_unfactorised_embedding_resampled_to_more_frames():
  config = _config(**UNFACTORISED)
  clip = np.concatenate([REF['clip']] * 2, axis=1)  # 8 frames: T' 4 where scenic had 2.
  _, fresh = _fresh(config, clip)
  params, entries = vit_formats.convert_space_time(_arrays('unfactorised'), fresh, config)
  entry = next(e for e in entries if e.target.endswith('space_time_embedding'))
  assert entry.action == 'resampled' and '2 -> 4 frames' in entry.note
  assert params['params']['space_time_embedding'].shape == (1, 4, 4, 16)


def test_cls_position_goes_into_the_token():
  arrays = _arrays('fe_token')
  config = _config()
  _, fresh = _fresh(config, REF['clip'])
  params, entries = vit_formats.convert_space_time(arrays, fresh, config)
  pos = arrays['TemporalTransformer/posembed_input/pos_embedding'][0]  # [1 + T', D]
  np.testing.assert_allclose(params['params']['temporal_cls'][0],
                             arrays['cls_TemporalTransformer'][0, 0] + pos[0])
  np.testing.assert_allclose(params['params']['time_embedding'][0, :, 0], pos[1:])
  assert {e.note for e in entries if e.target == 'params/spatial_cls'} == {
      'CLS + its position embedding'}


def test_larger_clips_resample_space_and_time_embeddings():
  video = np.zeros((1, 8, 16, 16, 3), np.float32)  # 4 tubelets of a 4x4 grid
  _, fresh = _fresh(_config(), video)
  _, entries = vit_formats.convert_space_time(_arrays('fe_token'), fresh, _config())
  assert sorted(e.note for e in entries if e.action == 'resampled') == [
      '2 -> 4 frames linear', '2x2 -> 4x4 bilinear']


def test_init_checkpoint_reads_the_file_by_its_name():
  """--config.init.checkpoint=.../checkpoint_7 (what `python -m vidjax.convert` also runs)."""
  flags = [f'model.space_time_attention.{k}={v}' for k, v in SIZES.items() if k != 'attention']
  config = config_lib.load('configs/vivit_b_fe_k400.py', [
      *flags, 'data.num_frames=4', 'data.height=8', 'data.width=8', 'init.reinit_head=false',
      f'init.checkpoint={FIXTURES / FILES["fe_token"]}'])
  assert init_from.read_vidjax(FIXTURES / FILES['fe_token']) is None  # A published file.
  task = tasks.get(config)
  model = task.summary_model(5)
  fresh = jax.eval_shape(functools.partial(model.init, **task.apply_kwargs), jax.random.key(0),
                         jnp.zeros((1, *task.input_shape)))
  params, entries, origin = init_from.initial_params(config, fresh)
  assert origin.endswith('checkpoint_7') and counts(entries)['matched'] == len(entries)
  difference = np.abs(_logits(model, params, REF['clip']) - REF['fe_token']).max()
  assert difference <= 1e-5, difference


@pytest.mark.parametrize('release,config_name', [('scenic_vivit_b_fe_k400', 'vivit_b_fe_k400'),
                                                 ('scenic_vivit_b_k400', 'vivit_b_k400')])
def test_released_vivit_b_k400_maps_completely_onto_its_config(release, config_name):
  """Every parameter of the released ViViT-B/16x2 models, FE and unfactorised (names and
  shapes), finds its place in its config's model, as is."""
  shapes = json.loads((FIXTURES / f'{release}_shapes.json').read_text())
  arrays = {k: np.broadcast_to(np.float32(0.01), s) for k, s in shapes.items()}
  config = config_lib.load(f'configs/{config_name}.py')
  task = tasks.get(config)
  model = task.summary_model(400)
  fresh = jax.eval_shape(functools.partial(model.init, **task.apply_kwargs), jax.random.key(0),
                         jnp.zeros((1, *task.input_shape)))
  params, entries = converters.convert_arrays(arrays, fresh, config)
  assert counts(entries) == dict(matched=len(jax.tree.leaves(fresh)), resampled=0, inflated=0,
                                 new=0, ignored=0)
  assert len(params) == len(jax.tree.leaves(fresh))


def test_both_train_state_layouts_read_as_parameters():
  token, gap = _arrays('fe_token'), _arrays('fe_gap')
  assert 'output_projection/kernel' in token and 'output_projection/kernel' in gap
  assert set(token) - set(gap) == {'cls_SpatialTransformer', 'cls_TemporalTransformer'}
  assert not any(k.startswith(('opt_state', 'optimizer', 'rng', 'global_step')) for k in token)


@pytest.mark.parametrize('content', ['half', 'garbage', 'empty'])
def test_truncated_or_garbage_checkpoint_is_one_line(tmp_path, content):
  data = (FIXTURES / FILES['fe_token']).read_bytes()
  path = tmp_path / 'checkpoint_3'
  path.write_bytes({'half': data[:len(data) // 2], 'garbage': b'\x93not a checkpoint' * 9,
                    'empty': b''}[content])
  with pytest.raises(UserError, match='truncated or corrupt') as error:
    checkpoint_files.load_arrays(path)
  assert '\n' not in str(error.value)


def test_unknown_suffixless_file_is_refused_by_name(tmp_path):
  path = tmp_path / 'weights'
  shutil.copy(FIXTURES / FILES['fe_token'], path)
  with pytest.raises(UserError, match='checkpoint_<step>'):
    init_from.read_vidjax(path)


@pytest.mark.parametrize('name,overrides,message', [
    ('unfactorised', dict(attention='joint'), "position_embedding='space_time'"),
    ('unfactorised', dict(UNFACTORISED, num_layers=2), 'num_layers=1'),
    ('fe_token', dict(attention='divided'), "attention='factorized_encoder'"),
    ('fe_token', dict(hidden_size=32, mlp_dim=64), 'hidden_size=16'),
    ('fe_token', dict(num_temporal_layers=2), 'num_temporal_layers=1'),
    ('fe_token', dict(pooling='mean'), "pooling='cls'"),
    ('fe_token', dict(tubelet_size=4), 'tubelet_size=2'),
])
def test_another_architecture_is_a_one_line_error(name, overrides, message):
  config = _config(**overrides)
  frames = 8 if overrides.get('tubelet_size') == 4 else 4
  _, fresh = _fresh(config, np.zeros((1, frames, 8, 8, 3), np.float32))
  with pytest.raises(MappingError, match=message) as error:
    vit_formats.convert_space_time(_arrays(name), fresh, config)
  assert isinstance(error.value, UserError) and '\n' not in str(error.value)


def test_pre_logits_with_a_kept_head_is_refused():
  arrays = dict(_arrays('fe_token'), **{'pre_logits/kernel': np.zeros((16, 16), np.float32),
                                        'pre_logits/bias': np.zeros(16, np.float32)})
  _, fresh = _fresh(_config(), REF['clip'])
  with pytest.raises(MappingError, match='reinit_head=true'):
    vit_formats.convert_space_time(arrays, fresh, _config())
  assert vit_scenic.is_scenic(arrays)
