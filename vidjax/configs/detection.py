"""Object detection and tracking on the embedded synthetic_objects set.

  python -m vidjax.main --config configs/detection.py --workdir runs/detection
  python -m vidjax.main --config configs/detection.py --workdir runs/detection_video \\
      --config.model.yolo.temporal=attention --config.data.num_frames=4   # 4 frames of context
  python -m vidjax.main --config configs/detection.py --workdir runs/detection \\
      --mode predict --video clip.mp4   # predictions/clip_{tracks.mp4,mot.txt,coco.json}
  python -m vidjax.main --config configs/detection.py:resnet18 --workdir runs/detection_r18
      # torchvision's ImageNet ResNet-18 as the backbone, from pretrained/resnet18-f37072fd.pth

A YOLOX detector at YOLOX-nano's widths (16-128) on the 128x128 frames
upsampled 2x on the device (levels at strides 4/8/16 of the data's pixels),
trained with SimOTA and the YOLOX loss (AdamW at 4e-3, warm-up then cosine);
every frame of the val (periodic) and test (final) videos is detected,
tracked by ByteTrack (class-agnostic, as ByteTrack is), each track's class
voted over its frames, then scored by COCO mAP and by HOTA, MOTA and IDF1.
Flipping stays off: four classes are handwritten digits, which a mirror
turns into shapes the test set never shows.
experiments/detection_table.py and the README give what it reaches and in
how long on 2 CPU cores. The attention row trains fewer steps in about the
same time: its step runs the backbone on 4 frames.
"""
from vidjax.configs import default

# `configs/detection.py:<backbone>` -> the torchvision file its ImageNet weights come from.
PRETRAINED = {'resnet18': 'pretrained/resnet18-f37072fd.pth',
              'resnet50': 'pretrained/resnet50-0676ba61.pth'}


def get_config(backbone: str = 'csp'):
  """'csp' (YOLOX's, from scratch) or a ResNet of PRETRAINED, started from ImageNet."""
  if backbone != 'csp' and backbone not in PRETRAINED:
    raise ValueError(f"configs/detection.py:{backbone}: use csp or one of {', '.join(PRETRAINED)}")
  config = default.get_config()
  config.task = 'detection'
  config.data.dataset = 'synthetic_objects'
  config.data.height = 128
  config.data.width = 128
  # The clip's last frame is detected: the single-frame detector reads that frame alone, the
  # video detector (--config.model.yolo.temporal=attention) needs --config.data.num_frames=4.
  config.data.num_frames = 1
  config.data.frame_stride = 2
  config.data.flip = False
  config.data.color_jitter = (0.2, 0.2, 0.3)  # Colour is each object's own, never its class.
  config.data.mean = (0.5, 0.5, 0.5)
  config.data.std = (0.25, 0.25, 0.25)
  # The train split decodes to 1.35 GB at 128x128: all of it stays decoded after epoch 1.
  config.data.decoded_cache_mb = 1600
  config.model.name = 'yolo'
  # YOLOX-nano's widths on frames upsampled 2x on the device: a digit of 10 px gets 4x the
  # cells. In the measured probes (see the README) this beat twice the widths at 128 px.
  config.model.yolo.widths = (16, 32, 64, 128)
  config.model.yolo.input_scale = 2
  config.model.yolo.temporal = 'none'  # none | mean | attention
  config.detection.max_boxes = 8  # The set has at most 6 boxes per frame.
  # Chosen on the val videos from the trained single-frame detector's boxes (HOTA 0.667 at
  # ByteTrack's MOT17 0.5 / 0.6, 0.679 here); the test split was not looked at to choose.
  config.detection.track_thresh = 0.6
  config.detection.track_new_thresh = 0.8
  # Each tracked box is scored with its track's class, voted over the video (offline; see
  # vidjax/tasks/detection_vote.py): a handwritten 2 read as a 7 in a few frames is a 2 in all.
  # results.json keeps each box's own best class beside it ('box_label_mAP').
  config.detection.label_mode = 'track'
  config.optim.name = 'adamw'
  config.optim.learning_rate = 4e-3
  config.optim.weight_decay = 0.05
  config.optim.warmup_steps = 300
  config.optim.schedule = 'cosine'
  config.optim.grad_clip_norm = 10.0
  config.optim.label_smoothing = 0.0
  config.train.batch_size = 16
  config.train.num_steps = 4000
  config.train.log_every = 50
  config.train.eval_every = 1000
  config.train.checkpoint_every = 500
  config.eval.batch_size = 32
  if backbone != 'csp':
    config.model.yolo.backbone = backbone
    # ImageNet features read small objects at 128 px; the neck takes them at 32-256 channels.
    config.model.yolo.widths = (32, 64, 128, 256)
    config.model.yolo.input_scale = 1
    config.data.mean = (0.485, 0.456, 0.406)  # The ImageNet statistics the weights expect.
    config.data.std = (0.229, 0.224, 0.225)
    config.init.checkpoint = PRETRAINED[backbone]  # The file a user downloads from torchvision.
  return config
