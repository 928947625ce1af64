"""ConvLSTM (Shi et al. 2015) classifying the embedded action set.

A two-stage conv stem with GroupNorm (64x64 -> 16x16), two stacked 3x3
ConvLSTM layers of 32 with peepholes, the last step's top hidden state
max-pooled over space, a linear head (vidjax/models/convlstm.py says why max
and why the norm: with a mean-pooled head it stays at chance). Fully unrolled
over time: on XLA:CPU a scanned conv cell is ~8-20x slower (README,
Performance).

500 steps at batch 32, not the default 1500: a ConvLSTM step costs ~10x
LRCN's FLOPs (0.59 vs 0.056 GFLOPs per clip) and ~3x its CPU time (25-40 vs
~85 clips/s), so 500 steps is about LRCN's CPU budget; the full 1500 would
take ~25-40 min here.

Expected (measured once, 2 CPU cores shared with other jobs, load average
5.4-11, median 7.3): test top-1 0.960, top-5 0.987 (val 0.950) after 500
steps; 11.6 min wall, 417 s user CPU, on the cached dataset. LRCN reaches
0.903 with 1500 steps; the single-frame baseline 0.25-0.29.
"""
from vidjax.configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'convlstm'
  config.train.num_steps = 500
  config.optim.learning_rate = 2e-3  # What its figures were measured with (the default's was).
  return config
