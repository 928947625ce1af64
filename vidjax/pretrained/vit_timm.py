"""timm ViT and official TimeSformer state dicts onto `SpaceTimeTransformer`.

Both are PyTorch `nn.Linear`/`nn.Conv2d` weights with timm's names (the
official TimeSformer grew out of timm's ViT and adds `time_embed` and, per
block, `temporal_norm1`, `temporal_attn`, `temporal_fc`). They are read into
`vit.to_space_time`'s neutral form: kernels transposed to [in, out], the fused
qkv split into (3, heads, head_dim), the patch conv to HWIO. Both use the exact
erf GELU, so the target needs `approximate_gelu=False`.

A state dict does not record the head count: the model's `num_heads` is used,
and must be the checkpoint's (ViT-B: 12, ViT-S: 6, ViT-Ti: 3).
"""
from __future__ import annotations

import re

import numpy as np

from vidjax.pretrained import vit
from vidjax.pretrained.mapping import MappingError

# timm block names -> vidjax's (see space_time_blocks.py).
_NORMS = {'norm1': 'norm_attention', 'norm2': 'norm_mlp',
          'temporal_norm1': 'norm_temporal_attention'}
_ATTENTIONS = {'attn': 'attention', 'temporal_attn': 'temporal_attention'}
_LINEARS = {'mlp.fc1': 'mlp/fc1', 'mlp.fc2': 'mlp/fc2', 'temporal_fc': 'temporal_fc'}


def _block_leaf(rest: str, value: np.ndarray, heads: int):
  """('norm_attention/scale', array) for one block key after 'blocks.i.', or None if unknown."""
  module, _, kind = rest.rpartition('.')
  if module in _NORMS and kind in ('weight', 'bias'):
    return f'{_NORMS[module]}/{"scale" if kind == "weight" else "bias"}', value
  if module in _LINEARS and kind in ('weight', 'bias'):
    return f'{_LINEARS[module]}/{"kernel" if kind == "weight" else "bias"}', value.T
  attn, _, layer = module.rpartition('.')
  if attn in _ATTENTIONS and layer in ('qkv', 'proj'):
    dim = value.shape[-1] if kind == 'weight' else value.shape[0] // 3  # qkv; proj: [D, D]
    if layer == 'qkv':  # [3D, D] -> [D, 3, h, D/h]: timm reshapes the output to (3, h, D/h).
      value = value.T.reshape(dim, 3, heads, dim // heads) if kind == 'weight' \
          else value.reshape(3, heads, dim // heads)
    elif kind == 'weight':  # [D, D] -> [h, D/h, D]: its input is the heads concatenated.
      value = value.T.reshape(heads, dim // heads, dim)
    return f'{_ATTENTIONS[attn]}/{"qkv" if layer == "qkv" else "out"}/' \
        f'{"kernel" if kind == "weight" else "bias"}', value
  return None


def read(arrays: dict[str, np.ndarray], num_heads: int, prefix: str = '') -> dict[str, vit.Source]:
  """A timm-named state dict (keys after `prefix`) in `vit.to_space_time`'s neutral form."""
  out = {}

  def put(name, value, key):
    out[name] = vit.Source(np.asarray(value, np.float32), key)

  for key, value in arrays.items():
    if not key.startswith(prefix):
      continue
    name = key[len(prefix):]
    value = np.asarray(value)
    block = re.fullmatch(r'blocks\.(\d+)\.(.+)', name)
    if block:
      leaf = _block_leaf(block.group(2), value, num_heads)
      if leaf is None:
        raise MappingError(f'{key}: no place for it in SpaceTimeTransformer '
                           f'(LayerScale, qk-norm and bias-free attention are not supported)')
      put(f'block_{block.group(1)}/{leaf[0]}', leaf[1], key)
    elif name == 'cls_token':
      put('cls', value.reshape(-1), key)
    elif name == 'pos_embed':
      pos = value.reshape(value.shape[-2], value.shape[-1])  # [(1 +) N, D]
      has_cls = f'{prefix}cls_token' in arrays and _square(len(pos) - 1)
      if has_cls:
        put('cls_pos', pos[0], f'{key}[0]')
        pos = pos[1:]
      if not _square(len(pos)):
        raise MappingError(f'{key}: {len(pos)} patch positions are not a square grid')
      side = _square(len(pos))
      put('pos', pos.reshape(side, side, -1), f'{key}[1:]' if has_cls else key)
    elif name == 'time_embed':
      put('time', value.reshape(value.shape[-2], value.shape[-1]), key)
    elif name == 'patch_embed.proj.weight':
      put('patch/kernel', value.transpose(2, 3, 1, 0), key)  # [D, C, ph, pw] -> [ph, pw, C, D]
    elif name in ('patch_embed.proj.bias', 'norm.weight', 'norm.bias', 'head.weight', 'head.bias',
                  'pre_logits.fc.weight', 'pre_logits.fc.bias'):
      target = {'patch_embed.proj.bias': 'patch/bias', 'norm.weight': 'norm/scale',
                'norm.bias': 'norm/bias', 'head.weight': 'head/kernel', 'head.bias': 'head/bias',
                # ImageNet-21k ViTs (timm's jx_vit_*_in21k) have a tanh layer before the head.
                'pre_logits.fc.weight': 'pre_logits/kernel', 'pre_logits.fc.bias': 'pre_logits/bias'}
      put(target[name], value.T, key)
    else:
      raise MappingError(f'{key}: no place for it in SpaceTimeTransformer '
                         f'(register tokens, fc_norm and pre-norm are not supported)')
  if 'cls' not in out or 'pos' not in out:
    raise MappingError(f'no {prefix}cls_token / {prefix}pos_embed: not a ViT state dict')
  return out


def _square(n: int) -> int:
  """The side of an n-position square grid, or 0."""
  side = int(round(max(n, 0) ** 0.5))
  return side if side * side == n and n > 0 else 0


def from_timm(arrays: dict[str, np.ndarray], model, target, *, grid=None,
              tubelet_init: str = 'central'):
  """(params, entries) for `model` from a timm ViT state dict; see `vit.to_space_time`."""
  source = read(arrays, model.num_heads)
  vit.check_compatible(source, model, approximate_gelu=False)
  return vit.to_space_time(source, model, target, grid=grid, tubelet_init=tubelet_init)


def from_timesformer(arrays: dict[str, np.ndarray], model, target, *, grid=None,
                     tubelet_init: str = 'central'):
  """(params, entries) from an official TimeSformer checkpoint's `model_state`.

  Keys may carry any prefix before `model.cls_token` (e.g. 'model_state/model.');
  arrays outside it (optimizer state, epoch) are not model weights and are
  left out of the entries. Its `temporal_fc` is kept with `temporal_fc=True`, or
  folded into the temporal attention's output projection otherwise (exact).
  """
  cls = [k for k in arrays if k.endswith('cls_token')]
  if len(cls) != 1:
    raise MappingError(f'expected one ...cls_token in a TimeSformer checkpoint, found {len(cls)}')
  source = read(arrays, model.num_heads, prefix=cls[0][:-len('cls_token')])
  vit.check_compatible(source, model, approximate_gelu=False)
  return vit.to_space_time(source, model, target, grid=grid, tubelet_init=tubelet_init)
