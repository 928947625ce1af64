"""The single-frame baseline on the embedded action set: an order-blind control.

LRCN's CNN on every frame, logits averaged over time: it sees a clip as a
set of frames, so on the reversal pairs it is capped at 50% top-1. Expected:
test top-1 at most 0.55 (the README's table has the measured number).
"""
from vidjax.configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'single_frame'
  return config
