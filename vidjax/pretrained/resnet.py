"""torchvision / timm ResNet state dicts -> `vidjax.models.resnet.ResNet` parameters.

Both libraries name a ResNet the same way (`conv1`, `bn1`,
`layer2.0.conv1`, `layer2.0.downsample.0/1`, `fc`), so one renaming serves
both. Convs go OIHW -> HWIO; each BatchNorm (weight, bias, running_mean,
running_var, num_batches_tracked) is folded into the frozen affine
(`scale = gamma / sqrt(var + eps)`, `bias = beta - mean * scale`). The
ImageNet `fc` is `ignored` unless the target has a head of the same shape.

The ResNet may sit anywhere in the target tree (LRCN's `backbone`); the
target's other leaves (an LSTM, a task head) are `new`. A checkpoint wrapped
as training scripts save it (`state_dict.`, `model.`, `module.`,
`model_state.` prefixes) is unwrapped; every other source array is `ignored`.
"""
from __future__ import annotations

import re

import numpy as np
from flax import traverse_util

from vidjax.errors import UserError
from vidjax.models.resnet import BN_EPS
from vidjax.pretrained.mapping import Entry, MappingError

SOURCES = ('torchvision', 'timm')
WRAPPERS = ('state_dict', 'model', 'module', 'model_state')  # Prefixes training scripts add.


def convert_resnet(arrays, target_params, *, source: str = 'torchvision', eps: float = BN_EPS):
  """(params like `target_params`, one Entry per target leaf and per unused source array).

  `arrays` is `{name: np.ndarray}` (`load_arrays`); `target_params` the
  model's initialised parameters (a 'params' collection may wrap them), or
  their `jax.eval_shape`; the `new` leaves keep their values. `source` only
  says whose file it is: torchvision and timm name a ResNet alike. `eps` is
  the source BatchNorm's.
  """
  if source not in SOURCES:
    raise UserError(f"unknown ResNet source '{source}'; use one of {', '.join(SOURCES)}")
  flat = traverse_util.flatten_dict(target_params, sep='/')
  scope = _find_scope(flat)
  prefix = _find_prefix(arrays)
  used, out, entries = set(), {}, []
  for target, value in flat.items():
    if not target.startswith(scope):
      out[target] = value
      entries.append(Entry(target, 'new', shape=tuple(value.shape), note='not part of the ResNet'))
      continue
    module, leaf = target[len(scope):].rsplit('/', 1)
    name = prefix + _torch_name(module)
    if module == 'fc':
      key = f'{name}.weight' if leaf == 'kernel' else f'{name}.bias'
      array = arrays.get(key)
      if array is None or (array.T if leaf == 'kernel' else array).shape != tuple(value.shape):
        out[target] = value
        entries.append(Entry(target, 'new', shape=tuple(value.shape),
                             note=f'source fc is {None if array is None else array.shape}'))
        continue
    new, keys, note = _convert_leaf(arrays, name, module, leaf, eps, target, value.shape)
    out[target] = np.asarray(new, dtype=value.dtype)
    used.update(keys)
    entries.append(Entry(target, 'matched', ', '.join(keys), tuple(value.shape), note))
  for key, array in arrays.items():
    if key not in used and not (key.endswith('.num_batches_tracked') and
                                key[:-len('num_batches_tracked')] + 'running_var' in used):
      entries.append(Entry('', 'ignored', key, tuple(array.shape)))
  return traverse_util.unflatten_dict(out, sep='/'), entries


def _convert_leaf(arrays, name, module, leaf, eps, target, shape):
  """(the target value, the source keys it used, how) for one ResNet leaf."""
  def get(key):
    if key not in arrays:
      raise MappingError(f"'{target}' needs '{key}', which the checkpoint lacks; "
                         'convert a ResNet of the same depth')
    return np.asarray(arrays[key], np.float32)

  def check(value, keys):
    if value.shape != tuple(shape):
      raise MappingError(f"'{target}' has shape {tuple(shape)} but '{keys[0]}' gives "
                         f'{value.shape}; use a ResNet of the same depth and widths')
    return value

  if leaf == 'kernel' and module == 'fc':
    keys = [f'{name}.weight']
    return check(get(keys[0]).T, keys), keys, 'transposed'
  if leaf == 'bias' and module == 'fc':
    keys = [f'{name}.bias']
    return check(get(keys[0]), keys), keys, ''
  if leaf == 'kernel':
    keys = [f'{name}.weight']
    weight = get(keys[0])
    if weight.ndim != 4:
      raise MappingError(f"'{target}' is a conv kernel but '{keys[0]}' has shape {weight.shape}")
    return check(weight.transpose(2, 3, 1, 0), keys), keys, 'OIHW -> HWIO'
  gamma, beta = get(f'{name}.weight'), get(f'{name}.bias')
  mean, var = get(f'{name}.running_mean'), get(f'{name}.running_var')
  scale = gamma / np.sqrt(var + eps)
  if leaf == 'scale':
    keys = [f'{name}.weight', f'{name}.running_var']
    return check(scale, keys), keys, f'BN folded: gamma / sqrt(var + {eps:g})'
  keys = [f'{name}.bias', f'{name}.running_mean', f'{name}.weight', f'{name}.running_var']
  return check(beta - mean * scale, keys), keys, 'BN folded: beta - mean * scale'


def _torch_name(module: str) -> str:
  """'layer2_0/downsample_bn' -> 'layer2.0.downsample.1'."""
  name = re.sub(r'layer(\d+)_(\d+)', r'layer\1.\2', module)
  name = name.replace('downsample_conv', 'downsample.0').replace('downsample_bn', 'downsample.1')
  return name.replace('/', '.')


def _find_scope(flat) -> str:
  """The path of the ResNet inside the target tree: '' or e.g. 'params/backbone/'."""
  stems = [k[:-len('conv1/kernel')] for k in flat if k.endswith('conv1/kernel')]
  scopes = [scope for scope in stems if scope + 'layer1_0/conv1/kernel' in flat]
  if len(scopes) != 1:
    raise UserError('the target model has no ResNet (or several); pick a resnet backbone '
                    f'(found {len(scopes)} ResNets in its parameters)')
  return scopes[0]


def _find_prefix(arrays) -> str:
  """The wrapper prefix of the checkpoint's stem conv: '' or e.g. 'state_dict.module.'."""
  candidates = []
  for key in arrays:
    if key.endswith('conv1.weight'):
      prefix = key[:-len('conv1.weight')]
      if prefix == '' or (prefix.endswith('.') and
                          all(part in WRAPPERS for part in prefix[:-1].split('.'))):
        candidates.append(prefix)
  if not candidates:
    raise MappingError("the checkpoint has no 'conv1.weight' (nor under "
                       f"{'/'.join(WRAPPERS)}.); convert a torchvision or timm ResNet state dict")
  return min(candidates, key=len)
