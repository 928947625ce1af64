"""ActionFormer's THUMOS14 recipe on its I3D features, at full scale. Not run here.

  python -m vidjax.main --config configs/thumos14_i3d.py --workdir runs/thumos14 \\
      --config.data.root=/path/to/thumos \\
      --config.localization.features_dir=/path/to/thumos/i3d_features

THUMOS14 cannot be downloaded on the machines vidjax is developed on, so this
config is validated by a test (tests/test_localization_task.py) and has run
nowhere. Layout, as ActionFormer distributes it: data.root/thumos14.json
(ActivityNet-style JSON; subsets 'Validation' = the 200 training videos,
'Test' = the 213 test videos), and features_dir/<video_id>.npy, two-stream
I3D features [T, 2048] taken every 4 frames over 16-frame windows at 30 fps.

Recipe (ActionFormer, Zhang et al. 2022, configs/thumos_i3d.yaml): embed 512,
2 conv embedding layers, 2 stem + 5 downsampling local self-attention blocks
(window 19, 4 heads) = 6 levels, regression ranges 0-4-8-16-32-64-inf,
centre sampling radius 1.5, focal loss and DIoU, AdamW lr 1e-4 weight decay
0.05, batch 2, 30 epochs + 5 warm-up (about 3,500 steps), training windows
of 2,304 snippets; Soft-NMS sigma 0.5, score voting 0.7, 200 segments per
video, 2,000 candidates before NMS. vidjax differences: a cosine schedule
with linear warm-up (ActionFormer's too), no model EMA, the batch-count
normaliser instead of ActionFormer's running average of positives.
Published (PAPERS.md, THUMOS14 test, mAP at tIoU 0.3/0.4/0.5/0.6/0.7):
82.1 / 77.8 / 71.0 / 59.4 / 43.9, mean 66.8.
"""
from vidjax.configs import default


def get_config():
  config = default.get_config()
  config.task = 'localization'
  config.data.dataset = 'activitynet'  # ActionFormer's thumos14.json is ActivityNet-style.
  config.data.annotation_file = 'thumos14.json'
  config.data.train_split = 'validation'
  config.data.eval_split = 'test'
  config.data.test_split = 'test'
  config.model.name = 'temporal_detector'
  d = config.model.temporal_detector
  d.embed_dim, d.embed_layers, d.block, d.stem_blocks, d.levels = 512, 2, 'attention', 2, 6
  d.heads, d.window, d.head_dim, d.head_layers, d.dropout = 4, 19, 512, 2, 0.0
  loc = config.localization
  loc.features_dir = ''  # Set to your I3D features folder.
  loc.feature_stride, loc.feature_window, loc.feature_fps = 4, 16, 30.0
  loc.feature_layout, loc.feature_dim = 'TC', 2048
  loc.max_seq_len = 2304
  loc.regression_ranges = ((0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000))
  loc.center_radius = 1.5
  loc.nms_method, loc.nms_sigma, loc.voting_threshold = 'soft', 0.5, 0.7
  loc.max_segments_per_video, loc.pre_nms_topk, loc.min_score = 200, 2000, 0.001
  config.optim.name = 'adamw'
  config.optim.learning_rate = 1e-4
  config.optim.weight_decay = 0.05
  config.optim.warmup_steps = 500  # 5 epochs of 100 steps.
  config.optim.label_smoothing = 0.0
  config.optim.grad_clip_norm = 1.0
  config.train.batch_size = 2
  config.train.num_steps = 3500
  config.train.eval_every = 500
  config.train.checkpoint_every = 500
  config.eval.batch_size = 1
  return config
