"""The embedded demo, and the one home of every default.

LRCN on the embedded synthetic action set: 12 classes in 6 reversal pairs
(each class is its twin played backwards), rendered to H.264 mp4 on first use.
A model blind to frame order is capped at 50% top-1 here; LRCN reads order.

Every other config starts from `get_config()` here and changes values only:
a key that is not declared below is an error (see vidjax/config.py). The
common keys are declared here; each model family's block beside its module
(`default_config()`, composed through vidjax/models/__init__.py), and Moving
MNIST's beside its generator (vidjax/data/moving_mnist.py).

Expected (2 CPU cores, see README): dataset generation plus training in
about 7 minutes (407 s, README), test top-1 >= 0.9: 1,000 steps at a peak rate of 4e-3
(until issue 22, 1,500 at 2e-3, which took twice as long for 0.91).
"""
import ml_collections

from vidjax import models
from vidjax.data import moving_mnist
from vidjax.tasks import denoising, detection, localization


def get_config():
  config = ml_collections.ConfigDict()
  config.seed = 0
  # classification | frame_prediction | localization | detection | denoising
  config.task = 'classification'

  # Data: files -> decode -> sample -> transform -> batch.
  config.data = ml_collections.ConfigDict()
  # synthetic_actions | synthetic_appearance | csv | ucf101 | kinetics | ssv2 | moving_mnist;
  # untrimmed (task 'localization'): synthetic_untrimmed | thumos14 | activitynet | mstcn;
  # synthetic_untrimmed_clips: trimmed clips of synthetic_untrimmed, for its backbone;
  # boxes and tracks (task 'detection'): synthetic_objects | coco | cocovid | yolo | mot.
  # images as one-frame clips (an image repeats when num_frames > 1): cifar10 (its python
  # batches) | image_folder (<root>/<split>/<class>/*.png|jpg: CINIC-10, ImageNet) | mnist_digits.
  config.data.dataset = 'synthetic_actions'
  config.data.root = ''  # '' = the cache dir (~/.cache/vidjax or $VIDJAX_CACHE) for generated sets.
  config.data.train_split = 'train'
  config.data.eval_split = 'val'
  config.data.test_split = 'test'
  config.data.ucf101_fold = 1  # UCF-101's official train/test lists: 1, 2 or 3.
  # The annotation file under data.root. activitynet: '' = annotations.json; coco: '' =
  # annotations/instances_{split}.json; cocovid: '' = annotations/{split}.json;
  # yolo (its data YAML): '' = data.yaml.
  config.data.annotation_file = ''
  config.data.image_dir = ''  # coco: '' = {split}/; cocovid: what file_names start from, '' = root.
  config.data.video_dir = ''  # cocovid: each video a file <video_dir>/<name>.mp4; '' = frames.
  config.data.mstcn_split = 1  # mstcn: splits/{train,test}.split{k}.bundle.
  config.data.mstcn_fps = 15.0  # mstcn: frame rate of groundTruth/features (50Salads: 30).
  config.data.num_frames = 8  # Frames per clip the model sees.
  config.data.frame_stride = 2  # Distance between sampled frames.
  # dense: num_frames every frame_stride, random start in training, centred in eval;
  # segments: TSN, one frame from each of num_frames equal parts, random in training, centred in eval.
  config.data.sampling = 'dense'  # dense | segments
  config.data.short_videos = 'loop'  # loop | pad (repeat the last frame): videos shorter than a dense clip.
  config.data.height = 64  # The size the model sees.
  config.data.width = 64
  # Training crop. none: frames scaled to height x width while decoding (aspect not kept);
  # random_resized: Inception crop (crop_scale, crop_ratio) resized to height x width;
  # random: a height x width patch at the decoded scale (denoising); center: the central
  # height x width. The crops decode with the short side at train_short_side.
  config.data.train_crop = 'none'  # none | random_resized | random | center
  config.data.train_short_side = 0  # Short side decoded for a crop, aspect kept; 0 = native size.
  config.data.crop_scale = (0.08, 1.0)  # random_resized: fraction of the frame's area.
  config.data.crop_ratio = (0.75, 1.3333333333333333)  # random_resized: width / height.
  # Random horizontal flip in training (p = 0.5). Off here: the embedded classes have a
  # direction (move_left / move_right, rotate_cw / rotate_ccw).
  config.data.flip = False
  config.data.flip_label_map = True  # With flip: swap left/right classes (SSv2), datasets.flip_label_map.
  config.data.color_jitter = (0.0, 0.0, 0.0)  # Brightness, contrast, saturation strengths; 0 = off.
  # Mixing of training batches; the step then trains on soft targets (smoothed as labels are).
  config.data.mixup_alpha = 0.0  # Beta(alpha, alpha) blend of two clips; 0 = off.
  config.data.cutmix_alpha = 0.0  # Beta(alpha, alpha) area of a pasted box; 0 = off.
  config.data.cutmix_prob = 0.5  # With both on: the chance a batch gets cutmix, not mixup.
  # Evaluation views: eval_num_clips evenly spread clips x crops (none, center: 1; three:
  # left/centre/right, or top/centre/bottom for portrait video, square). The softmax is
  # averaged over a video's views and metrics are per video.
  config.data.eval_num_clips = 1
  config.data.eval_crop = 'none'  # none | center | three
  config.data.eval_short_side = 0  # Short side decoded for center/three, aspect kept; 0 = native.
  config.data.mean = (0.5, 0.5, 0.5)  # Normalisation, on device, of pixels in [0, 1].
  config.data.std = (0.25, 0.25, 0.25)
  config.data.num_workers = -1  # Decoding processes; -1 = cores - 1, 0 = in the main process.
  config.data.decode_threads = 1  # decord's num_threads per clip.
  # Training keeps whole decoded videos in memory, up to this many MiB shared by the decode
  # workers, so a small dataset's later epochs decode nothing (data/frame_cache.py); 0 = off.
  config.data.decoded_cache_mb = 1024
  config.data.read_threads = 2  # Clips each worker (or the main process, with 0 workers) decodes at once.
  config.data.decode_timeout_s = 60.0  # A slower decode counts as a failed video; 0 = no limit.
  config.data.max_failed_fraction = 0.05  # Stop if more of a split fails to decode.
  # The embedded dataset's size: clips per class in train / val / test.
  config.data.synthetic_clips_per_class = (250, 25, 25)
  # The embedded untrimmed set (synthetic_untrimmed): videos in train / val / test, mean length.
  config.data.untrimmed_videos_per_split = (80, 16, 40)
  config.data.untrimmed_mean_frames = 600
  # The embedded detection set (synthetic_objects): videos in train / val / test, and the
  # shortest and longest video in frames.
  config.data.objects_videos_per_split = (384, 8, 16)
  config.data.objects_frames_per_video = (48, 96)
  # Moving MNIST (data.dataset='moving_mnist', task 'frame_prediction'): 64x64 sequences of
  # bouncing MNIST digits; its keys are declared beside its generator.
  config.data.moving_mnist = moving_mnist.default_config()

  # synthetic_denoise (task 'denoising'): clean videos of scikit-image's photographs under a
  # moving camera; generated on first use (25 s on 2 cores).
  config.data.denoise_videos_per_split = (96, 8, 8)  # Videos in train / val / test.
  config.data.denoise_frames = 32  # Frames per video, at 10 fps.
  config.data.denoise_size = 96  # Frame side in px (FastDVDnet's training patch size).
  # Temporal localization and segmentation (task 'localization'), declared beside the task.
  config.localization = localization.default_config()
  # Box detection and tracking (task 'detection'), declared beside the task.
  config.detection = detection.default_config()
  # Video denoising (task 'denoising'): the noise, the protocol's sigmas; declared beside the task.
  config.denoise = denoising.default_config()

  # Feature extraction (--mode extract): a trained classifier's snippet features.
  config.extract = ml_collections.ConfigDict()
  config.extract.dataset = ''  # Whose videos; '' = data.dataset.
  config.extract.splits = ('train', 'val', 'test')
  config.extract.out_dir = ''  # Where <video_id>.npy, probabilities/ and features.json go.
  config.extract.stride = 4  # Frames between snippet starts.
  config.extract.batch_size = 64  # Snippets per step, over this process's devices.

  # Model: `name` picks the family; each family's keys are its constructor's.
  config.model = ml_collections.ConfigDict()
  # Classifiers: lrcn | single_frame | convlstm | space_time_attention;
  # frame predictors (task 'frame_prediction'): convlstm_forecaster | fc_lstm;
  # temporal detectors (task 'localization'): temporal_detector;
  # box detectors (task 'detection'): yolo.
  config.model.name = 'lrcn'
  config.model.dtype = 'float32'  # Compute dtype; parameters stay float32.
  config.model.remat = False  # Recompute activations in the backward pass.
  # One block per family, declared beside its module: `config.model.<name>` holds the
  # keyword arguments of the class that vidjax/models/__init__.py's FAMILIES names.
  for name, block in models.default_configs().items():
    config.model[name] = block

  # Optimisation.
  config.optim = ml_collections.ConfigDict()
  config.optim.name = 'adamw'  # adamw | sgd | rmsprop
  config.optim.learning_rate = 4e-3  # Peak, after warmup, for the whole batch.
  config.optim.warmup_steps = 50
  config.optim.schedule = 'cosine'  # cosine | constant
  config.optim.weight_decay = 1e-4
  config.optim.momentum = 0.9  # sgd momentum, rmsprop decay.
  config.optim.grad_clip_norm = 1.0  # 0 disables clipping.
  config.optim.label_smoothing = 0.1
  # Layer-wise learning-rate decay for fine-tuning transformers (BEiT, MAE): block i of L
  # learns at layer_decay ** (L - i) of the rate, the embeddings at layer_decay ** (L + 1),
  # the head at the full rate (vidjax/pretrained/fine_tune.py). 1.0 = off.
  config.optim.layer_decay = 1.0

  # Start from pretrained parameters (vidjax/pretrained/init_from.py). Order: the workdir's
  # own checkpoint (a resume) first, then init.checkpoint, then a random draw.
  config.init = ml_collections.ConfigDict()
  # '' = none; a vidjax workdir, a folder from `python -m vidjax.convert`, or a published
  # file (.pth / .pyth / .safetensors / .npz) converted on the fly.
  config.init.checkpoint = ''
  # Start a new head when the checkpoint's cannot serve (another class count, or none);
  # without it that case is an error, never a silent random head.
  config.init.reinit_head = False
  config.init.freeze = 'none'  # none | backbone (linear probe: only the head trains)
  # ViViT tubelets from a 2D patch embedding: 'central' (the central frame's slice holds the
  # 2D kernel, the others zero) or 'average' (I3D: the 2D kernel / tubelet_size on each).
  config.init.inflation = 'central'

  # The loop.
  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 32  # Global, over all devices and processes.
  config.train.num_steps = 1000
  config.train.log_every = 20
  config.train.eval_every = 500
  config.train.checkpoint_every = 250
  config.train.max_checkpoints = 3
  config.train.progress_bar = True
  # Stop this invocation after so many steps, with a checkpoint, to go on by
  # running the same command again (time-limited cluster jobs); 0 = no limit.
  config.train.stop_after_steps = 0
  # Stop when this many evaluations in a row (one every eval_every steps) have not improved
  # the eval split's metric (classification: loss; frame prediction: BCE per sequence); the
  # final evaluation, --mode evaluate and --mode predict then use the best parameters. 0 = off.
  config.train.early_stopping_patience = 0
  # A NaN/inf loss or gradient: 'stop' (the last checkpoint stays the newest)
  # or 'skip' (that update is dropped and training goes on).
  config.train.on_nonfinite = 'stop'
  config.train.inject_nan_at_step = -1  # Tests only: make the loss NaN at this step.

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 32

  # Devices: the batch is sharded over the `data` axis of this mesh, over all processes
  # (vidjax/parallel.py). The same config runs on 1 CPU, N devices, N hosts.
  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1  # -1 = all devices.
  config.mesh.model = 1
  # replicated: every device holds all parameters and optimizer state (small models);
  # fsdp: arrays of >= 2**14 elements split over `data` along their largest divisible
  # dimension, ~1/data of the memory per device, the same numbers. Checkpoints restore
  # under either, on any device count.
  config.mesh.param_sharding = 'replicated'  # replicated | fsdp
  return config
