"""The one model registry: `config.model.name` -> a Flax module class and its config block.

Adding a model family is its module (the class and a `default_config()` that
declares its keys beside its code) plus one line in `FAMILIES`. The family's
keyword arguments are the keys of `config.model.<name>`; the shared ones
(`dtype`, `remat`) come from `config.model` itself. Five kinds of output:
- 'classifier': video [B, T, H, W, C] -> logits [B, K] (task 'classification');
- 'forecaster': observed frames [B, T_in, H, W, C] -> logits of the next
  `num_future` frames [B, T_out, H, W, C] (task 'frame_prediction');
- 'detector': snippet features [B, T, C] and their mask -> per-step class
  scores, boundary offsets and frame-wise labels (task 'localization');
- 'box_detector': video [B, T, H, W, C] -> per-anchor class, objectness and
  box logits of the clip's last frame (task 'detection'). A kind apart from
  'detector': the input (frames, not snippet features) and the outputs differ,
  so each task's builder accepts only the models that fit it;
- 'denoiser': noisy frames [B, T, H, W, C] and a noise map [B, H, W, 1] ->
  {'denoised' [B, H, W, C] centre frame, 'kl' [B]} (task 'denoising').
"""
from __future__ import annotations

import dataclasses
import difflib
from typing import Callable

import jax.numpy as jnp
import ml_collections

from vidjax.errors import UserError

from vidjax.models import (convlstm, denoisers, fc_lstm, forecasters, lrcn, single_frame,
                           space_time_attention, temporal_detector, yolo)
from vidjax.models.convlstm import ConvLSTMClassifier
from vidjax.models.denoisers import DenoisingVAE, FastDVDNet
from vidjax.models.fc_lstm import FCLSTMForecaster
from vidjax.models.forecasters import PatchedConvLSTMForecaster
from vidjax.models.lrcn import LRCN
from vidjax.models.single_frame import SingleFrame
from vidjax.models.space_time_attention import SpaceTimeTransformer
from vidjax.models.temporal_detector import TemporalDetector
from vidjax.models.yolo import YoloDetector


@dataclasses.dataclass(frozen=True)
class Family:
  """A model family: its module class, its config block and the kind of output it gives."""
  cls: type  # The Flax module; `default_config()`'s keys are its keyword arguments.
  default_config: Callable[[], ml_collections.ConfigDict]
  output: str  # classifier | forecaster | detector | box_detector | denoiser

  def __post_init__(self):
    if self.output not in ('classifier', 'forecaster', 'detector', 'box_detector', 'denoiser'):
      raise ValueError(f"{self.cls.__name__}: output must be 'classifier', 'forecaster', "
                       "'detector', 'box_detector' or 'denoiser'")


FAMILIES = {  # One line per family, in the order of config.model's blocks.
    'lrcn': Family(LRCN, lrcn.default_config, 'classifier'),
    'single_frame': Family(SingleFrame, single_frame.default_config, 'classifier'),
    'convlstm': Family(ConvLSTMClassifier, convlstm.default_config, 'classifier'),
    'space_time_attention': Family(SpaceTimeTransformer, space_time_attention.default_config, 'classifier'),
    'convlstm_forecaster': Family(PatchedConvLSTMForecaster, forecasters.default_config, 'forecaster'),
    'fc_lstm': Family(FCLSTMForecaster, fc_lstm.default_config, 'forecaster'),
    'temporal_detector': Family(TemporalDetector, temporal_detector.default_config, 'detector'),
    'yolo': Family(YoloDetector, yolo.default_config, 'box_detector'),
    'fastdvdnet': Family(FastDVDNet, denoisers.fastdvdnet_default_config, 'denoiser'),
    'denoising_vae': Family(DenoisingVAE, denoisers.denoising_vae_default_config, 'denoiser'),
}

CLASSIFIERS = {name: f.cls for name, f in FAMILIES.items() if f.output == 'classifier'}
FORECASTERS = {name: f.cls for name, f in FAMILIES.items() if f.output == 'forecaster'}
DETECTORS = {name: f.cls for name, f in FAMILIES.items() if f.output == 'detector'}
BOX_DETECTORS = {name: f.cls for name, f in FAMILIES.items() if f.output == 'box_detector'}
DENOISERS = {name: f.cls for name, f in FAMILIES.items() if f.output == 'denoiser'}


def default_configs() -> dict[str, ml_collections.ConfigDict]:
  """Every family's block, fresh, for configs/default.py's `config.model.<name>`."""
  return {name: f.default_config() for name, f in FAMILIES.items()}


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


def build_detector(model_config, num_classes: int, registry=None):
  """The temporal detector `model_config.name` (see `DETECTORS`), for `num_classes` actions."""
  return _build(model_config, DETECTORS if registry is None else registry,
                num_classes=num_classes)


def build_box_detector(model_config, num_classes: int, registry=None):
  """The box detector `model_config.name` (see `BOX_DETECTORS`), for `num_classes` classes."""
  return _build(model_config, BOX_DETECTORS if registry is None else registry,
                num_classes=num_classes)


def build_denoiser(model_config, registry=None):
  """The denoiser `model_config.name` (see `DENOISERS`)."""
  return _build(model_config, DENOISERS if registry is None else registry)
