"""What a frame-prediction run shows its user: pictures, numbers, the paper's table.

- `plot_strip`: for a few sequences, rows of input frames, true future frames
  and predicted frames, so a reader sees at a glance whether digits move;
- `plot_per_step`: BCE, MSE and SSIM at each future step t+1 .. t+10, the
  model beside the two trivial baselines (errors grow with the horizon);
- `plot_learning_curves`: train / eval BCE per sequence, eval SSIM, the
  learning rate (panels of report.plot_curves);
- `summary_rows` / `write_report`: the console table and results.json fields,
  with the matching row of Shi et al. 2015, Table 1 (PAPERS.md) beside ours.
"""
from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np

from vidjax.metrics import frame_prediction as pm
from vidjax import report
from vidjax.models.layers import pair

# Shi et al. 2015, Table 1 (Moving MNIST, 10 -> 10 frames): cross-entropy per
# sequence, from PAPERS.md. "(5x5)" is the input-to-state kernel, each
# "KxK-F" a layer's state-to-state kernel and hidden size.
PAPER_TABLE_1 = {
    'FC-LSTM-2048-2048': 4832.49,
    'ConvLSTM(5x5)-5x5-256': 3887.94,
    'ConvLSTM(5x5)-5x5-128-5x5-128': 3733.56,
    'ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64': 3670.85,
    'ConvLSTM(9x9)-1x1-128-1x1-128': 4782.84,
    'ConvLSTM(9x9)-1x1-128-1x1-64-1x1-64': 4231.50,
}
PAPER_3DIGITS = 6379.42  # The paper's out-of-domain test: 3 digits per sequence.
# The paper's row of the same family, depth and (ConvLSTM) state-to-state
# kernel, for a model not in the table; a 3x3 state kernel compares with 5x5.
_SIMILAR = {('convlstm_forecaster', 1, 'large'): 'ConvLSTM(5x5)-5x5-256',
            ('convlstm_forecaster', 2, 'large'): 'ConvLSTM(5x5)-5x5-128-5x5-128',
            ('convlstm_forecaster', 3, 'large'): 'ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64',
            ('convlstm_forecaster', 2, '1x1'): 'ConvLSTM(9x9)-1x1-128-1x1-128',
            ('convlstm_forecaster', 3, '1x1'): 'ConvLSTM(9x9)-1x1-128-1x1-64-1x1-64',
            ('fc_lstm', 2, None): 'FC-LSTM-2048-2048'}
BASELINES = ('last_frame', 'mean_frame')


def _kernel(size) -> str:
  h, w = pair(tuple(size) if isinstance(size, (list, tuple)) else size)
  return f'{h}x{w}'


def row_name(model_config) -> str:
  """Our model in the paper's naming, e.g. 'ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64'."""
  name = model_config.name
  if name == 'convlstm_forecaster':
    c = model_config.convlstm_forecaster
    state = _kernel(c.state_kernel_size)
    return f'ConvLSTM({_kernel(c.input_kernel_size)})-' + '-'.join(
        f'{state}-{h}' for h in c.hidden_sizes)
  if name == 'fc_lstm':
    return 'FC-LSTM-' + '-'.join(str(h) for h in model_config.fc_lstm.hidden_sizes)
  return name


def paper_row(model_config) -> tuple[str, bool] | None:
  """(the paper's row to compare with, whether it is exactly our model), or None."""
  ours = row_name(model_config)
  if ours in PAPER_TABLE_1:
    return ours, True
  family = model_config[model_config.name]
  kernel = None
  if model_config.name == 'convlstm_forecaster':
    kernel = '1x1' if _kernel(family.state_kernel_size) == '1x1' else 'large'
  row = _SIMILAR.get((model_config.name, len(family.hidden_sizes), kernel))
  return (row, False) if row else None


# ----------------------------------------------------------------------------
# Pictures.
# ----------------------------------------------------------------------------

def _as_uint8(frames) -> np.ndarray:
  frames = np.asarray(frames)
  if frames.dtype != np.uint8:
    frames = np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)
  return frames[..., 0] if frames.ndim == 4 else frames  # [T, H, W]


def _row(frames, width: int, gap: int) -> np.ndarray:
  """Frames [T, H, W] side by side with `gap` px between, padded to `width` frames."""
  t, h, w = frames.shape
  out = np.full((h, width * (w + gap) - gap), 255, np.uint8)
  for i in range(t):
    out[:, i * (w + gap):i * (w + gap) + w] = frames[i]
  return out


