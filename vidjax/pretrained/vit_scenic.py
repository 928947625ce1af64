"""scenic's ViViT checkpoints (its released Kinetics / Epic Kitchens models) in vidjax's model.

scenic's factorised encoder (`SpaceTimeViViT`, ViViT model 2) is vidjax's
'factorized_encoder' with other names: a tubelet conv `embedding`, a
`SpatialTransformer` and a `TemporalTransformer` of ViT blocks (flax names as
in big_vision: separate query / key / value, tanh GELU, so
`approximate_gelu=True`), and the head `output_projection`. Exact, as both
models add each position embedding once before their encoder:

- scenic's position embedding covers the CLS token too ('token' classifier);
  vidjax's CLS tokens have none, so its first row is added into the token.
- The spatial rows become `space_embedding` (resampled on the 2-D grid when the
  patch grid differs, as in `vit.py`); the temporal rows `time_embedding`
  (resampled linearly when the frame count differs).
- 'gap' checkpoints (no CLS) need `pooling='mean'`.

scenic's unfactorised ViViT (model 1, its best Kinetics-400 ViViT-B) is
'joint' attention with `position_embedding='space_time'`: one `Transformer`
over all T'*N tokens and one learned embedding per token ([1 + T'*N, D]),
whose CLS row goes into the token and whose rest becomes
`space_time_embedding` (resampled along time when only the frame count
differs, on each frame's grid when only the patch grid does).

Not mappable (a `MappingError` naming the array): ViViT models 3 / 4 (their
blocks differ); scenic's `pre_logits` Dense (`representation_size`) when
the head is kept; a temporal encoder of other width or heads than the
spatial one (vidjax uses one).
`from_scenic` fills the target with `vit.py`'s mapper, so its entries and
errors read as those of the other ViT formats.
"""
from __future__ import annotations

import re

import numpy as np

from vidjax.pretrained import vit
from vidjax.pretrained.mapping import MappingError

ENCODERS = {'spatial': 'SpatialTransformer', 'temporal': 'TemporalTransformer'}
_CONFIG = 'model.space_time_attention'
# scenic's EncoderBlock sub-layers -> vidjax's.
_BLOCK = {'LayerNorm_0': 'norm_attention', 'LayerNorm_1': 'norm_mlp',
          'MlpBlock_0/Dense_0': 'mlp/fc1', 'MlpBlock_0/Dense_1': 'mlp/fc2',
          'MultiHeadDotProductAttention_0/out': 'attention/out'}
_QKV = 'MultiHeadDotProductAttention_0/{}/{}'


def is_scenic(arrays: dict[str, np.ndarray]) -> bool:
  """A scenic ViViT: a factorised encoder's two encoders, or a tubelet `embedding` and scenic's
  head `output_projection` (an unfactorised one, refused by `read_scenic` with its reason)."""
  if any(k.startswith(tuple(f'{name}/' for name in ENCODERS.values())) for k in arrays):
    return True
  return 'output_projection/kernel' in arrays and 'embedding/kernel' in arrays


UNFACTORISED = 'Transformer'  # scenic's one encoder over all space-time tokens (model 1).


def _read_encoder(arrays, scenic_name, prefix, out):
  """One scenic encoder's blocks and final LayerNorm into `out` as '{prefix}/block_{i}/...'."""
  used = set()
  for key, value in arrays.items():
    match = re.fullmatch(re.escape(scenic_name) + r'/encoderblock_(\d+)/(.+)/(kernel|bias|scale)',
                         key)
    if not match:
      continue
    i, module, leaf = int(match.group(1)), match.group(2), match.group(3)
    if module in _BLOCK:
      out[f'{prefix}/block_{i}/{_BLOCK[module]}/{leaf}'] = vit.Source(value, key)
      used.add(key)
    elif module == 'MultiHeadDotProductAttention_0/query':  # Stack q, k, v into vidjax's qkv.
      keys = [f'{scenic_name}/encoderblock_{i}/{_QKV.format(p, leaf)}'
              for p in ('query', 'key', 'value')]
      missing = [k for k in keys if k not in arrays]
      if missing:
        raise MappingError(f'{missing[0]}: missing beside {key}; the checkpoint is incomplete')
      stacked = np.stack([arrays[k] for k in keys], axis=1 if leaf == 'kernel' else 0)
      out[f'{prefix}/block_{i}/attention/qkv/{leaf}'] = vit.Source(stacked, ' + '.join(keys))
      used.update(keys)
  for leaf in ('scale', 'bias'):
    key = f'{scenic_name}/encoder_norm/{leaf}'
    if key in arrays:
      out[f'{prefix}/norm/{leaf}'] = vit.Source(arrays[key], key)
      used.add(key)
  return used


