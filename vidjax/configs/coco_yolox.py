"""YOLOX-S on COCO 2017 at 640x640: the full-scale detection config (not run here).

  python -m vidjax.main --config configs/coco_yolox.py --workdir runs/coco_yolox \\
      --config.data.root=/data/coco   # annotations/instances_{train,val}2017.json, {train,val}2017/

YOLOX-S's sizes (Ge et al. 2021, width 0.50, depth 0.33): backbone widths
64-512 with one bottleneck per CSP block, strides 8/16/32, heads 128 wide;
about 9M parameters (tests/test_detection_task.py counts them). Its
schedule: 300 epochs of 118k images at batch 128 (277k steps), SGD with
Nesterov momentum 0.9, lr 0.01 per 64 images, weight decay 5e-4, 5 warm-up
epochs, cosine decay. Evaluated on val2017 (COCO's test-dev needs its
server). What differs from YOLOX: GroupNorm instead of BatchNorm, and no
mosaic, mixup, random affine or HSV augmentation (the pipeline scales whole
frames; flips are on), so expect less than YOLOX-S's 40.5 mAP.
"""
from vidjax.configs import default


def get_config():
  config = default.get_config()
  config.task = 'detection'
  config.data.dataset = 'coco'
  config.data.train_split = 'train2017'
  config.data.eval_split = 'val2017'
  config.data.test_split = 'val2017'
  config.data.num_frames = 1
  config.data.frame_stride = 1
  config.data.height = 640
  config.data.width = 640
  config.data.flip = True
  config.data.flip_label_map = False
  config.data.mean = (0.485, 0.456, 0.406)
  config.data.std = (0.229, 0.224, 0.225)
  config.model.name = 'yolo'
  config.model.yolo.widths = (64, 128, 256, 512)
  config.model.yolo.depth = 1
  config.model.yolo.strides = (8, 16, 32)
  config.model.yolo.temporal = 'none'
  config.detection.max_boxes = 120  # COCO train2017's most crowded image has 93 boxes.
  config.detection.score_threshold = 0.001  # YOLOX's test-time threshold.
  config.detection.nms_iou_threshold = 0.65
  config.optim.name = 'sgd'
  config.optim.learning_rate = 0.02  # 0.01 per 64 images.
  config.optim.momentum = 0.9
  config.optim.weight_decay = 5e-4
  config.optim.warmup_steps = 4_620  # 5 epochs.
  config.optim.schedule = 'cosine'
  config.optim.grad_clip_norm = 0.0
  config.optim.label_smoothing = 0.0
  config.train.batch_size = 128
  config.train.num_steps = 277_200  # 300 epochs of 118,287 images.
  config.train.log_every = 100
  config.train.eval_every = 9_240  # 10 epochs.
  config.train.checkpoint_every = 2_000
  config.eval.batch_size = 64
  return config
