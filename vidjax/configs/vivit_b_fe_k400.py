"""ViViT-B factorised encoder (model 2) on Kinetics-400 (Arnab et al. 2021), at the paper's scale.

  python -m vidjax.main --config configs/vivit_b_fe_k400.py --workdir runs/vivit_b_fe_k400 \\
      --config.data.root=/path/to/kinetics400

Layout under data.root (vidjax/data/datasets.py `load_kinetics`):
annotations/{train,val}.csv (validate.csv also read) with the columns
label,youtube_id,time_start,time_end,split, and the clips at
{train,val}/{label}/{youtube_id}_{start:06d}_{end:06d}.mp4 (label folders with
'_' for ' ', or flat {split}/ folders, also found). Clips missing from your
copy are skipped and reported. K400 results are reported on the validation
set, so the final 'test' evaluation reads 'val' too.

Paper (PAPERS.md; Table 2, model 2): 78.8 top-1 on K400, 284.4 GFLOPs,
115.1M parameters, 17.4 ms runtime on TPU-v3. The scenic zoo lists 78.4
with 4x3 views. Protocol: ViViT-B, 16x16x2 tubelets of 32 frames sampled at
stride 2 (clip-level input 32x224x224), ImageNet-21K initialisation; test on
4 temporal clips x 3 spatial crops (short side 256, left/centre/right
224x224), softmax averaged per video; video-level top-1 on the ~20k
validation videos.

Architecture, as scenic's kinetics400/vivit_base_factorised_encoder.py: a
spatial ViT-B (12 layers, width 768, 12 heads, MLP 3072, CLS) on each
tubelet slice, then a temporal encoder of 4 such layers over the 16 frame
tokens (plus its CLS), with a learned time embedding. Measured here:
115,061,392 parameters with the 400-way head (115.1M in the paper).

Recipe, from the same scenic config: SGD momentum 0.9 (scenic's 'momentum';
vidjax's SGD is Nesterov), lr 0.05 with a linear warmup for 2.5 epochs then
cosine, 30 epochs at batch 64, no weight decay, gradient clipping at global
norm 1, no label smoothing, no dropout or stochastic depth, pixels
zero-centred to [-1, 1], horizontal flip. An epoch is scenic's 214,834
training clips (3,356 steps); set train.num_steps for your copy.
Differences, because vidjax cannot express them:
- Scale jitter (short side 256, scaled by 0.9-1.33, random 224 crop) is a
  square Inception crop of 24.3-53.2% of the area of a frame decoded at short
  side 256, resized to 224: exact for 16:9 frames (YouTube's); for 4:3 frames
  a 146-216 px square, as if scaled by 1.04-1.54.
- scenic's colour augmentation (on 80% of clips, 10% turned grey) is left
  out: vidjax's colour jitter has no probability or colour-drop knob.
- ImageNet-21K initialisation as scenic does it: init.checkpoint is the ViT
  paper's ViT-B/16 (gs://vit_models/imagenet21k/ViT-B_16.npz, the
  google-research/vision_transformer release), read from pretrained/ under
  the working directory (or --config.init.checkpoint=PATH). The spatial
  encoder is the image model, the tubelet kernel its 2D kernel on the central
  frame (init.inflation='central', the paper's best), the temporal encoder
  and the time embedding new, and a new 400-class head (its pre_logits layer
  is ignored). This config has not been run, so how close it comes to 78.8
  is not known.

Hardware: a GPU/TPU job (about 5.5e18 FLOPs of training: 3 x 284.4 GFLOPs per
clip x 30 epochs x 214,834 clips), for 8+ accelerators with the batch split
over them (mesh.data=-1); --config.model.dtype=bfloat16 and model.remat=true
cut activation memory if 8 clips of 32 frames per device do not fit.
"""
from vidjax.configs import default

TRAIN_VIDEOS = 214_834  # scenic's KINETICS_400_TRAIN_SIZE; copies differ.
BATCH_SIZE = 64
EPOCHS = 30


def get_config():
  config = default.get_config()
  steps_per_epoch = TRAIN_VIDEOS // BATCH_SIZE

  data = config.data
  data.dataset = 'kinetics'
  data.eval_split = 'val'
  data.test_split = 'val'  # K400 numbers are on the validation set.
  data.num_frames = 32
  data.frame_stride = 2
  data.height = 224
  data.width = 224
  data.train_crop = 'random_resized'
  data.train_short_side = 256
  data.crop_scale = (0.243, 0.532)  # (224 / 1.33)^2 / (256 x 455) .. (224 / 0.9)^2 / (256 x 455).
  data.crop_ratio = (1.0, 1.0)
  data.flip = True
  data.eval_num_clips = 4
  data.eval_crop = 'three'
  data.eval_short_side = 256
  data.mean = (0.5, 0.5, 0.5)  # scenic's zero_centering: [0, 1] -> [-1, 1].
  data.std = (0.5, 0.5, 0.5)

  config.model.name = 'space_time_attention'
  vit = config.model.space_time_attention
  vit.attention = 'factorized_encoder'
  vit.patch_size = 16
  vit.tubelet_size = 2
  vit.hidden_size = 768
  vit.num_layers = 12  # The spatial encoder.
  vit.num_temporal_layers = 4
  vit.num_heads = 12
  vit.mlp_dim = 3072
  vit.pooling = 'cls'
  vit.time_embedding = None  # Learned, added to the frame tokens of the temporal encoder.
  config.init.checkpoint = 'pretrained/ViT-B_16.npz'
  config.init.reinit_head = True  # ImageNet-21K's 21,843 classes -> Kinetics' 400.
  config.init.inflation = 'central'
  vit.dropout = 0.0
  vit.stochastic_depth = 0.0

  optim = config.optim
  optim.name = 'sgd'
  optim.learning_rate = 0.05
  optim.momentum = 0.9
  optim.weight_decay = 0.0
  optim.schedule = 'cosine'
  optim.warmup_steps = int(2.5 * steps_per_epoch)
  optim.grad_clip_norm = 1.0
  optim.label_smoothing = 0.0

  config.train.batch_size = BATCH_SIZE
  config.train.num_steps = EPOCHS * steps_per_epoch
  config.train.log_every = 100
  config.train.eval_every = 5 * steps_per_epoch  # scenic's log_test_epochs: 5.
  config.train.checkpoint_every = 1_000
  config.eval.batch_size = 48  # 4 videos x 12 views.
  return config
