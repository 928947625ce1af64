"""big_vision and original ViT-paper `.npz` files onto `SpaceTimeTransformer`.

They are flax already: kernels are [in, out], attention is separate query /
key / value DenseGenerals of [D, heads, head_dim] (stacked here into vidjax's
fused qkv), the stem is an HWIO conv. Their MLP uses flax's default tanh GELU,
so the target keeps `approximate_gelu=True`. 'tok' models (a `cls` array) need
`pooling='cls'`, 'gap' models (none) `pooling='mean'`.

Read alike: big_vision's per-layer `encoderblock_{i}` and scanned
`encoderblock` (a leading depth axis), and the older layouts its
`fix_old_checkpoints` accepts: the position embedding under `Transformer/`
or `Transformer/posembed_input/`, with the CLS position first, and the ViT
paper's `MultiHeadDotProductAttention_1`, `LayerNorm_2`, `MlpBlock_3` names.
Not supported (a `MappingError`): MAP heads, sincos position
embeddings (no array to read).
"""
from __future__ import annotations

import re

import numpy as np

from vidjax.pretrained import vit
from vidjax.pretrained.mapping import MappingError

_POS = ('pos_embedding', 'Transformer/pos_embedding', 'Transformer/posembed_input/pos_embedding')
# Names inside an encoder block (this and the ViT paper's) -> vidjax's.
_BLOCK = {'LayerNorm_0': 'norm_attention', 'LayerNorm_1': 'norm_mlp', 'LayerNorm_2': 'norm_mlp',
          'MlpBlock_0/Dense_0': 'mlp/fc1', 'MlpBlock_0/Dense_1': 'mlp/fc2',
          'MlpBlock_3/Dense_0': 'mlp/fc1', 'MlpBlock_3/Dense_1': 'mlp/fc2',
          'MultiHeadDotProductAttention_0/out': 'attention/out',
          'MultiHeadDotProductAttention_1/out': 'attention/out'}
_QKV = re.compile(r'MultiHeadDotProductAttention_[01]/(query|key|value)/(kernel|bias)')


def _blocks(arrays, prefix):
  """{(layer, name inside the block): (array, key)}, scanned checkpoints split by layer."""
  out = {}
  for key, value in arrays.items():
    match = re.fullmatch(re.escape(prefix) + r'Transformer/encoderblock(_\d+)?/(.+)', key)
    if not match:
      continue
    if match.group(1):
      out[int(match.group(1)[1:]), match.group(2)] = (np.asarray(value), key)
    else:  # Scanned: [depth, ...].
      for i, layer in enumerate(np.asarray(value)):
        out[i, match.group(2)] = (layer, f'{key}[{i}]')
  return out


def read(arrays: dict[str, np.ndarray]) -> dict[str, vit.Source]:
  """A big_vision ViT's arrays in `vit.to_space_time`'s neutral form."""
  stem = [k for k in arrays if k == 'embedding/kernel' or k.endswith('/embedding/kernel')]
  if len(stem) != 1:
    raise MappingError(f'expected one embedding/kernel in a big_vision ViT, found {len(stem)}')
  prefix = stem[0][:-len('embedding/kernel')]
  out, used = {}, set()

  def put(name, value, key):
    out[name] = vit.Source(np.asarray(value, np.float32), key)
    used.add(key.split('[')[0])

  def get(name):
    return np.asarray(arrays[prefix + name])

  put('patch/kernel', get('embedding/kernel'), prefix + 'embedding/kernel')
  put('patch/bias', get('embedding/bias'), prefix + 'embedding/bias')
  pos_key = next((prefix + k for k in _POS if prefix + k in arrays), None)
  if pos_key is None:
    raise MappingError(f'no {prefix}pos_embedding: sincos position embeddings are not supported')
  pos = np.asarray(arrays[pos_key]).reshape(-1, arrays[pos_key].shape[-1])  # [(1 +) N, D]
  side = int(round(len(pos) ** 0.5))
  if prefix + 'cls' in arrays:
    put('cls', get('cls').reshape(-1), prefix + 'cls')
    if side * side != len(pos):  # Older layout: the CLS position first.
      put('cls_pos', pos[0], f'{pos_key}[0]')
      pos, side = pos[1:], int(round((len(pos) - 1) ** 0.5))
  if side * side != len(pos):
    raise MappingError(f'{pos_key}: {len(pos)} patch positions are not a square grid')
  put('pos', pos.reshape(side, side, -1), pos_key)

  qkv = {}
  for (i, name), (value, key) in _blocks(arrays, prefix).items():
    match = _QKV.fullmatch(name)
    if match:
      qkv[i, match.group(2), match.group(1)] = (value, key)
      used.add(key.split('[')[0])
      continue
    module, _, leaf = name.rpartition('/')
    if module not in _BLOCK:
      raise MappingError(f'{key}: no place for it in SpaceTimeTransformer')
    put(f'block_{i}/{_BLOCK[module]}/{leaf}', value, key)
  for (i, leaf, part) in sorted(qkv):
    if part != 'query':
      continue
    parts = [qkv[i, leaf, p] for p in ('query', 'key', 'value')]  # [D, h, D/h] or [h, D/h]
    stacked = np.stack([v for v, _ in parts], axis=1 if leaf == 'kernel' else 0)
    put(f'block_{i}/attention/qkv/{leaf}', stacked, ' + '.join(k for _, k in parts))
    used.update(k.split('[')[0] for _, k in parts)

  for name, target in (('Transformer/encoder_norm/scale', 'norm/scale'),
                       ('Transformer/encoder_norm/bias', 'norm/bias'),
                       ('head/kernel', 'head/kernel'), ('head/bias', 'head/bias'),
                       ('pre_logits/kernel', 'pre_logits/kernel'),  # ImageNet-21k ViTs.
                       ('pre_logits/bias', 'pre_logits/bias')):
    if prefix + name in arrays:
      put(target, get(name), prefix + name)
  left = sorted(k for k in arrays if k.startswith(prefix) and k not in used)
  if left:
    raise MappingError(f'{left[0]}: no place for it in SpaceTimeTransformer '
                       f'(MAP heads are not supported)')
  return out


def from_big_vision(arrays: dict[str, np.ndarray], model, target, *, grid=None,
                    tubelet_init: str = 'central'):
  """(params, entries) for `model` from a big_vision ViT; see `vit.to_space_time`."""
  source = read(arrays)
  vit.check_compatible(source, model, approximate_gelu=True)
  return vit.to_space_time(source, model, target, grid=grid, tubelet_init=tubelet_init)
