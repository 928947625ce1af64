"""FC-LSTM encoder-forecaster (Srivastava et al. 2015) on Moving MNIST: Shi et al.'s baseline.

  python -m vidjax.main --config configs/moving_mnist_fc_lstm.py --workdir runs/mm_fc_lstm

The default is a CPU-scale FC-LSTM-1024 (readout from the top layer, as in
the paper), trained and evaluated exactly as configs/moving_mnist_convlstm.py's
default run, so the two compare on the same footing. Variants are the paper's
row names of this family:

  --config configs/moving_mnist_fc_lstm.py:2048-2048   (Table 1: 142,667,776 parameters)

The frames are flattened: the model has no notion of space, which is the
point Shi et al. make against it.
"""
from vidjax.configs import moving_mnist_convlstm

VARIANTS = ('2048-2048',)


def get_config(variant: str = ''):
  config = moving_mnist_convlstm.get_config()  # The CPU-scale run's data, optimiser and loop.
  config.model.name = 'fc_lstm'
  config.model.fc_lstm.readout = 'top'
  if not variant:
    config.model.fc_lstm.hidden_sizes = (1024,)
    return config
  hidden = variant.removeprefix('FC-LSTM-').split('-')
  if not all(h.isdigit() for h in hidden):
    raise ValueError(f"unknown FC-LSTM row '{variant}'; use hidden sizes like 2048-2048")
  config.model.fc_lstm.hidden_sizes = tuple(int(h) for h in hidden)
  paper = moving_mnist_convlstm.get_config('5x5-256')  # The paper's protocol, for a GPU.
  config.data.moving_mnist = paper.data.moving_mnist
  config.train = paper.train
  return config
