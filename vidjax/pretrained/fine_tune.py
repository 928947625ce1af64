"""What fine-tuning changes in the optimizer: a frozen backbone, and layer-wise learning rates.

Both are functions of a parameter's path, so they need no model-specific code
beyond the names every classifier already uses: the classifier's last layer
is the top-level module `head`, and a transformer's blocks are named
`block_<i>` (space_time_attention.py).

- Linear probing (`init.freeze='backbone'`) freezes the backbone: the
  per-frame network (`cnn`, or a ResNet's `backbone`) of a model that has
  one -- LRCN then trains its LSTM and head on frozen frame features, as
  Donahue et al. did -- and everything but `head` otherwise (a transformer).
  The frozen parameters get no update at all -- not even AdamW's weight
  decay, which would otherwise shrink them with a zero gradient -- and the
  gradient clip measures the trained parameters' gradient alone.
- Layer-wise decay (`optim.layer_decay` < 1, BEiT / MAE fine-tuning) scales
  the update of layer l of L by decay ** (L + 1 - l): the embeddings are
  layer 0, `block_<i>` is layer i + 1, and the rest (final norm, head) is
  layer L + 1 at the full rate. Weight decay is scaled with the rate, as it
  is in a PyTorch parameter group.
"""
from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import optax

from vidjax.errors import UserError

FREEZE_CHOICES = ('none', 'backbone')
FRAME_NETWORKS = ('cnn', 'backbone')  # The per-frame network's module name (models/cnn.py).
_BLOCK = re.compile(r'(?:^|/)block_(\d+)(?:/|$)')
_EMBEDDINGS = ('patch_embedding', 'stem', 'space_embedding', 'time_embedding',
               'space_time_embedding', 'cls', 'spatial_cls', 'temporal_cls')


def path_name(path) -> str:
  """A tree path as 'encoder/block_0/attention/qkv/kernel' (the variables' 'params/' dropped)."""
  keys = [str(getattr(k, 'key', getattr(k, 'idx', k))) for k in path]
  return '/'.join(keys[1:] if keys[:1] == ['params'] else keys)


def flatten_names(params: Any) -> dict[str, Any]:
  """{path_name: leaf} of a tree."""
  return {path_name(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}


def is_head(name: str) -> bool:
  return name == 'head' or name.startswith('head/')


def trainable_labels(params: Any, freeze: str) -> Any:
  """'train' or 'frozen' per leaf of `params`."""
  if freeze not in FREEZE_CHOICES:
    raise UserError(f"init.freeze must be one of {', '.join(FREEZE_CHOICES)}, got '{freeze}'")
  names = list(flatten_names(params))
  frame_networks = {n.split('/')[0] for n in names} & set(FRAME_NETWORKS)

  def frozen(name):
    if freeze == 'none':
      return False
    if frame_networks:
      return name.split('/')[0] in frame_networks
    return not is_head(name)

  labels = jax.tree_util.tree_map_with_path(
      lambda p, _: 'frozen' if frozen(path_name(p)) else 'train', params)
  if freeze == 'backbone' and 'train' not in jax.tree.leaves(labels):
    raise UserError("init.freeze='backbone' trains the 'head' only, and this model has no "
                    "parameter named head; use init.freeze='none'")
  return labels


def layer_of(name: str, num_layers: int) -> int:
  """The layer index of a parameter: 0 embeddings, i + 1 for block_i, num_layers + 1 the rest."""
  block = _BLOCK.search(name)
  if block:
    return int(block.group(1)) + 1
  if name.split('/')[0] in _EMBEDDINGS:
    return 0
  return num_layers + 1


def layer_scales(params: Any, decay: float) -> Any:
  """The learning-rate multiplier of every leaf under layer-wise decay."""
  names = list(flatten_names(params))
  blocks = [int(m.group(1)) for m in map(_BLOCK.search, names) if m]
  if not blocks:
    raise UserError('optim.layer_decay < 1 needs a model with transformer blocks (block_<i>); '
                    'set optim.layer_decay=1.0')
  num_layers = max(blocks) + 1
  return jax.tree_util.tree_map_with_path(
      lambda p, _: decay ** (num_layers + 1 - layer_of(path_name(p), num_layers)), params)


def scale_by_layer(decay: float) -> optax.GradientTransformation:
  """Multiplies each update by its layer's factor (see module doc)."""
  def init(params):
    del params
    return optax.EmptyState()

  def update(updates, state, params=None):
    del params
    scales = layer_scales(updates, decay)
    return jax.tree.map(lambda u, s: u * jnp.asarray(s, u.dtype), updates, scales), state

  return optax.GradientTransformation(init, update)


def wrap(tx: optax.GradientTransformation, *, freeze: str, layer_decay: float):
  """`tx` with layer-wise decay and a frozen backbone, as configured; `tx` itself when neither."""
  if not 0.0 < layer_decay <= 1.0:
    raise UserError(f'optim.layer_decay must be in (0, 1], got {layer_decay}')
  if freeze not in FREEZE_CHOICES:
    raise UserError(f"init.freeze must be one of {', '.join(FREEZE_CHOICES)}, got '{freeze}'")
  if layer_decay < 1.0:
    tx = optax.chain(tx, scale_by_layer(layer_decay))
  if freeze == 'none':
    return tx
  return optax.multi_transform({'train': tx, 'frozen': optax.set_to_zero()},
                               lambda params: trainable_labels(params, freeze))
