"""Published checkpoint files -> a vidjax model's parameters: one converter per model family.

`convert_file` reads the file without PyTorch (checkpoint_files.py) and hands
its arrays to the converter of `config.model.name`, which returns the flat
parameters ('cnn/conv_0/kernel': array) and an Entry for each. A family with
no converter is a one-line error naming those that have one.
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Callable

from vidjax.errors import UserError
from vidjax.pretrained import mapping

Converter = Callable[[dict, Any, Any], tuple[dict, list[mapping.Entry]]]


def _resnet_backbone(arrays: dict, fresh: Any, config) -> tuple[dict, list[mapping.Entry]]:
  """torchvision / timm ResNet weights into the per-frame backbone of LRCN, single_frame or yolo."""
  from vidjax.pretrained import resnet
  backbone = config.model[config.model.name].backbone
  if not backbone.startswith('resnet'):
    raise UserError(f"model.{config.model.name}.backbone='{backbone}' has no published weights; "
                    f"set --config.model.{config.model.name}.backbone=resnet18 (or resnet50) to "
                    'load a torchvision / timm ResNet')
  return resnet.convert_resnet(arrays, fresh)


def _space_time(arrays: dict, fresh: Any, config, vidjax_image: bool = False):
  """timm / big_vision ViTs, official TimeSformer files, or a vidjax image transformer."""
  from vidjax.pretrained import vit, vit_formats, vit_vidjax
  inflation = config.init.inflation
  if not vidjax_image:
    return vit_formats.convert_space_time(arrays, fresh, config, tubelet_init=inflation)
  model = vit_formats.configured_model(fresh, config)
  return vit.to_space_time(vit_vidjax.read(arrays), model, fresh, tubelet_init=inflation)


def _families() -> dict[str, Converter]:
  return {'lrcn': _resnet_backbone, 'single_frame': _resnet_backbone, 'yolo': _resnet_backbone,
          'space_time_attention': _space_time}


def _converter(config) -> Converter:
  """The converter of `config.model.name`, or a one-line error naming those there are."""
  families = _families()
  name = config.model.name
  if name not in families:
    raise UserError(f"no converter from published checkpoints to model '{name}'; those with one: "
                    f"{', '.join(sorted(families)) or 'none'} (a vidjax workdir works for any model)")
  return families[name]


def convert_arrays(arrays: dict, fresh: Any, config, **options) -> tuple[dict, list[mapping.Entry]]:
  """(flat parameters, entries) of arrays already read (`convert_file`'s, or a vidjax image
  transformer's parameters)."""
  from vidjax.pretrained import init_from
  params, entries = _converter(config)(arrays, fresh, config, **options)
  return init_from.flatten(params), [_without_params_prefix(e) for e in entries]


def _without_params_prefix(entry: mapping.Entry) -> mapping.Entry:
  if entry.target.startswith('params/'):
    return dataclasses.replace(entry, target=entry.target[len('params/'):])
  return entry


def convert_file(path: pathlib.Path, fresh: Any, config) -> tuple[dict, list[mapping.Entry]]:
  from vidjax.pretrained import checkpoint_files
  _converter(config)  # An unsupported model fails before the file is read.
  return convert_arrays(checkpoint_files.load_arrays(path), fresh, config)
