"""LRCN-fc6 on UCF-101 split 1, RGB (Donahue et al. 2015), at the paper's input scale.

  python -m vidjax.main --config configs/lrcn_ucf101.py --workdir runs/lrcn_ucf101 \\
      --config.data.root=/path/to/ucf101

Layout under data.root (vidjax/data/datasets.py `load_ucf101`), as
distributed: ucfTrainTestlist/{classInd.txt, trainlist01.txt, testlist01.txt}
and UCF-101/ClassName/v_ClassName_gXX_cYY.avi. `--config.data.ucf101_fold=2`
(or 3) picks another official split; the split has no validation set, so
evaluation reads 'test'.

Paper (PAPERS.md; Table 1, RGB): LRCN-fc6 68.20% top-1, single frame 67.37%,
the average over the 3 splits (PAPERS.md gives no split-1 figure). Protocol
(the authors' Caffe code, LisaAnne/lisa-caffe-public LRCN_activity_recognition):
16-frame clips of consecutive frames, 227x227 random crops of the 320x240
frames with mirroring; a CaffeNet pretrained on ImageNet (then fine-tuned as
the single-frame model) feeds its fc6 (4096-d, dropout 0.9) to one LSTM of
256 units, dropout 0.5, a softmax at every step; SGD momentum 0.9, lr 0.001
(/10 every 10k iterations), weight decay 0.005, gradients clipped at 5, 24
clips per batch; the released RGB model is at iteration 30k. Test: 16-frame
clips every 8 frames, 10 crops each (corners and centre, mirrored),
probabilities averaged over steps, crops and clips: video-level accuracy on
the 3,783 test videos of split 1.

Here: the same clips, crops, LSTM, dropout after it, optimiser and budget,
with these differences (vidjax has no other way to say them):
- The CNN is vidjax's FrameCNN (vidjax/models/cnn.py), not CaffeNet: six
  strided 3x3 conv + GroupNorm stages (227 -> 4x4x256), flattened into a
  4096-d embedding standing in for fc6, without fc6's dropout.
  23,407,013 parameters in all (tests/test_full_scale_configs.py prints it).
- No ImageNet pretraining: vidjax provides none, so the CNN learns from
  scratch on 9.5k videos with a fine-tuning learning rate: expect well below
  68.2%. This config has not been run, so by how much is not known.
- head 'mean' averages the LSTM's outputs over the 16 steps, then one linear
  head and one loss per clip; the paper has a loss at every step and
  averages the per-step probabilities at test time.
- The lr schedule is cosine, not steps: optim.schedule has cosine and constant.
- Test views are 10 evenly spread clips x 3 crops (left, centre, right of the
  240-px short side), not every 8th frame x 10 crops; UCF-101 videos average
  ~180 frames (7 s at 25 fps), which 10 clips of 16 frames about cover.
- Pixels are normalised with ImageNet's mean and std, not Caffe's BGR mean.

Hardware: one GPU; the budget is 30k steps of 24 clips of 16x227x227.
"""
from vidjax.configs import default

FRAME_AREA = 240 * 320  # Every UCF-101 video is 320x240.
CROP = 227


def get_config():
  config = default.get_config()

  data = config.data
  data.dataset = 'ucf101'
  data.ucf101_fold = 1
  data.train_split = 'train'
  data.eval_split = 'test'
  data.test_split = 'test'
  data.num_frames = 16
  data.frame_stride = 1
  data.height = CROP
  data.width = CROP
  # A plain random 227x227 crop of the 320x240 frame: an Inception crop with one area and ratio.
  data.train_crop = 'random_resized'
  data.train_short_side = 240
  data.crop_scale = (CROP**2 / FRAME_AREA, CROP**2 / FRAME_AREA)
  data.crop_ratio = (1.0, 1.0)
  data.flip = True
  data.eval_num_clips = 10
  data.eval_crop = 'three'
  data.eval_short_side = 240
  data.mean = (0.485, 0.456, 0.406)
  data.std = (0.229, 0.224, 0.225)

  config.model.name = 'lrcn'
  lrcn = config.model.lrcn
  lrcn.cnn_features = (64, 128, 256, 256, 256, 256)  # 227 -> 114 -> 57 -> 29 -> 15 -> 8 -> 4.
  lrcn.cnn_embed_dim = 4096  # fc6's width.
  lrcn.lstm_hidden_size = 256
  lrcn.lstm_layers = 1
  lrcn.bidirectional = False
  lrcn.head = 'mean'
  lrcn.dropout = 0.5
  lrcn.frames_per_call = 0  # One CNN call on all B*T frames: the fast way on GPU/TPU.

  optim = config.optim
  optim.name = 'sgd'
  optim.learning_rate = 1e-3
  optim.momentum = 0.9
  optim.weight_decay = 5e-3
  optim.schedule = 'cosine'
  optim.warmup_steps = 0
  optim.grad_clip_norm = 5.0
  optim.label_smoothing = 0.0

  config.train.batch_size = 24
  config.train.num_steps = 30_000
  config.train.log_every = 100
  config.train.eval_every = 5_000
  config.train.checkpoint_every = 1_000
  config.eval.batch_size = 48  # 30 views per video; a multiple of 8 devices.
  return config
