"""The grain pipeline: unreadable videos are skipped and counted, never fatal."""
import pathlib
import shutil

import numpy as np
import pytest

from tests.conftest import tiny_config
from vidjax import train
from vidjax.data import pipeline

SPEC = pipeline.ClipSpec(num_frames=4, frame_stride=2, height=32, width=32)


def _records(root, split):
  lines = (root / f'{split}.csv').read_text().splitlines()[1:]
  names = (root / 'classes.txt').read_text().split()
  return [(str(root / p), names.index(label)) for p, label in (l.split(',') for l in lines)]


def test_train_batches_are_independent_of_worker_count(tiny_actions_root):
  records = _records(tiny_actions_root, 'train')

  def first_batches(workers):
    failures = pipeline.FailureCounter('train', 0.5)
    it = iter(pipeline.train_dataset(records, SPEC, batch_size=4, seed=3, num_workers=workers,
                                     failures=failures))
    return [next(it) for _ in range(3)]

  for a, b in zip(first_batches(0), first_batches(1)):
    np.testing.assert_array_equal(a['video'], b['video'])
    np.testing.assert_array_equal(a['label'], b['label'])


def test_unreadable_videos_are_skipped_and_counted(tiny_actions_root, tmp_path):
  records = _records(tiny_actions_root, 'val')
  garbage = tmp_path / 'garbage.mp4'
  garbage.write_bytes(b'not a video' * 100)
  bad = [(str(garbage), 0), (str(tmp_path / 'missing.mp4'), 1)]
  failures = pipeline.FailureCounter('val', max_fraction=0.5, min_seen=14)
  batches = list(pipeline.eval_batches(bad[:1] + records + bad[1:], SPEC, batch_size=8,
                                       num_batches=2, num_workers=0, failures=failures))
  assert len(batches) == 2
  assert sum(int(b['mask'].sum()) for b in batches) == len(records)
  assert failures.seen == len(records) + 2
  assert set(failures.failed) == {str(garbage), str(tmp_path / 'missing.mp4')}
  assert '2 unreadable video(s) skipped of 14 read' in failures.summary()


def test_too_many_failures_stop_with_one_line(tmp_path):
  bad = [(str(tmp_path / f'missing_{i}.mp4'), 0) for i in range(30)]
  failures = pipeline.FailureCounter('train', max_fraction=0.05)
  it = iter(pipeline.train_dataset(bad, SPEC, batch_size=2, seed=0, num_workers=0,
                                   failures=failures))
  with pytest.raises(pipeline.DataError) as e:
    next(it)
  message = str(e.value)
  assert '\n' not in message
  assert 'train videos failed to decode' in message and 'missing_' in message
  assert 'data.max_failed_fraction=0.05' in message


def test_corrupt_video_in_split_list_is_skipped_in_a_run(tiny_actions_root, tmp_path):
  """A whole run over a CSV dataset with a corrupt video in train and test lists."""
  root = tmp_path / 'csv_dataset'
  shutil.copytree(tiny_actions_root, root)
  corrupt = root / 'videos' / 'corrupt.mp4'
  good = next((root / 'videos' / 'train').glob('*.mp4')).read_bytes()
  corrupt.write_bytes(good[: len(good) // 3])  # Truncated: the index (moov) is lost.
  for split in ('train', 'test'):
    with (root / f'{split}.csv').open('a') as f:
      f.write('videos/corrupt.mp4,grow\n')
  config = tiny_config(root, **{'data.dataset': 'csv', 'train.num_steps': 12,
                                'data.max_failed_fraction': 0.5})
  final = train.train_and_evaluate(config, tmp_path / 'run')
  assert final['test']['num_failed'] == 1
  assert final['test']['num_videos'] == 12  # The 12 good test videos, each once.
