"""ViViT-B unfactorised (model 1, joint space-time attention) on Kinetics-400, at the paper's scale.

  python -m vidjax.main --config configs/vivit_b_k400.py --workdir runs/vivit_b_k400 \\
      --config.data.root=/path/to/kinetics400
  python -m vidjax.main --config configs/vivit_b_k400.py --workdir runs/vivit_b_k400_scenic \\
      --mode evaluate --config.init.checkpoint=checkpoint --config.data.root=/path/to/kinetics400
      # scenic's released ViViT-B/16x2 Kinetics-400 model (its zoo: 79.9 with 4x3 views)

Paper (PAPERS.md; Table 2, model 1): 80.0 top-1 on K400, 455.2 GFLOPs, 88.9M
parameters. Everything but the model is configs/vivit_b_fe_k400.py's
(data, protocol, views, augmentation and its stated differences), as in
scenic, whose kinetics400/vivit_base_k400.py differs from its factorised
encoder config only in the model and the learning rate (0.1, not 0.05).

Architecture, as scenic's: one ViT-B encoder (12 layers, width 768, 12
heads, MLP 3072, CLS) over all 16 x 14 x 14 = 3,136 tubelet tokens, with one
learned position embedding per token (`position_embedding='space_time'`; a
separable space + time embedding cannot hold scenic's checkpoints). From the
ImageNet-21K ViT-B/16, the embedding is the image grid repeated on every
frame (scenic's `positional_embed_size_change='tile'`) and the tubelet kernel
the central frame's. Cost grows as (T*N)^2 (README: Performance, Scaling).
Not run here: a GPU/TPU job, about 1.6x the factorised encoder's FLOPs.
"""
from vidjax.configs import vivit_b_fe_k400


def get_config():
  config = vivit_b_fe_k400.get_config()
  vit = config.model.space_time_attention
  vit.attention = 'joint'
  vit.position_embedding = 'space_time'
  config.optim.learning_rate = 0.1
  return config
