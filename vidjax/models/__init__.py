"""The model registry: `config.model.name` -> a Flax module class.

Each family's keyword arguments are the keys of `config.model.<name>`; the
shared ones (`dtype`, `remat`) come from `config.model` itself.
"""
from __future__ import annotations

import dataclasses
import difflib

import jax.numpy as jnp

from vidjax.errors import UserError

from vidjax.models.convlstm import ConvLSTMClassifier
from vidjax.models.lrcn import LRCN
from vidjax.models.single_frame import SingleFrame
from vidjax.models.space_time_attention import SpaceTimeTransformer

CLASSIFIERS = {
    'lrcn': LRCN,
    'single_frame': SingleFrame,
    'convlstm': ConvLSTMClassifier,
    'space_time_attention': SpaceTimeTransformer,
}


def _dtype(name):
  try:
    return jnp.dtype(name)
  except TypeError:
    raise UserError(f"unknown dtype '{name}'; use float32 or bfloat16") from None


def build_model(model_config, num_classes: int, registry=None):
  """Instantiates `model_config.name` with its section of the config."""
  registry = CLASSIFIERS if registry is None else registry
  name = model_config.name
  if name not in registry:
    match = difflib.get_close_matches(name, list(registry), n=1)
    hint = f" (did you mean '{match[0]}'?)" if match else ''
    raise UserError(f"unknown model '{name}'{hint}; choose one of {', '.join(sorted(registry))}")
  cls = registry[name]
  kwargs = dict(model_config[name]) if name in model_config else {}
  fields = {f.name for f in dataclasses.fields(cls)}
  for key in kwargs:
    if key not in fields:
      raise UserError(f"model '{name}' has no option '{key}'")
  kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
  return cls(num_classes=num_classes, dtype=_dtype(model_config.dtype),
             remat=model_config.remat, **kwargs)
