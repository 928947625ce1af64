"""The model registries: `config.model.name` -> a Flax module class.

Two registries, one per kind of output:
- `CLASSIFIERS`: video [B, T, H, W, C] -> logits [B, K] (task 'classification');
- `FORECASTERS`: observed frames [B, T_in, H, W, C] -> logits of the next
  `num_future` frames [B, T_out, H, W, C] (task 'frame_prediction').

Each family's keyword arguments are the keys of `config.model.<name>`; the
shared ones (`dtype`, `remat`) come from `config.model` itself.
"""
from __future__ import annotations

import dataclasses
import difflib

import jax.numpy as jnp

from vidjax.errors import UserError

from vidjax.models.convlstm import ConvLSTMClassifier
from vidjax.models.fc_lstm import FCLSTMForecaster
from vidjax.models.forecasters import PatchedConvLSTMForecaster
from vidjax.models.lrcn import LRCN
from vidjax.models.single_frame import SingleFrame
from vidjax.models.space_time_attention import SpaceTimeTransformer

CLASSIFIERS = {
    'lrcn': LRCN,
    'single_frame': SingleFrame,
    'convlstm': ConvLSTMClassifier,
    'space_time_attention': SpaceTimeTransformer,
}

FORECASTERS = {
    'convlstm_forecaster': PatchedConvLSTMForecaster,  # Shi et al. 2015
    'fc_lstm': FCLSTMForecaster,  # Srivastava et al. 2015, Shi et al.'s baseline
}


def _dtype(name):
  try:
    return jnp.dtype(name)
  except TypeError:
    raise UserError(f"unknown dtype '{name}'; use float32 or bfloat16") from None


def _build(model_config, registry, **fixed):
  """Instantiates `model_config.name` from `registry` with its section of the config."""
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
  shared = {'dtype': _dtype(model_config.dtype)}
  if 'remat' in fields:
    shared['remat'] = model_config.remat
  elif model_config.remat:
    raise UserError(f"model '{name}' has no remat option; set model.remat=false")
  return cls(**fixed, **shared, **kwargs)


def build_model(model_config, num_classes: int, registry=None):
  """The classifier `model_config.name`, with `num_classes` outputs."""
  return _build(model_config, CLASSIFIERS if registry is None else registry,
                num_classes=num_classes)


def build_forecaster(model_config, registry=None):
  """The frame predictor `model_config.name` (see `FORECASTERS`)."""
  return _build(model_config, FORECASTERS if registry is None else registry)
