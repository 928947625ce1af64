"""What a run tells its user: TensorBoard events, a JSONL history, PNGs, a summary.

The history (`workdir/metrics.jsonl`) is appended to, so the curves drawn at
the end cover every segment of a resumed run. Only process 0 writes.
"""
from __future__ import annotations

import json
import pathlib
from typing import Mapping, Sequence

import numpy as np


class Writer:
  """One writer for scalars: tensorboardX events plus `metrics.jsonl`.

  `tensorboard` is the events folder under the workdir; a writer with
  `history=False` leaves `metrics.jsonl` alone (`--mode evaluate` writes to
  'tensorboard/evaluate', a run of its own beside the training curves).
  `suffix` ends the event file's name, so that two writers open on one folder
  in the same second do not write the same file.
  """

  def __init__(self, workdir: str | pathlib.Path, enabled: bool = True, *,
               tensorboard: str = 'tensorboard', history: bool = True, suffix: str = ''):
    self.workdir = pathlib.Path(workdir)
    self.enabled = enabled
    self.history_path = self.workdir / 'metrics.jsonl' if history else None
    self._tb = None
    if enabled:
      from tensorboardX import SummaryWriter  # Not flax.metrics: that imports TensorFlow.
      self._tb = SummaryWriter(str(self.workdir / tensorboard), filename_suffix=suffix)

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    if not self.enabled:
      return
    clean = {k: float(v) for k, v in values.items()}
    for key, value in clean.items():
      self._tb.add_scalar(key, value, step)
    if self.history_path is not None:
      with self.history_path.open('a') as f:
        f.write(json.dumps({'step': int(step), **clean}) + '\n')

  def text(self, step: int, tag: str, text: str) -> None:
    """A fixed-width table for TensorBoard's text tab (shown as preformatted markdown)."""
    if self.enabled:
      self._tb.add_text(tag, '\n'.join('    ' + line for line in text.splitlines()), step)

  def flush(self) -> None:
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def read_history(path: pathlib.Path) -> list[dict]:
  if not path.exists():
    return []
  rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  # A resumed run re-logs steps after its checkpoint: keep the latest value of each.
  latest: dict[tuple[int, tuple], dict] = {}
  for row in rows:
    latest[(row['step'], tuple(sorted(k for k in row if k != 'step')))] = row
  return sorted(latest.values(), key=lambda r: r['step'])


CLASSIFICATION_PANELS = {'loss': ('train/loss', 'eval/loss'),
                         'accuracy': ('train/accuracy', 'eval/top1', 'eval/top5'),
                         'learning rate': ('train/learning_rate',)}


def plot_curves(history: Sequence[dict], path: pathlib.Path,
                panels: dict[str, Sequence[str]] = CLASSIFICATION_PANELS) -> None:
  """One panel per metric family ({title: history keys}); eval points get markers."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  panels = {title: [k for k in keys if any(k in r for r in history)]
            for title, keys in panels.items()}
  fig, axes = plt.subplots(1, len(panels), figsize=(14, 3.8))
  for ax, (title, keys) in zip(axes, panels.items()):
    for key in keys:
      points = [(r['step'], r[key]) for r in history if key in r]
      if points:
        steps, values = zip(*points)
        ax.plot(steps, values, marker='o' if key.startswith('eval') else None, label=key)
    ax.set_title(title)
    ax.set_xlabel('step')
    ax.grid(alpha=0.3)
    if keys:
      ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_confusion(confusion: np.ndarray, class_names: Sequence[str], path: pathlib.Path,
                   title: str) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  k = len(class_names)
  size = max(5.0, 0.45 * k + 2)
  fig, ax = plt.subplots(figsize=(size, size))
  ax.imshow(confusion, cmap='Blues')
  ax.set_xticks(range(k), class_names, rotation=90, fontsize=7)
  ax.set_yticks(range(k), class_names, fontsize=7)
  ax.set_xlabel('predicted')
  ax.set_ylabel('true')
  ax.set_title(title)
  if k <= 30:
    for i in range(k):
      for j in range(k):
        if confusion[i, j]:
          ax.text(j, i, int(confusion[i, j]), ha='center', va='center', fontsize=6,
                  color='white' if confusion[i, j] > confusion.max() / 2 else 'black')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def summary(rows: Sequence[tuple[str, str]]) -> str:
  """A boxed two-column table for the console; a multi-line value (a per-class
  table) goes below its key, indented."""
  width = max(len(k) for k, _ in rows)
  lines = []
  for k, v in rows:
    if '\n' in v:
      lines += [f'  {k}', *(f'    {line}' for line in v.splitlines())]
    else:
      lines.append(f'  {k.ljust(width)}  {v}')
  rule = '=' * max(len(line) for line in lines)
  return '\n'.join([rule, *lines, rule])