def read_scenic(arrays: dict[str, np.ndarray]) -> dict[str, vit.Source]:
  """{neutral name: Source} of a scenic ViViT, factorised or not (see the module doc)."""
  unfactorised = any(k.startswith(f'{UNFACTORISED}/') for k in arrays)
  encoders = {'encoder': UNFACTORISED} if unfactorised else ENCODERS
  arrays = {k: np.asarray(v, np.float32) for k, v in arrays.items()}
  out, used = {}, set()

  def put(name, key, value=None, part=''):
    out[name] = vit.Source(arrays[key] if value is None else value, key + part)
    used.add(key)

  if 'embedding/kernel' not in arrays:
    raise MappingError('no embedding/kernel: not a scenic ViViT checkpoint')
  # [t, ph, pw, C, D]; [ph, pw, C, D] for 'temporal_sampling' (set data.num_frames to its
  # n_sampled_frames: vidjax does not subsample the clip).
  kernel = arrays['embedding/kernel']
  put('patch/kernel', 'embedding/kernel', kernel if kernel.ndim == 5 else kernel[None])
  put('patch/bias', 'embedding/bias')
  for prefix, scenic_name in encoders.items():
    used |= _read_encoder(arrays, scenic_name, prefix, out)
    pos_key = f'{scenic_name}/posembed_input/pos_embedding'
    if pos_key not in arrays:
      raise MappingError(f'no {pos_key}: sinusoidal position embeddings are not supported')
    pos = arrays[pos_key][0]  # [(1 +) L, D]
    cls_key = 'cls' if unfactorised else f'cls_{scenic_name}'
    if cls_key in arrays:
      put(f'{prefix}/cls', cls_key, arrays[cls_key].reshape(-1))
      put(f'{prefix}/cls_pos', pos_key, pos[0], '[0]')
      pos = pos[1:]
    # [L, D]: the patches (spatial), the frames (temporal) or every token (unfactorised).
    put(f'{prefix}/pos', pos_key, pos, '[1:]' if cls_key in arrays else '')
  for name, key in (('head/kernel', 'output_projection/kernel'),
                    ('head/bias', 'output_projection/bias'),
                    ('pre_logits/kernel', 'pre_logits/kernel'),
                    ('pre_logits/bias', 'pre_logits/bias')):
    if key in arrays:
      put(name, key)
  left = sorted(set(arrays) - used)
  if left:
    raise MappingError(f'{left[0]}: no place for it in SpaceTimeTransformer')
  return out


def _depth(source, prefix):
  depth = 0
  while f'{prefix}/block_{depth}/attention/qkv/kernel' in source:
    depth += 1
  return depth


def _width(source, prefix):  # (heads, mlp_dim) of an encoder
  return (source[f'{prefix}/block_0/attention/qkv/kernel'].array.shape[2],
          source[f'{prefix}/block_0/mlp/fc1/kernel'].array.shape[1])


def _unfactorised_settings(source):
  """What the model needs to hold an unfactorised ViViT; None for a factorised encoder."""
  if 'encoder/pos' not in source:
    return None
  if _depth(source, 'encoder') == 0:
    raise MappingError('the checkpoint has no Transformer/encoderblock_0; use a complete scenic '
                       'ViViT checkpoint')
  heads, mlp = _width(source, 'encoder')
  return dict(attention='joint', position_embedding='space_time', num_heads=heads,
              num_layers=_depth(source, 'encoder'), mlp_dim=mlp,
              pooling='cls' if 'encoder/cls' in source else 'mean')


