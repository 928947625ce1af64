"""FailureCounter: unreadable videos are counted, and the epoch summary stays rare."""
import logging

import pytest

from vidjax.data.failures import DataError, FailureCounter


def _read(counter, n, bad=()):
  for i in range(n):
    element = {'error': 'broken', 'path': f'v{i}.mp4'} if i in bad else {'video': None}
    counter.keep(element)


def test_epoch_summary_at_powers_of_two_and_after_a_new_failure(caplog):
  counter = FailureCounter('train', max_fraction=0.5)
  counter.epoch_size = 10
  with caplog.at_level(logging.INFO, logger='vidjax.data.failures'):
    _read(counter, 10 * 9)  # Epochs 1..9 clean: summaries at 1, 2, 4, 8.
    counter.keep({'error': 'broken', 'path': 'late.mp4'})
    _read(counter, 9)  # Epoch 10 ends with a new failure: summarised although 10 is no power of 2.
    _read(counter, 10)  # Epoch 11: nothing new.
  epochs = [int(r.message.split('(epoch ')[1].rstrip(')')) for r in caplog.records
            if '(epoch' in r.message]
  assert epochs == [1, 2, 4, 8, 10]
  assert 'train: 1 unreadable video(s) skipped of 100 read (epoch 10)' in caplog.text
  assert caplog.text.count('skipping unreadable video late.mp4') == 1


def test_too_many_failures_stop_with_one_line():
  counter = FailureCounter('val', max_fraction=0.2, min_seen=10)
  with pytest.raises(DataError, match=r'^3 of 10 val videos failed to decode \(30% > '
                                      r'data.max_failed_fraction=0.2\); first: v0.mp4 \(broken\)'):
    _read(counter, 10, bad={0, 1, 2})
