"""ConvLSTM (Shi et al. 2015) classifying the embedded action set.

A strided conv stem (64x64 -> 16x16), two stacked 3x3 ConvLSTM layers with
peepholes, the last step's top hidden state averaged over space, a linear
head. Fully unrolled over time: on XLA:CPU a scanned conv cell is ~8-20x
slower (README, Performance).
"""
from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'convlstm'
  return config
