"""FastDVDnet at the paper's recipe on DAVIS-2017 (Tassano et al., CVPR 2020): full scale.

Not run here (it needs DAVIS-2017 and days of a CPU; hours of a GPU); tests/test_denoising_task.py
checks that it loads, builds and matches the recipe below. Point data.root at the unpacked
DAVIS-2017 trainval + test-dev folders (JPEGImages/480p/<seq>/%05d.jpg, ImageSets/2017/*.txt):

  python -m vidjax.main --config configs/davis_fastdvdnet.py --workdir runs/davis_fastdvdnet \
      --config.data.root=/data/DAVIS

The recipe, and where we differ:
  - model: FastDVDnet's widths (32, 64, 128) and 30 channels per frame after the input conv,
    5 frames, noise map input; GroupNorm where FastDVDnet has batch norm (the loop carries no
    batch statistics): 2,479,870 parameters against the original's 2,477,642 convolution and 4,456 batch-norm parameters.
  - data: random 96x96 patches of 5 consecutive frames from the 90 train sequences (480p),
    horizontal flips; AWGN with sigma uniform in [5, 55] on the 0-255 scale, one non-blind model.
  - optimisation: Adam at 1e-3, batch 64, 80 epochs of 256,000 patches (320,000 steps).
    FastDVDnet divides the learning rate by 10 at epochs 50 and 60; this uses a cosine decay
    over the same steps (vidjax's schedules are cosine or constant).
  - evaluation: DAVIS-2017 val at 480p at sigma 30 while training; the test-dev sequences at
    sigma 10-50 at the end, every frame, PSNR / SSIM per frame, per sequence, then over
    sequences. FastDVDnet reports 34.04 dB at sigma 30 on DAVIS (README, Video denoising).
"""
from vidjax.configs import denoising


def get_config():
  config = denoising.get_config('fastdvdnet')
  data = config.data
  data.dataset = 'davis2017'
  data.root = ''  # Required: the DAVIS-2017 folder.
  data.train_split, data.eval_split, data.test_split = 'train', 'val', 'test'
  data.height = data.width = 96
  fdv = config.model.fastdvdnet
  fdv.features = (32, 64, 128)
  fdv.interm = 30
  config.denoise.train_sigma = (5.0, 55.0)
  config.optim.learning_rate = 1e-3
  config.optim.warmup_steps = 0
  config.optim.schedule = 'cosine'
  config.optim.grad_clip_norm = 0.0
  config.train.batch_size = 64
  config.eval.batch_size = 16
  config.train.num_steps = 80 * 256_000 // 64  # 80 epochs of 256,000 patches.
  config.train.log_every = 500
  config.train.eval_every = 4000  # One FastDVDnet epoch.
  config.train.checkpoint_every = 4000
  return config
