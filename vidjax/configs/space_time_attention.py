"""Factorized space-time attention on the embedded action set.

`--config configs/space_time_attention.py:PATTERN` picks the pattern:
  divided (default)          TimeSformer divided space-time attention
  joint                      TimeSformer joint space-time attention (all T*N tokens)
  space_only                 TimeSformer space-only, no time embedding: order-blind
  factorized_encoder         ViViT model 2: spatial encoder per frame, then temporal
  factorized_self_attention  ViViT model 3: spatial then temporal attention per block
                             (no CLS token: mean pooling, as in ViViT)

Small, because transformers trained from scratch on 3,000 clips learn slowly:
8 frames of 32x32 in 8x8 patches (16 tokens per frame, 128 per clip), width
64, 2 layers (the factorized encoder: 2 spatial + 1 temporal), batch 8 and
3,000 steps. This is the protocol of experiments/timesformer_table1.py and
vivit_table2.py, whose tables (README, Reproductions) hold the measured top-1
and times of every pattern.

The recipe (issue 18): position embeddings start as sines and cosines of the
position, not as noise of std 0.02, and the classifier reads the mean of the
output tokens, not a CLS token (big_vision's plain ViT, Beyer et al. 2022).
With timm's noise start and a CLS token, the divided model sat at chance for
1,000-2,500 steps, a number that changed with the seed, and ended anywhere
from 0.25 to 0.46 test top-1; with this recipe it leaves chance by step
~1,000 on every seed (experiments/attention_recipe.py, README Model zoo).
"""
from vidjax.configs import default

PATTERNS = ('divided', 'joint', 'space_only', 'factorized_encoder', 'factorized_self_attention')


def get_config(pattern: str = 'divided'):
  if pattern not in PATTERNS:
    raise ValueError(f"unknown attention pattern '{pattern}'; use one of {', '.join(PATTERNS)}")
  config = default.get_config()
  config.data.height = 32
  config.data.width = 32
  vit = config.model.space_time_attention
  config.model.name = 'space_time_attention'
  vit.attention = pattern
  vit.patch_size = 8
  vit.tubelet_size = 1
  vit.hidden_size = 64
  vit.num_layers = 2
  vit.num_temporal_layers = 1
  vit.num_heads = 4
  vit.mlp_dim = 256
  # Mean pooling for every pattern (ViViT model 3 has no CLS token anyway: with one, the
  # last block's temporal attention, after its spatial one, could never reach it).
  vit.pooling = 'mean'
  vit.position_init = 'sincos'
  vit.stem = 'conv'
  config.optim.learning_rate = 1e-3
  config.train.batch_size = 8
  config.train.num_steps = 3000
  config.train.log_every = 100
  config.train.eval_every = 1000
  config.train.checkpoint_every = 1000
  return config
