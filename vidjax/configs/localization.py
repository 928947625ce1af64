"""Temporal action localization and segmentation on the embedded untrimmed set.

  python -m vidjax.main --config configs/untrimmed_backbone.py --workdir runs/untrimmed/backbone
  python -m vidjax.main --config configs/untrimmed_backbone.py --workdir runs/untrimmed/backbone \\
      --mode extract
  python -m vidjax.main --config configs/localization.py --workdir runs/untrimmed/detector

Stage 3 of the pipeline (stages 1-2: configs/untrimmed_backbone.py): an
ActionFormer-family detector on the ConvLSTM snippet features (every 4 frames,
16-frame windows, 8 fps), scored like THUMOS14: mAP at tIoU 0.3:0.1:0.7 with
ActivityNet's evaluator semantics, and MS-TCN's frame accuracy, edit and
F1@{10,25,50} from its segmentation head. experiments/localization_table.py
runs all three stages, the sliding-window baseline, and writes the table.
Expected (README, 2 CPU cores): test average mAP >= 0.70, F1@50 >= 0.70.
"""
from vidjax.configs import default


def get_config():
  config = default.get_config()
  config.task = 'localization'
  config.data.dataset = 'synthetic_untrimmed'
  config.model.name = 'temporal_detector'
  config.model.temporal_detector.embed_dim = 128
  config.model.temporal_detector.block = 'attention'
  config.model.temporal_detector.levels = 5
  config.model.temporal_detector.window = 9
  config.localization.features_dir = 'runs/untrimmed/features'
  config.localization.max_seq_len = 256  # 1,024 frames at stride 4.
  config.localization.regression_ranges = ((0, 4), (4, 8), (8, 16), (16, 32), (32, 10000))
  config.localization.backbone_config = 'configs/untrimmed_backbone.py'
  config.localization.backbone_workdir = 'runs/untrimmed/backbone'
  config.optim.learning_rate = 1e-3
  config.optim.weight_decay = 0.05
  config.optim.warmup_steps = 100
  config.optim.label_smoothing = 0.0
  config.train.batch_size = 8
  config.train.num_steps = 1500
  config.train.eval_every = 500
  config.train.checkpoint_every = 500
  config.eval.batch_size = 8
  return config
