"""The attention-recipe sweep's own logic: the bar, the data digest, the take-off losses."""
import json
import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / 'experiments'))
import attention_recipe  # noqa: E402


def test_the_bar_is_every_run_within_five_points_of_the_mean():
  passes = attention_recipe.summarise([0.90, 0.93, 0.88, 0.91, 0.90])  # mean 0.904
  assert passes['passes'] and abs(passes['max_deviation'] - 0.026) < 1e-9
  fails = attention_recipe.summarise([0.52, 0.68, 0.87])  # mean 0.69: 0.17 away
  assert not fails['passes'] and fails['min'] == 0.52 and fails['max'] == 0.87


def test_digest_sees_bytes_and_names_but_not_the_done_record(tmp_path):
  a, b = tmp_path / 'a', tmp_path / 'b'
  for root, done in ((a, 'one'), (b, 'two')):
    (root / 'videos').mkdir(parents=True)
    (root / 'videos' / 'x.mp4').write_bytes(b'\x00\x01')
    (root / 'DONE').write_text(done)
  assert attention_recipe._tree_digest(a) == attention_recipe._tree_digest(b)
  (b / 'videos' / 'x.mp4').write_bytes(b'\x00\x02')
  assert attention_recipe._tree_digest(a) != attention_recipe._tree_digest(b)


def test_losses_at_the_take_off_steps(tmp_path):
  rows = [{'step': s, 'train/loss': 2.5 - s / 1000} for s in range(100, 1600, 100)]
  (tmp_path / 'metrics.jsonl').write_text('\n'.join(map(json.dumps, rows)))
  assert attention_recipe._losses(tmp_path) == {'500': 2.0, '1000': 1.5, '1500': 1.0}
  assert attention_recipe._losses(tmp_path / 'missing') == {}
