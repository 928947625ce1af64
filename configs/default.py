"""The embedded demo, and the one home of every default.

LRCN on the embedded synthetic action set: 12 classes in 6 reversal pairs
(each class is its twin played backwards), rendered to H.264 mp4 on first use.
A model blind to frame order is capped at 50% top-1 here; LRCN reads order.

Every other config starts from `get_config()` here and changes values only:
a key that is not declared below is an error (see vidjax/config.py).

Expected (2 CPU cores, see README): dataset generation plus training in
well under 10 minutes, test top-1 >= 0.9.
"""
import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.task = 'classification'  # classification | frame_prediction

  # Data: files -> decode -> sample -> transform -> batch.
  config.data = ml_collections.ConfigDict()
  config.data.dataset = 'synthetic_actions'  # synthetic_actions | csv | ucf101 | kinetics | ssv2 | moving_mnist
  config.data.root = ''  # '' = the cache dir (~/.cache/vidjax or $VIDJAX_CACHE) for generated sets.
  config.data.train_split = 'train'
  config.data.eval_split = 'val'
  config.data.test_split = 'test'
  config.data.num_frames = 8  # Frames per clip the model sees.
  config.data.frame_stride = 2  # Distance between sampled frames.
  config.data.height = 64  # Frames are resized to this on decode.
  config.data.width = 64
  config.data.mean = (0.5, 0.5, 0.5)  # Normalisation, on device, of pixels in [0, 1].
  config.data.std = (0.25, 0.25, 0.25)
  config.data.num_workers = -1  # Decoding processes; -1 = cores - 1, 0 = in the main process.
  config.data.decode_threads = 1  # decord's num_threads per worker.
  config.data.max_failed_fraction = 0.05  # Stop if more of a split fails to decode.
  # The embedded dataset's size: clips per class in train / val / test.
  config.data.synthetic_clips_per_class = (80, 20, 20)

  # Model: `name` picks the family; each family's keys are its constructor's.
  config.model = ml_collections.ConfigDict()
  config.model.name = 'lrcn'  # lrcn | single_frame
  config.model.dtype = 'float32'  # Compute dtype; parameters stay float32.
  config.model.remat = False  # Recompute activations in the backward pass.
  config.model.lrcn = ml_collections.ConfigDict(dict(
      cnn_features=(16, 32, 64),  # One strided 3x3 conv stage each.
      cnn_embed_dim=256,
      lstm_hidden_size=128,
      lstm_layers=1,
      bidirectional=False,
      head='last',  # last | mean (over time)
      dropout=0.0,
  ))
  config.model.single_frame = ml_collections.ConfigDict(dict(
      cnn_features=(16, 32, 64),
      cnn_embed_dim=256,
      dropout=0.0,
  ))

  # Optimisation.
  config.optim = ml_collections.ConfigDict()
  config.optim.name = 'adamw'  # adamw | sgd | rmsprop
  config.optim.learning_rate = 2e-3  # Peak, after warmup, for the whole batch.
  config.optim.warmup_steps = 50
  config.optim.schedule = 'cosine'  # cosine | constant
  config.optim.weight_decay = 1e-4
  config.optim.momentum = 0.9  # sgd momentum, rmsprop decay.
  config.optim.grad_clip_norm = 1.0  # 0 disables clipping.
  config.optim.label_smoothing = 0.1

  # The loop.
  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 32  # Global, over all devices and processes.
  config.train.num_steps = 800
  config.train.log_every = 20
  config.train.eval_every = 400
  config.train.checkpoint_every = 200
  config.train.max_checkpoints = 3
  config.train.progress_bar = True
  # Stop this invocation after so many steps, with a checkpoint, to go on by
  # running the same command again (time-limited cluster jobs); 0 = no limit.
  config.train.stop_after_steps = 0

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 32

  # Devices: the batch is sharded over the `data` axis of this mesh.
  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1  # -1 = all devices.
  config.mesh.model = 1
  return config
