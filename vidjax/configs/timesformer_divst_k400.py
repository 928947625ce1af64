"""TimeSformer-divST 8x32 224 on Kinetics-400 (Bertasius et al. 2021), at the paper's scale.

  python -m vidjax.main --config configs/timesformer_divst_k400.py \\
      --workdir runs/timesformer_divst_k400 --config.data.root=/path/to/kinetics400

Layout under data.root (vidjax/data/datasets.py `load_kinetics`):
annotations/{train,val}.csv (validate.csv also read) with the columns
label,youtube_id,time_start,time_end,split, and the clips at
{train,val}/{label}/{youtube_id}_{start:06d}_{end:06d}.mp4 (label folders with
'_' for ' ', or flat {split}/ folders, also found). Clips missing from your
copy are skipped and reported. K400 results are reported on the validation
set, so the final 'test' evaluation reads 'val' too.

Paper (PAPERS.md; Table 1, divided space-time, K400): 78.0 top-1 / 93.7 top-5,
121.4M parameters, 0.59 TFLOPs for the 3 test views, 416 V100-hours of
training. The official zoo lists 77.9, MMAction2's reproduction 77.69.
Protocol: 8 frames sampled every 32nd frame (clip-level input 8x224x224),
ViT-B/16 initialised from ImageNet-21K; test on 1 temporal clip x 3 spatial
crops (224 short side, left/centre/right 224x224), softmax averaged per
video; video-level top-1 on the ~20k validation videos.

Recipe, from the official TimeSformer_divST_8x32_224.yaml: SGD momentum 0.9
(vidjax's is Nesterov, as is SlowFast's default), lr 0.005 for batch 64
(8 per GPU x 8 GPUs), weight decay 1e-4, 15 epochs, no warmup, no gradient
clipping, plain cross-entropy, stochastic depth 0.1 (the official ViT-B),
short side jittered in [256, 320] then a random 224 crop, horizontal flip,
mean / std 0.45 / 0.225. Differences, because vidjax cannot express them:
- The lr schedule is cosine over the 15 epochs, not the paper's steps
  (/10 at epochs 11 and 14): optim.schedule has only cosine and constant.
- The scale jitter is a square Inception crop of 27.6-43.1% of the area of a
  frame decoded at short side 320, resized to 224: for 16:9 frames (YouTube's)
  exactly the paper's short side 256-320 then a 224 crop; for 4:3 frames a
  194-243 px square, as if the short side were 295-369.
- One epoch is taken as 240,000 clips (3,750 steps of 64): copies of K400
  differ as videos leave YouTube; set train.num_steps = 15 x your count / 64.
- The model has 121,565,584 parameters (0.14% from the paper's 121.4M, which
  rounds): with `temporal_fc` on, each divided block has the official code's
  768x768 linear after temporal attention, zero-initialised after the first
  block (tests/test_full_scale_configs.py checks the count).
- ImageNet initialisation, as the official code does it: init.checkpoint is
  the ViT-B/16 file the official TimeSformer downloads (timm's
  jx_vit_base_p16_224-80ecf9dd.pth, ImageNet-21K pretrained then ImageNet-1K
  fine-tuned; https://github.com/rwightman/pytorch-image-models/releases/
  download/v0.1-vitjx/jx_vit_base_p16_224-80ecf9dd.pth), read from
  pretrained/ under the working directory (or --config.init.checkpoint=PATH).
  Temporal attention starts as a copy of the spatial one, its temporal_fc and
  the time embedding at zero, the position embedding as is (14x14), a new
  400-class head; exact erf GELU as timm. vidjax/pretrained/vit.py says where
  this differs from the official loader (its block 0 temporal_fc is random).
  This config has not been run, so how close it comes to 78.0 is not known.

Hardware: a GPU/TPU job (about 2e18 FLOPs of training: 3 x 196 GFLOPs per
clip x 15 epochs x 240k clips), for 8 accelerators with the batch split over
them (mesh.data=-1); --config.model.dtype=bfloat16 cuts activation memory
and time. Give the input pipeline plenty of CPU cores (data.num_workers).
"""
from vidjax.configs import default

TRAIN_VIDEOS = 240_000  # One K400 epoch; copies differ (see above).
BATCH_SIZE = 64
EPOCHS = 15


def get_config():
  config = default.get_config()
  steps_per_epoch = TRAIN_VIDEOS // BATCH_SIZE

  data = config.data
  data.dataset = 'kinetics'
  data.eval_split = 'val'
  data.test_split = 'val'  # K400 numbers are on the validation set.
  data.num_frames = 8
  data.frame_stride = 32
  data.short_videos = 'pad'  # SlowFast clamps indices past the end: the last frame repeats.
  data.height = 224
  data.width = 224
  data.train_crop = 'random_resized'
  data.train_short_side = 320
  data.crop_scale = (0.276, 0.431)  # 224^2 / (320 x 569) .. 280^2 / (320 x 569).
  data.crop_ratio = (1.0, 1.0)
  data.flip = True
  data.eval_num_clips = 1
  data.eval_crop = 'three'
  data.eval_short_side = 224
  data.mean = (0.45, 0.45, 0.45)
  data.std = (0.225, 0.225, 0.225)

  config.model.name = 'space_time_attention'
  vit = config.model.space_time_attention
  vit.attention = 'divided'
  vit.patch_size = 16
  vit.tubelet_size = 1
  vit.hidden_size = 768
  vit.num_layers = 12
  vit.num_heads = 12
  vit.mlp_dim = 3072
  vit.pooling = 'cls'
  vit.temporal_fc = True  # The official block's extra linear (see above).
  vit.approximate_gelu = False  # timm's ViT: exact erf GELU.
  config.init.checkpoint = 'pretrained/jx_vit_base_p16_224-80ecf9dd.pth'
  config.init.reinit_head = True  # ImageNet's 1,000 classes -> Kinetics' 400.
  vit.time_embedding = None  # Learned, added to the patch tokens.
  vit.dropout = 0.0
  vit.stochastic_depth = 0.1

  optim = config.optim
  optim.name = 'sgd'
  optim.learning_rate = 0.005
  optim.momentum = 0.9
  optim.weight_decay = 1e-4
  optim.schedule = 'cosine'  # The paper steps down at epochs 11 and 14 (see above).
  optim.warmup_steps = 0
  optim.grad_clip_norm = 0.0
  optim.label_smoothing = 0.0

  config.train.batch_size = BATCH_SIZE
  config.train.num_steps = EPOCHS * steps_per_epoch
  config.train.log_every = 100
  config.train.eval_every = 5 * steps_per_epoch  # The official EVAL_PERIOD: 5 epochs.
  config.train.checkpoint_every = 1_000
  config.eval.batch_size = 48  # 16 videos x 3 views.
  return config
