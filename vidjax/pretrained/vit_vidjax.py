"""A vidjax image transformer (space_only or joint, one frame) in `vit.to_space_time`'s neutral form.

So an image model pretrained here (a space-only SpaceTimeTransformer on
images as one-frame clips) initialises TimeSformer or ViViT through the same
inflation as a timm checkpoint: `--config.init.checkpoint=WORKDIR` with the
video pattern in the config. Its blocks already carry the neutral names;
only the embeddings drop their leading unit axes.
"""
from __future__ import annotations

import re

import numpy as np

from vidjax.pretrained import vit
from vidjax.pretrained.mapping import MappingError

IMAGE_PATTERNS = ('space_only', 'joint')


def is_image_transformer(flat: dict[str, np.ndarray]) -> bool:
  """A space_only / joint SpaceTimeTransformer's parameters (one encoder of EncoderBlocks)."""
  return ('patch_embedding/kernel' in flat and 'space_embedding' in flat
          and any(k.startswith('encoder/block_0/attention/') for k in flat))


def read(flat: dict[str, np.ndarray]) -> dict[str, vit.Source]:
  """{neutral name: Source} of a vidjax image transformer's flat parameters."""
  out = {}
  for key, value in flat.items():
    value = np.asarray(value, np.float32)
    block = re.fullmatch(r'encoder/(block_\d+/.+)', key)
    if block:
      out[block.group(1)] = vit.Source(value, key)
    elif key in ('encoder/norm/scale', 'encoder/norm/bias', 'head/kernel', 'head/bias'):
      out[key.removeprefix('encoder/')] = vit.Source(value, key)
    elif key == 'patch_embedding/kernel':
      if value.shape[0] != 1:
        raise MappingError(f'{key}: a tubelet kernel of {value.shape[0]} frames; pretrain the '
                           'image model with tubelet_size=1')
      out['patch/kernel'] = vit.Source(value[0], key)
    elif key == 'patch_embedding/bias':
      out['patch/bias'] = vit.Source(value, key)
    elif key == 'space_embedding':
      n = value.shape[2]
      side = int(round(n ** 0.5))
      if side * side != n:
        raise MappingError(f'{key}: {n} patches are not a square grid')
      out['pos'] = vit.Source(value.reshape(side, side, -1), key)
    elif key == 'cls':
      out['cls'] = vit.Source(value.reshape(-1), key)
    elif key == 'time_embedding':
      out['time'] = vit.Source(value.reshape(value.shape[1], value.shape[-1]), key)
    else:
      raise MappingError(f'{key}: not part of an image transformer (space_only or joint)')
  return out
