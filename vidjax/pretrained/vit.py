"""An image ViT's weights onto `SpaceTimeTransformer`, for every attention pattern.

Each checkpoint format (timm, big_vision, the official TimeSformer) is first
read into one neutral form, `{name: Source}` with vidjax's layer names and
shapes (see `vit_timm.py`, `vit_big_vision.py`); `to_space_time` then fills
the target's parameter tree from it, so the pattern-specific choices live in
one place:

- The CLS token gets no position embedding here, so the source's CLS position
  embedding is added into the token: exact, as both are added once before the
  encoder in every pattern.
- The patch position embeddings become `space_embedding`, resampled on their
  2-D grid when the patch grid differs (bilinear with antialiasing, which is
  timm's `resample_abs_pos_embed(interpolation='bilinear')` and big_vision's
  `jax.image.resize`).
- 'divided' / 'factorized_self_attention': each block's temporal attention and
  its LayerNorm start as copies of the spatial ones (TimeSformer), and the
  temporal branch starts at zero (`temporal_fc` zero, or without it the copied
  attention's output projection zero): on a clip of identical frames with a
  zero time embedding the video model then computes exactly the image model.
- Tubelets (`tubelet_size` > 1) inflate the patch kernel along time: 'central'
  puts it on the middle frame (ViViT), 'average' repeats it / t (I3D).
- 'factorized_encoder': the spatial encoder is the image model; the temporal
  encoder and its CLS token stay as initialised ('new').
- The head is taken when its shape matches, else left new and the source's
  head is 'ignored'.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from flax import traverse_util

from vidjax.pretrained.mapping import Entry, MappingError

TUBELET_INITS = ('central', 'average')
_CONFIG = 'model.space_time_attention'


@dataclasses.dataclass(frozen=True)
class Source:
  """One array in vidjax's layout, and the checkpoint key(s) it was read from."""
  array: np.ndarray
  name: str


