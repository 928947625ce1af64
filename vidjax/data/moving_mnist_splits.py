"""Moving MNIST as a registry dataset: an on-the-fly training split and fixed files.

'train' renders sequence i from (seed, i) alone, over
`data.moving_mnist.train_sequences`; 'val', 'test' and 'test_3digits' are
fixed .npy files in the public layout, generated once (or, for 'test', the
public `mnist_test_seq.npy` when `public_test_file` is set). Every split is
array-backed: `Split.source[record.index]` is uint8 [T, 64, 64, 1], cut to
the task's `num_observed + num_future` frames.
"""
from __future__ import annotations

import pathlib

from vidjax.data import moving_mnist
from vidjax.data.records import Record
from vidjax.data.registry import Split
from vidjax.errors import UserError

FIXED_SPLITS = ('val', 'test', 'test_3digits')


def sequence_length(data) -> int:
  mm = data.moving_mnist
  return mm.num_observed + mm.num_future


def fixed_set_paths(data, root: pathlib.Path) -> dict[str, str]:
  """The val / test / 3-digit test files (generated once, then cached).

  With `moving_mnist.public_test_file` set, the 2-digit test split is that
  file (e.g. the public `mnist_test_seq.npy`), checked before training starts.
  """
  mm = data.moving_mnist
  paths = moving_mnist.ensure_moving_mnist(
      str(root), num_val=mm.num_val, num_test=mm.num_test, seed=mm.fixed_sets_seed,
      train_pool_size=mm.train_pool_size, speed_range=tuple(mm.speed_range))
  if mm.public_test_file:
    try:  # Shape only: the evaluation reads the frames when it needs them.
      num_frames = moving_mnist.open_public_npy(mm.public_test_file).shape[0]
    except (OSError, ValueError) as e:
      raise UserError(f'data.moving_mnist.public_test_file: {e}') from None
    if num_frames < sequence_length(data):
      raise UserError(f'data.moving_mnist.public_test_file {mm.public_test_file} has '
                      f'{num_frames} frames per sequence; the task needs {sequence_length(data)}')
    paths['test'] = mm.public_test_file
  return paths


def train_source(data, seed: int) -> moving_mnist.MovingMNISTSource:
  mm = data.moving_mnist
  return moving_mnist.MovingMNISTSource(
      mm.train_sequences, split='train', seed=seed, num_frames=sequence_length(data),
      speed_range=tuple(mm.speed_range), train_pool_size=mm.train_pool_size)


def load_split(data, split: str, seed: int, root: pathlib.Path) -> Split:
  if split == 'train':
    source = train_source(data, seed)
    return Split([Record('', index=i) for i in range(len(source))], [], source=source)
  if split not in FIXED_SPLITS:
    raise UserError(f"Moving MNIST has the splits train, {', '.join(FIXED_SPLITS)}; "
                    f"got '{split}' (set data.eval_split / data.test_split)")
  path = fixed_set_paths(data, root)[split]
  seqs = moving_mnist.load_public_npy(path)[:, :sequence_length(data)]  # [N, T, 64, 64, 1]
  return Split([Record(path, index=i) for i in range(len(seqs))], [], source=seqs)