def check_compatible(source: dict[str, vit.Source], model):
  """A one-line error naming the config key to set when `model` cannot hold the checkpoint."""
  unfactorised = _unfactorised_settings(source)
  if unfactorised is not None:
    kernel = source['patch/kernel'].array
    want = dict(unfactorised, hidden_size=kernel.shape[-1], patch_size=tuple(kernel.shape[1:3]),
                approximate_gelu=True)
    have = {key: getattr(model, key) for key in want}
    have['patch_size'] = tuple(np.broadcast_to(model.patch_size, 2).tolist())
    _check_settings(dict(want, stem='patch'), dict(have, stem=model.stem))
    return
  if _depth(source, 'spatial') == 0 or _depth(source, 'temporal') == 0:
    raise MappingError('the checkpoint lacks a spatial or temporal encoder block_0; use a '
                       'complete scenic factorised-encoder checkpoint')
  (heads, mlp), temporal = _width(source, 'spatial'), _width(source, 'temporal')
  if temporal != (heads, mlp):
    raise MappingError(f'the temporal encoder has (heads, mlp_dim) {temporal}, the spatial one '
                       f'{(heads, mlp)}; SpaceTimeTransformer uses one setting for both')
  kernel = source['patch/kernel'].array  # [t, ph, pw, C, D]
  want = dict(attention='factorized_encoder', hidden_size=kernel.shape[-1], num_heads=heads,
              num_layers=_depth(source, 'spatial'),
              num_temporal_layers=_depth(source, 'temporal'), mlp_dim=mlp,
              patch_size=tuple(kernel.shape[1:3]), approximate_gelu=True,
              pooling='cls' if 'spatial/cls' in source else 'mean',
              time_embedding=True)
  have = dict(attention=model.attention, hidden_size=model.hidden_size,
              num_heads=model.num_heads, num_layers=model.num_layers,
              num_temporal_layers=model.num_temporal_layers, mlp_dim=model.mlp_dim,
              patch_size=tuple(np.broadcast_to(model.patch_size, 2).tolist()),
              approximate_gelu=model.approximate_gelu, pooling=model.pooling,
              time_embedding=model.uses_time_embedding)
  _check_settings(dict(want, stem='patch'), dict(have, stem=model.stem))


def _check_settings(want, have):
  for key, value in want.items():
    if have[key] != value:
      needed = 'None' if key == 'time_embedding' else repr(value)
      raise MappingError(f'the checkpoint needs {_CONFIG}.{key}={needed}, the model has '
                         f'{have[key]!r}')


def _take_encoder(m, target, prefix, depth):
  for i in range(depth):
    for name in ('norm_attention', 'attention', 'norm_mlp', 'mlp/fc1', 'mlp/fc2'):
      for leaf in vit._leaves(name):
        m.take(f'{target}/block_{i}/{leaf}', f'{prefix}/block_{i}/{leaf}')
  for leaf in vit._leaves('norm'):
    m.take(f'{target}/{leaf}', f'{prefix}/{leaf}')


def _take_cls(m, target, prefix):
  if target in m.target:
    names = [f'{prefix}/cls', f'{prefix}/cls_pos']
    m.put(target, sum(m.source[n].array for n in names)[None], 'matched', names,
          'CLS + its position embedding')


def _take_positions(m, grid):
  n = np.shape(m.target['space_embedding'])[2]
  pos = m.source['spatial/pos'].array  # [N, D]
  if len(pos) == n:
    m.take('space_embedding', 'spatial/pos', fn=lambda p: p.reshape(1, 1, n, -1))
  else:
    old = vit._grid(len(pos), None, 'spatial/pos of the checkpoint')
    size = vit._grid(n, grid, 'space_embedding')
    m.take('space_embedding', 'spatial/pos', 'resampled',
           f'{old[0]}x{old[1]} -> {size[0]}x{size[1]} bilinear',
           fn=lambda p: vit.resample_grid(p.reshape(*old, -1), size).reshape(1, 1, n, -1))
  frames = np.shape(m.target['time_embedding'])[1]
  time = m.source['temporal/pos'].array  # [T', D]
  if len(time) == frames:
    m.take('time_embedding', 'temporal/pos', fn=lambda e: e[None, :, None])
  else:
    m.take('time_embedding', 'temporal/pos', 'resampled', f'{len(time)} -> {frames} frames linear',
           fn=lambda e: vit.resample_grid(e, (frames,))[None, :, None])


