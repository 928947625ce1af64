"""Factorized space-time attention on the embedded action set.

`--config configs/space_time_attention.py:PATTERN` picks the pattern:
  divided (default)          TimeSformer divided space-time attention
  joint                      TimeSformer joint space-time attention (all T*N tokens)
  space_only                 TimeSformer space-only, no time embedding: order-blind
  factorized_encoder         ViViT model 2: spatial encoder per frame, then temporal
  factorized_self_attention  ViViT model 3: spatial then temporal attention per block
Small: 8x8 patches of 64x64 frames (64 tokens per frame), width 64, 4 layers.
Joint attention uses 2-frame tubelets (256 tokens) to stay affordable on CPU.
"""
from configs import default

PATTERNS = ('divided', 'joint', 'space_only', 'factorized_encoder', 'factorized_self_attention')


def get_config(pattern: str = 'divided'):
  if pattern not in PATTERNS:
    raise ValueError(f"unknown attention pattern '{pattern}'; use one of {', '.join(PATTERNS)}")
  config = default.get_config()
  config.model.name = 'space_time_attention'
  config.model.space_time_attention.attention = pattern
  if pattern == 'joint':
    config.model.space_time_attention.tubelet_size = 2
  if pattern == 'factorized_self_attention':
    # ViViT model 3 has no CLS token; with one, the last block's temporal attention,
    # which runs after its spatial attention, could never reach the CLS output.
    config.model.space_time_attention.pooling = 'mean'
  config.optim.learning_rate = 1e-3
  return config
