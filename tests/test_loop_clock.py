"""The loop's clock: parts add up with 'other' to the wall time, and a typo is caught."""
import time

import pytest

from vidjax.loop_clock import LoopClock


def test_parts_and_other_add_up_to_the_total(monkeypatch):
  now = [100.0]
  monkeypatch.setattr(time, 'perf_counter', lambda: now[0])
  clock = LoopClock(start=100.0)
  now[0] = 103.0
  clock.mark('setup')  # 3 s before the loop.
  for _ in range(2):
    with clock.part('waiting for input'):
      now[0] += 0.5
    now[0] += 0.25  # Not inside any part: 'other'.
  with clock.part('evaluation'):
    now[0] += 2.0
  assert clock.totals() == {'setup': 3.0, 'waiting for input': 1.0, 'evaluation': 2.0,
                            'other': 0.5, 'total': 6.5}
  assert clock.line() == 'setup 3, input 1, eval 2, other 0 (s)'


def test_unknown_part_is_an_error():
  with pytest.raises(ValueError, match="unknown part 'input'"):
    with LoopClock(time.perf_counter()).part('input'):
      pass