def _take_space_time_positions(m, grid):
  """[L, D] per-token rows -> space_time_embedding [1, T', N, D]; L = T' * N exactly, or the same
  patch grid (rows resampled along time) or the same frame count (each frame's grid resampled)."""
  _, frames, n, _ = np.shape(m.target['space_time_embedding'])
  pos = m.source['encoder/pos'].array
  count = len(pos)
  if count == frames * n:
    m.take('space_time_embedding', 'encoder/pos', fn=lambda p: p.reshape(1, frames, n, -1))
  elif count % n == 0:
    old = count // n
    m.take('space_time_embedding', 'encoder/pos', 'resampled', f'{old} -> {frames} frames linear',
           fn=lambda p: vit.resample_grid(p.reshape(old, n, -1), (frames,))[None])
  elif count % frames == 0:
    old = vit._grid(count // frames, None, 'Transformer/posembed_input per frame')
    size = vit._grid(n, grid, 'space_time_embedding')
    m.take('space_time_embedding', 'encoder/pos', 'resampled',
           f'{old[0]}x{old[1]} -> {size[0]}x{size[1]} bilinear on each of {frames} frames',
           fn=lambda p: vit.resample_grid(p.reshape(frames, *old, -1), (frames, *size)
                                          ).reshape(1, frames, n, -1))
  else:
    raise MappingError(f'Transformer/posembed_input has {count} tokens, which neither the '
                       f'{frames} frames nor the {n} patches of the model divide; set '
                       'data.num_frames or data.height/width to the checkpoint\'s')


def _take_patch(m, tubelet_init):
  t = np.shape(m.target['patch_embedding/kernel'])[0]
  kernel = m.source['patch/kernel'].array  # [t, ph, pw, C, D]
  if kernel.shape[0] == t:
    m.take('patch_embedding/kernel', 'patch/kernel')
  elif kernel.shape[0] == 1:
    m.take('patch_embedding/kernel', 'patch/kernel', 'inflated', f'{tubelet_init} of {t} frames',
           fn=lambda k: vit._inflate(k[0], t, tubelet_init))
  else:
    raise MappingError(f'the checkpoint needs {_CONFIG}.tubelet_size={kernel.shape[0]}, '
                       f'the model has {t}')
  m.take('patch_embedding/bias', 'patch/bias')


def _take_head(m):
  head = m.source.get('head/kernel')
  fits = head is not None and head.array.shape == np.shape(m.target['head/kernel'])
  if fits and 'pre_logits/kernel' in m.source:
    raise MappingError("the checkpoint's head reads a pre_logits layer (representation_size) "
                       'SpaceTimeTransformer does not have; start a new head with '
                       '--config.init.reinit_head=true and another class count')
  if fits:
    m.take('head/kernel', 'head/kernel')
    m.take('head/bias', 'head/bias')
  else:  # A new head; the checkpoint's (and its pre_logits) is 'ignored'.
    m.new('head/kernel', 'class count differs' if head is not None else '')
    m.new('head/bias')


def from_scenic(arrays: dict[str, np.ndarray], model, target, *, grid=None,
                tubelet_init: str = 'central'):
  """(params, entries) for `model` from a scenic ViViT; `target`, `grid`: as `vit.to_space_time`."""
  if tubelet_init not in vit.TUBELET_INITS:
    raise MappingError(f'tubelet_init must be one of {vit.TUBELET_INITS}, got {tubelet_init!r}')
  source = read_scenic(arrays)
  check_compatible(source, model)
  m = vit._Mapper(source, target)
  _take_patch(m, tubelet_init)
  if _unfactorised_settings(source) is not None:
    _take_space_time_positions(m, grid)
    _take_cls(m, 'cls', 'encoder')
    _take_encoder(m, 'encoder', 'encoder', model.num_layers)
    _take_head(m)
    return m.done()
  _take_positions(m, grid)
  _take_cls(m, 'spatial_cls', 'spatial')
  _take_cls(m, 'temporal_cls', 'temporal')
  _take_encoder(m, 'spatial_encoder', 'spatial', model.num_layers)
  _take_encoder(m, 'temporal_encoder', 'temporal', model.num_temporal_layers)
  _take_head(m)
  return m.done()
