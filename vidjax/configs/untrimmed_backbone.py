"""Stage 1 of the embedded localization pipeline: the snippet classifier that makes features.

  python -m vidjax.main --config configs/untrimmed_backbone.py --workdir runs/untrimmed/backbone
  python -m vidjax.main --config configs/untrimmed_backbone.py --workdir runs/untrimmed/backbone \\
      --mode extract        # -> runs/untrimmed/features (config.extract.out_dir)

A ConvLSTM classifier trained on 16-frame clips of the embedded untrimmed
set's own training videos (`synthetic_untrimmed_clips`: clips drawn anywhere
inside each action instance, and inside as many idle stretches, labelled
'background'), then run with `--mode extract` over every untrimmed video: a
snippet every 4 frames, its feature what the classifier's head reads, as
ActionFormer's I3D features are a Kinetics classifier's pooled features every
4 frames. The same snippets at the same stride are the sliding-window
baseline (experiments/localization_table.py).

Why ConvLSTM and not LRCN: a grow, a shrink and the two rotations change a
small sprite by a few pixels per frame, which LRCN's per-frame CNN (64x64 ->
4x4 before time is seen) mostly loses: on the held-out clips LRCN plateaued
at 0.46 top-1 after 1,500 steps (moves right, rotations and scale mixed up),
ConvLSTM reached 0.74 by step 400 (README, Localization).

1,200 steps, not 600: at 600 its training loss was still falling, and the
test clip top-1 was 0.732 / 0.659 (seeds 0 / 1); at 1,200 it is 0.807 /
0.698, and the detector gains 2.7 / 4.2 points of mean mAP
(experiments/localization_table.py).

Random horizontal flips, with move_left <-> move_right and rotate_cw <->
rotate_ccw swapped (data.flip_label_map): each training clip is also its
mirror image. With them seed 1's test clip top-1 went from 0.698 to 0.846,
and the detector's mean mAP on its features from 0.675 to 0.841 (README,
Localization).
"""
from vidjax.configs import default


def get_config():
  config = default.get_config()
  config.data.dataset = 'synthetic_untrimmed_clips'
  config.data.num_frames = 8
  config.data.frame_stride = 2  # 16 frames a clip: the snippet window.
  config.model.name = 'convlstm'
  config.train.num_steps = 1200
  config.optim.learning_rate = 2e-3  # What its figures were measured with (the default's was).
  config.data.flip = True  # Mirrored clips, directions swapped (above).
  config.train.eval_every = 400
  config.train.checkpoint_every = 400
  config.extract.dataset = 'synthetic_untrimmed'
  config.extract.splits = ('train', 'val', 'test')
  config.extract.out_dir = 'runs/untrimmed/features'
  config.extract.stride = 4
  return config
