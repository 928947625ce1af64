"""Which ViT checkpoint a file holds, and its conversion for `config.model.space_time_attention`.

`convert_space_time(arrays, fresh, config)` has the signature of a
`converters.py` family converter: it tells big_vision / ViT-paper `.npz`
files (flax names: `embedding/kernel`, `Transformer/...`) from scenic's ViViT
checkpoints (flax too, with `output_projection` and `SpatialTransformer/...`)
and from PyTorch state dicts with timm's names (timm ViTs and the official
TimeSformer, with any wrapper prefix such as 'model_state/model.'), builds
the configured model and converts. Tubelets are inflated by `tubelet_init`
('central', ViViT's default).
"""
from __future__ import annotations

import numpy as np
from flax import traverse_util

from vidjax.models.space_time_attention import SpaceTimeTransformer
from vidjax.pretrained import vit_big_vision, vit_scenic, vit_timm
from vidjax.pretrained.mapping import MappingError


def detect(arrays: dict[str, np.ndarray]) -> str:
  """'scenic' (a ViViT), 'big_vision' (flax names) or 'timm' (PyTorch names, TimeSformer too)."""
  if vit_scenic.is_scenic(arrays):
    return 'scenic'
  if any(k == 'embedding/kernel' or k.endswith('/embedding/kernel') for k in arrays):
    return 'big_vision'
  return 'timm'


def configured_model(fresh, config) -> SpaceTimeTransformer:
  """The config's SpaceTimeTransformer at the class count of `fresh`'s head."""
  flat = traverse_util.flatten_dict(dict(fresh), sep='/')
  head = next(v for k, v in flat.items() if k.endswith('head/kernel'))
  options = {k: tuple(v) if isinstance(v, list) else v
             for k, v in config.model.space_time_attention.items()}
  return SpaceTimeTransformer(num_classes=np.shape(head)[-1], **options)


def convert_space_time(arrays: dict[str, np.ndarray], fresh, config, *,
                       tubelet_init: str = 'central'):
  """(params like `fresh`, entries) from a ViT / TimeSformer checkpoint for the configured model."""
  if not any(k.endswith(('cls_token', 'embedding/kernel')) for k in arrays):
    first = next(iter(arrays), 'nothing')
    raise MappingError(f'not a ViT checkpoint (no cls_token or embedding/kernel; it starts with '
                       f"'{first}'): another architecture? model.name=space_time_attention reads "
                       'timm / big_vision ViTs, official TimeSformer and scenic ViViT checkpoints')
  model = configured_model(fresh, config)
  convert = {'scenic': vit_scenic.from_scenic, 'big_vision': vit_big_vision.from_big_vision,
             'timm': vit_timm.from_timesformer}[detect(arrays)]
  return convert(arrays, model, fresh, tubelet_init=tubelet_init)