def resample_grid(grid: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
  """Linear resampling of the leading axes of `grid` to `size`, antialiased when shrinking.

  Half-pixel centres and a triangle kernel widened by the shrink factor, weights
  normalised at the borders: torch's `F.interpolate(mode='bilinear',
  align_corners=False, antialias=True)` and `jax.image.resize(method='linear')`.
  """
  out = np.asarray(grid, np.float64)
  for axis, new in enumerate(size):
    old = out.shape[axis]
    if old == new:
      continue
    scale = new / old
    support = max(1.0, 1.0 / scale)  # Kernel half-width in input pixels.
    centres = (np.arange(new) + 0.5) / scale - 0.5  # [new] in input coordinates
    weights = np.maximum(0.0, 1.0 - np.abs(np.arange(old)[None] - centres[:, None]) / support)
    weights /= weights.sum(axis=1, keepdims=True)  # [new, old]
    out = np.moveaxis(np.tensordot(weights, np.moveaxis(out, axis, 0), axes=1), 0, axis)
  return out


def _grid(n: int, grid: tuple[int, int] | None, what: str) -> tuple[int, int]:
  if grid is not None:
    if grid[0] * grid[1] != n:
      raise MappingError(f'{what}: grid {tuple(grid)} does not hold its {n} patches; '
                         f'pass the right grid=(h, w)')
    return tuple(grid)
  side = int(round(n ** 0.5))
  if side * side != n:
    raise MappingError(f'{what}: {n} patches are not a square grid; pass grid=(h, w)')
  return side, side


def source_shape(source: dict[str, Source]) -> dict[str, int]:
  """The model sizes a neutral-form checkpoint implies: hidden_size, num_heads, ..."""
  kernel = source['block_0/attention/qkv/kernel'].array  # [D, 3, h, D/h]
  patch = source['patch/kernel'].array  # [ph, pw, C, D]
  depth = 0
  while f'block_{depth}/attention/qkv/kernel' in source:
    depth += 1
  return dict(hidden_size=kernel.shape[0], num_heads=kernel.shape[2], num_layers=depth,
              mlp_dim=source['block_0/mlp/fc1/kernel'].array.shape[1],
              patch_size=tuple(patch.shape[:2]), pooling='cls' if 'cls' in source else 'mean')


def check_compatible(source: dict[str, Source], model, approximate_gelu: bool):
  """A one-line error naming the config key to set when the target cannot hold the source."""
  want = dict(source_shape(source), approximate_gelu=approximate_gelu, stem='patch')
  have = dict(stem=model.stem, hidden_size=model.hidden_size, num_heads=model.num_heads,
              num_layers=model.num_layers, mlp_dim=model.mlp_dim,
              patch_size=tuple(np.broadcast_to(model.patch_size, 2).tolist()),
              approximate_gelu=model.approximate_gelu, pooling=model.pooling)
  for key, value in want.items():
    if have[key] != value:
      raise MappingError(f'the checkpoint needs {_CONFIG}.{key}={value!r}, '
                         f'the model has {have[key]!r}')


class _Mapper:
  """Fills one target tree from a neutral-form source, recording an `Entry` per leaf."""

  def __init__(self, source, target):
    self.source = source
    self.wrapped = set(target) == {'params'}  # A variables dict: keep its 'params' level.
    self.target = traverse_util.flatten_dict(dict(target['params'] if self.wrapped else target),
                                             sep='/')
    self.out, self.entries, self.used = {}, [], set()

  def _check(self, path, array, names):
    want = tuple(np.shape(self.target[path]))
    if array.shape != want:
      raise MappingError(f'{path}: the checkpoint gives {array.shape} from {names}, '
                         f'the model needs {want}')

  def put(self, path, array, action, names, note=''):
    array = np.asarray(array)
    self._check(path, array, names)
    self.out[path] = array.astype(self.target[path].dtype)
    self.used.update(n for n in names if n in self.source)
    label = ' + '.join(self.source[n].name if n in self.source else n for n in names)
    self.entries.append(Entry(path, action, label, array.shape, note))

  def take(self, path, name, action='matched', note='', fn=None):
    if name not in self.source:
      raise MappingError(f'{path}: the checkpoint has no {name} for it (a missing key, or a '
                         'model deeper than the checkpoint); use a checkpoint of this model')
    array = self.source[name].array
    self.put(path, array if fn is None else fn(array), action, [name], note)

  def new(self, path, note='', zero=False):
    value = self.target[path]  # An array, or a jax.ShapeDtypeStruct kept as is.
    self.out[path] = np.zeros(value.shape, value.dtype) if zero else value
    self.entries.append(Entry(path, 'new', '', tuple(value.shape), note))

  def done(self):
    missing = [p for p in self.target if p not in self.out]
    if missing:
      raise MappingError(f'{missing[0]}: nothing in the checkpoint maps to it')
    for name in sorted(set(self.source) - self.used):
      self.entries.append(Entry('', 'ignored', self.source[name].name,
                                self.source[name].array.shape))
    params = traverse_util.unflatten_dict(self.out, sep='/')
    if not self.wrapped:
      return params, self.entries
    return {'params': params}, [dataclasses.replace(e, target=f'params/{e.target}') if e.target
                                else e for e in self.entries]


def _encoder(m: _Mapper, prefix: str, depth: int):
  for i in range(depth):
    for name in ('norm_attention', 'attention', 'norm_mlp', 'mlp/fc1', 'mlp/fc2'):
      for leaf in _leaves(name):
        m.take(f'{prefix}/block_{i}/{leaf}', f'block_{i}/{leaf}')
  for leaf in _leaves('norm'):
    m.take(f'{prefix}/{leaf}', leaf)


def _leaves(name):
  if name.startswith('norm'):
    return [f'{name}/scale', f'{name}/bias']
  if name.endswith('attention'):
    return [f'{name}/{p}/{q}' for p in ('qkv', 'out') for q in ('kernel', 'bias')]
  return [f'{name}/kernel', f'{name}/bias']


def _temporal_branch(m: _Mapper, i: int, temporal_fc: bool):
  """Block i's temporal LayerNorm, attention and (with `temporal_fc`) its linear."""
  b, src = f'encoder/block_{i}', m.source
  norm, attn, fc = (_leaves(n) for n in ('norm_temporal_attention', 'temporal_attention',
                                         'temporal_fc'))
  if f'block_{i}/temporal_attention/qkv/kernel' not in src:  # An image model's block.
    spatial = _leaves('norm_attention') + _leaves('attention')
    for leaf, from_leaf in zip(norm + attn, spatial):
      if leaf.startswith('temporal_attention/out') and not temporal_fc:
        m.new(f'{b}/{leaf}', 'zero: the temporal branch starts off', zero=True)
      else:
        m.take(f'{b}/{leaf}', f'block_{i}/{from_leaf}', 'inflated',
               'copy of the spatial one (TimeSformer)')
    for leaf in fc if temporal_fc else []:
      m.new(f'{b}/{leaf}', 'zero: the block starts as the image block', zero=True)
    return
  for leaf in norm + attn[:2]:  # LayerNorm, qkv
    m.take(f'{b}/{leaf}', f'block_{i}/{leaf}')
  has_fc = f'block_{i}/temporal_fc/kernel' in src
  if temporal_fc:
    for leaf in attn[2:]:
      m.take(f'{b}/{leaf}', f'block_{i}/{leaf}')
    for leaf in fc:
      if has_fc:
        m.take(f'{b}/{leaf}', f'block_{i}/{leaf}')
      else:  # Identity: the trained branch goes on as it was.
        shape = np.shape(m.target[f'{b}/{leaf}'])
        m.put(f'{b}/{leaf}', np.eye(*shape) if len(shape) == 2 else np.zeros(shape), 'new',
              [], 'identity: the checkpoint has none')
    return
  # No temporal_fc here: fold the checkpoint's into the output, fc(W a + b) = (W F) a + (b F + c).
  names = [f'block_{i}/{leaf}' for leaf in attn[2:] + (fc if has_fc else [])]
  kernel, bias = (src[n].array for n in names[:2])
  note = ''
  if has_fc:
    fc_kernel, fc_bias = (src[n].array for n in names[2:])
    kernel, bias, note = kernel @ fc_kernel, bias @ fc_kernel + fc_bias, 'temporal_fc folded in'
  m.put(f'{b}/temporal_attention/out/kernel', kernel, 'matched', names[::2], note)
  m.put(f'{b}/temporal_attention/out/bias', bias, 'matched', names[1:2] + names[2:], note)


def _factorized_encoder(m: _Mapper, depth: int, temporal_fc: bool):
  for i in range(depth):
    b = f'encoder/block_{i}'
    for name, from_name in (('norm_spatial_attention', 'norm_attention'),
                            ('spatial_attention', 'attention'), ('norm_mlp', 'norm_mlp'),
                            ('mlp/fc1', 'mlp/fc1'), ('mlp/fc2', 'mlp/fc2')):
      for leaf, from_leaf in zip(_leaves(name), _leaves(from_name)):
        m.take(f'{b}/{leaf}', f'block_{i}/{from_leaf}')
    _temporal_branch(m, i, temporal_fc)
  for leaf in _leaves('norm'):
    m.take(f'encoder/{leaf}', leaf)


def _inflate(kernel, t, how):  # [ph, pw, C, D] -> [t, ph, pw, C, D]
  if how == 'average':
    return np.repeat(kernel[None], t, axis=0) / t
  out = np.zeros((t, *kernel.shape), kernel.dtype)
  out[t // 2] = kernel
  return out


def _space_time_embedding(m: _Mapper, grid):
  """`position_embedding='space_time'`: the image grid (resampled) repeated on every frame,
  plus the source's time embedding where it has one (a TimeSformer)."""
  _, frames, n, _ = np.shape(m.target['space_time_embedding'])
  pos = m.source['pos'].array  # [h, w, D]
  size = _grid(n, grid, 'space_time_embedding')
  names, note = ['pos'], f'repeated on {frames} frames'
  if tuple(pos.shape[:2]) != size:
    note = f'{pos.shape[0]}x{pos.shape[1]} -> {size[0]}x{size[1]} bilinear, ' + note
  table = np.broadcast_to(resample_grid(pos, size).reshape(1, 1, n, -1), (1, frames, n, pos.shape[-1]))
  if 'time' in m.source:
    names.append('time')
    table = table + resample_grid(m.source['time'].array, (frames,))[None, :, None]
    note += ', + the time embedding'
  m.put('space_time_embedding', table, 'inflated', names, note)


def to_space_time(source: dict[str, Source], model, target, *, grid=None,
                  tubelet_init: str = 'central'):
  """Target params for `model` (a SpaceTimeTransformer) from a neutral-form ViT, and the entries.

  `target` is the model's initialised params tree (`variables['params']`, or the
  variables dict, whose 'params' level the result and entries keep), or its
  `jax.eval_shape`: its shapes are the targets and its values stay where a
  parameter is 'new'. `grid` is the target's patch grid (h, w) when not square.
  """
  if tubelet_init not in TUBELET_INITS:
    raise MappingError(f'tubelet_init must be one of {TUBELET_INITS}, got {tubelet_init!r}')
  m = _Mapper(source, target)
  flat = m.target
  depth = model.num_layers

  # Patch embedding: [t, ph, pw, C, D], t = tubelet_size.
  t = np.shape(flat['patch_embedding/kernel'])[0]
  if t == 1:
    m.take('patch_embedding/kernel', 'patch/kernel', fn=lambda k: k[None])
  else:
    m.take('patch_embedding/kernel', 'patch/kernel', 'inflated', f'{tubelet_init} of {t} frames',
           fn=lambda k: _inflate(k, t, tubelet_init))
  m.take('patch_embedding/bias', 'patch/bias')

  # Position embeddings: the grid becomes space_embedding, the CLS one goes into the token.
  if 'space_time_embedding' in flat:
    _space_time_embedding(m, grid)
  else:
    pos = source['pos'].array  # [h, w, D]
    n = np.shape(flat['space_embedding'])[2]
    size = _grid(n, grid, 'space_embedding')
    if tuple(pos.shape[:2]) == size:
      m.take('space_embedding', 'pos', fn=lambda p: p.reshape(1, 1, n, -1))
    else:
      m.take('space_embedding', 'pos', 'resampled',
             f'{pos.shape[0]}x{pos.shape[1]} -> {size[0]}x{size[1]} bilinear',
             fn=lambda p: resample_grid(p, size).reshape(1, 1, n, -1))
  cls_path = 'spatial_cls' if model.attention == 'factorized_encoder' else 'cls'
  if cls_path in flat:
    names = ['cls'] + (['cls_pos'] if 'cls_pos' in source else [])
    m.put(cls_path, sum(source[k].array for k in names)[None], 'matched', names,
          'CLS + its position embedding' if len(names) > 1 else '')
  if 'time_embedding' in flat:
    frames = np.shape(flat['time_embedding'])[1]
    if 'time' not in source:
      m.new('time_embedding', 'zero: frames start alike', zero=True)
    elif source['time'].array.shape[0] == frames:
      m.take('time_embedding', 'time', fn=lambda e: e[None, :, None])
    else:
      m.take('time_embedding', 'time', 'resampled',
             f'{source["time"].array.shape[0]} -> {frames} frames linear',
             fn=lambda e: resample_grid(e, (frames,))[None, :, None])

  if model.attention in ('space_only', 'joint'):
    _encoder(m, 'encoder', depth)
  elif model.attention == 'factorized_encoder':
    _encoder(m, 'spatial_encoder', depth)
    for path in flat:
      if path.startswith(('temporal_encoder/', 'temporal_cls')):
        m.new(path, 'no temporal encoder in an image model')
  else:
    _factorized_encoder(m, depth, model.temporal_fc)

  head = source.get('head/kernel')
  fits = head is not None and head.array.shape == np.shape(flat['head/kernel'])
  if fits and 'pre_logits/kernel' in source:
    raise MappingError("the checkpoint's head reads a pre_logits layer SpaceTimeTransformer does "
                       'not have; start a new head (--config.init.reinit_head=true, another '
                       'class count) or use a checkpoint without pre_logits')
  if fits:  # Else a new head, and the source's head (and pre_logits) is 'ignored'.
    m.take('head/kernel', 'head/kernel')
    m.take('head/bias', 'head/bias')
  else:
    m.new('head/kernel', 'class count differs' if head is not None else '')
    m.new('head/bias')
  return m.done()
