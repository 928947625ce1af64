"""The progress bars of the long loops (vidjax/progress.py): shown, counted, quiet."""
import jax
import jax.numpy as jnp

from vidjax import progress
from vidjax.data import synthetic_actions as sa


class _Result:
  """A device result whose readiness the test decides."""

  def __init__(self, ready: bool):
    self.ready = ready

  def is_ready(self) -> bool:
    return self.ready


def test_bar_advances_to_its_total_with_an_eta(capsys):
  shown = progress.bar(4, 'evaluate test', True)
  for _ in range(4):
    shown.update(1)
  shown.close()
  err = capsys.readouterr().err
  assert 'evaluate test' in err and '4/4' in err and 'batch/s' in err


def test_a_disabled_bar_and_one_off_process_0_write_nothing(capsys, monkeypatch):
  for shown in (progress.bar(3, 'quiet', False), progress.Finished(progress.bar(3, 'q', False))):
    shown.close()
  assert list(progress.track([1, 2, 3], 'quiet', False)) == [1, 2, 3]
  monkeypatch.setattr(jax, 'process_index', lambda: 1)
  assert list(progress.track([1, 2], 'other host', True)) == [1, 2]
  assert capsys.readouterr().err == ''


def test_track_counts_an_item_once_its_body_ends(monkeypatch):
  seen = []

  class Recorder:
    def __init__(self):
      self.n = 0

    def update(self, k):
      self.n += k

    def close(self):
      seen.append('closed')

  recorder = Recorder()
  monkeypatch.setattr(progress, 'bar', lambda total, *a, **k: recorder)
  for item in progress.track(iter('abc'), 'x', total=3):  # No len(): as imap_unordered.
    seen.append((item, recorder.n))
  assert seen == [('a', 0), ('b', 1), ('c', 2), 'closed'] and recorder.n == 3


def test_finished_counts_only_ready_results_in_order(capsys):
  finished = progress.Finished(progress.bar(5, 'evaluate eval', True))
  first = _Result(False)
  finished.add(first)
  finished.add(_Result(True))  # Done, but queued behind one that is not: not counted yet.
  assert finished.bar.n == 0
  first.ready = True
  finished.add({'probs': _Result(True), 'host': [1, 2]})
  assert finished.bar.n == 3
  finished.add(jax.block_until_ready(jnp.ones(3) + 1))  # A real jax array, computed.
  assert finished.bar.n == 4
  finished.add(_Result(False))
  finished.close()  # The caller read every result: all are finished.
  assert finished.bar.n == 5 and '5/5' in capsys.readouterr().err


def test_dataset_generation_shows_the_videos_written(tmp_path, capsys):
  sa.generate(tmp_path / 'on', clips_per_class=(1, 0, 0), num_frames=2, size=32,
              num_processes=1)
  err = capsys.readouterr().err
  assert 'generate clips' in err and '12/12' in err, err
  sa.generate(tmp_path / 'off', clips_per_class=(1, 0, 0), num_frames=2, size=32,
              num_processes=1, progress=False)
  assert capsys.readouterr().err == ''