def plot_strip(observed, predicted, path: pathlib.Path, *, truth=None, title: str = '',
               labels: Sequence[str] | None = None) -> None:
  """Input, true and predicted frames in rows, for each of K sequences.

  observed [K, T_in, H, W, 1], predicted [K, T_out, H, W, 1], truth like
  predicted or None (prediction from a file with no future); uint8 or floats
  in [0, 1]. Frames are shown as intensities: digits white on black.
  """
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  gap = 2
  k = len(observed)
  width = max(observed.shape[1], predicted.shape[1])
  rows, names = [], []
  for i in range(k):
    prefix = labels[i] if labels else f'#{i}'
    rows.append(_row(_as_uint8(observed[i]), width, gap))
    names.append(f'{prefix} input')
    if truth is not None:
      rows.append(_row(_as_uint8(truth[i]), width, gap))
      names.append(f'{prefix} truth')
    rows.append(_row(_as_uint8(predicted[i]), width, gap))
    names.append(f'{prefix} predicted')
  h = rows[0].shape[0]
  sep = 6 * gap
  image = np.full((len(rows) * (h + gap) + (k - 1) * sep, rows[0].shape[1]), 255, np.uint8)
  centres, y = [], 0
  for j, row in enumerate(rows):
    image[y:y + h] = row
    centres.append(y + h / 2)
    y += h + gap
    if (j + 1) % (len(rows) // k) == 0:
      y += sep
  fig_w = 1.2 + image.shape[1] / 80
  fig, ax = plt.subplots(figsize=(fig_w, 0.6 + image.shape[0] / 80))
  ax.imshow(image, cmap='gray', vmin=0, vmax=255, interpolation='nearest')
  ax.set_yticks(centres, names, fontsize=7)
  frame_w = observed.shape[3] + gap
  ax.set_xticks([i * frame_w + observed.shape[3] / 2 for i in range(width)],
                [str(i + 1) for i in range(width)], fontsize=7)
  ax.set_xlabel('frame (input: t-9 .. t; truth and predicted: t+1 .. t+10)',
                fontsize=7)
  ax.tick_params(length=0)
  for side in ax.spines.values():
    side.set_visible(False)
  if title:
    ax.set_title(title, fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_per_step(final: dict, path: pathlib.Path, title: str) -> None:
  """BCE, MSE and SSIM at each future step: the model on every split, baselines on test."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  panels = [('bce_per_step', 'BCE per frame (summed over pixels)'),
            ('mse_per_step', 'MSE per frame (pixels in [0, 1])'),
            ('ssim_per_step', 'SSIM (higher is better)')]
  fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
  for ax, (key, label) in zip(axes, panels):
    for split, result in final.items():
      steps = np.arange(1, len(result[key]) + 1)
      ax.plot(steps, result[key], marker='o', markersize=3, label=f'model, {split}')
    if 'test' in final:
      for name, style in zip(BASELINES, ('--', ':')):
        values = final['test']['baselines'][name][key]
        ax.plot(np.arange(1, len(values) + 1), values, style, color='gray',
                label=f"{name.replace('_', ' ')}, test")
    ax.set_title(label, fontsize=9)
    ax.set_xlabel('future step t+k')
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=7)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_learning_curves(history: Sequence[dict], path: pathlib.Path) -> None:
  report.plot_curves(history, path, panels={
      'BCE per sequence': ('train/bce_per_sequence', 'eval/bce_per_sequence'),
      'eval SSIM': ('eval/ssim',), 'learning rate': ('train/learning_rate',)})


# ----------------------------------------------------------------------------
# Numbers.
# ----------------------------------------------------------------------------

def summary_rows(final: dict, config) -> list[tuple[str, str]]:
  """Console rows: each split's metrics beside both baselines, then the paper's row."""
  rows = []
  for split, r in final.items():
    base = r['baselines']
    rows.append((f'{split} BCE / sequence',
                 f"{r['bce_per_sequence']:,.1f}   (last frame "
                 f"{base['last_frame']['bce_per_sequence']:,.1f}, mean frame "
                 f"{base['mean_frame']['bce_per_sequence']:,.1f}; {r['num_sequences']} sequences)"))
    rows.append((f'{split} MSE / frame, SSIM',
                 f"{r['mse_per_frame']:.1f}, {r['ssim']:.3f}   (last frame "
                 f"{base['last_frame']['mse_per_frame']:.1f}, {base['last_frame']['ssim']:.3f}; "
                 f"mean frame {base['mean_frame']['mse_per_frame']:.1f}, "
                 f"{base['mean_frame']['ssim']:.3f})"))
  match = paper_row(config.model)
  if match is not None:
    row, exact = match
    which = 'the same model' if exact else f'ours is {row_name(config.model)}'
    rows.append(('Shi et al. 2015, Table 1',
                 f'{row}: {PAPER_TABLE_1[row]:,.2f} BCE / sequence ({which}); 3 digits: '
                 f'{PAPER_3DIGITS:,.2f}; their data, far longer training on a GPU'))
  return rows


def results_fields(final: dict, config) -> dict:
  fields = {'row_name': row_name(config.model), 'bce_prob_eps_of_baselines': pm.BCE_PROB_EPS}
  for split, r in final.items():
    for key in ('bce_per_sequence', 'mse_per_frame', 'ssim', 'num_sequences', 'bce_per_step',
                'mse_per_step', 'ssim_per_step'):
      fields[f'{split}_{key}'] = r[key]
    fields[f'{split}_baselines'] = {
        name: {k: r['baselines'][name][k] for k in ('bce_per_sequence', 'mse_per_frame', 'ssim')}
        for name in BASELINES}
  match = paper_row(config.model)
  if match is not None:
    fields['paper_row'], fields['paper_row_is_ours'] = match
    fields['paper_bce_per_sequence'] = PAPER_TABLE_1[match[0]]
    fields['paper_3digits_bce_per_sequence'] = PAPER_3DIGITS
  return fields


def write_report(workdir: pathlib.Path, final: dict, config, history_path: pathlib.Path):
  """Writes the pictures; returns (results.json fields, console rows, files)."""
  name = row_name(config.model)
  files = {'curves': workdir / 'training_curves.png', 'per_step': workdir / 'per_step_metrics.png'}
  plot_learning_curves(report.read_history(history_path), files['curves'])
  plot_per_step(final, files['per_step'], f'{name}: metrics per future step')
  for split in ('test', 'test_3digits'):
    if split not in final:
      continue
    ex = final[split]['examples']
    t_in = config.data.moving_mnist.num_observed
    files[f'strip_{split}'] = workdir / f'predictions_{split}.png'
    plot_strip(ex['video'][:, :t_in], ex['predicted'], files[f'strip_{split}'],
               truth=ex['video'][:, t_in:], labels=[f'{split} {i}' for i in ex['index']],
               title=f"{name}, {split}: BCE / sequence {final[split]['bce_per_sequence']:,.0f}")
  return results_fields(final, config), summary_rows(final, config), files
