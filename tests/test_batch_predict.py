"""Batch prediction: folders and dataset splits in, one JSON line per video out, and
unreadable files listed with their reason instead of stopping the batch."""
import json
import shutil

import pytest

from tests.conftest import TINY_CLASSIFIER_FLAGS as TINY
from tests.conftest import run_vidjax, tiny_config
from vidjax import predict
from vidjax.errors import UserError


def test_a_folder_gives_its_videos_recursively_sorted(tmp_path):
  for name in ('b.mp4', 'sub/a.MOV', 'sub/deeper/c.webm', 'notes.txt', 'features.npy'):
    (tmp_path / 'videos' / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / 'videos' / name).write_bytes(b'')
  (tmp_path / 'arrays').mkdir()
  (tmp_path / 'arrays' / 'seq.npy').write_bytes(b'')
  (tmp_path / 'empty').mkdir()
  videos = tmp_path / 'videos'
  paths = predict.prediction_paths(None, [str(videos), str(videos / 'b.mp4'), 'nope.mp4'])
  assert paths == [str(videos / 'b.mp4'), str(videos / 'sub/a.MOV'),
                   str(videos / 'sub/deeper/c.webm'), 'nope.mp4']  # Once each; missing kept.
  # A folder without videos (frame prediction's sequences) gives its .npy arrays.
  assert predict.prediction_paths(None, [str(tmp_path / 'arrays')]) == [
      str(tmp_path / 'arrays' / 'seq.npy')]
  with pytest.raises(UserError, match='is a folder with no video'):
    predict.prediction_paths(None, [str(tmp_path / 'empty')])


@pytest.fixture
def workdir(trained_workdir, tmp_path):
  """A copy of the shared trained workdir, which tests must not change."""
  return shutil.copytree(trained_workdir, tmp_path / 'run')


def test_a_folder_with_bad_files_predicts_the_rest(workdir, tiny_actions_root, tmp_path):
  good = sorted((tiny_actions_root / 'videos' / 'test').glob('*.mp4'))[:3]
  folder = tmp_path / 'batch'
  (folder / 'more').mkdir(parents=True)
  shutil.copy(good[0], folder / 'a_good.mp4')
  shutil.copy(good[1], folder / 'more' / 'b_good.mp4')
  (folder / 'c_garbage.mp4').write_bytes(b'\x00' * 500)
  (folder / 'd_truncated.mp4').write_bytes(good[2].read_bytes()[:good[2].stat().st_size // 2])
  (folder / 'readme.txt').write_text('not a video, not listed')
  missing = tmp_path / 'nope.mp4'
  result = run_vidjax('--config', 'configs/default.py', '--workdir', workdir,
                      f'--config.data.root={tiny_actions_root}', *TINY, '--mode', 'predict',
                      '--video', folder, '--video', missing)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = [json.loads(l) for l in (workdir / 'predictions' / 'classes.jsonl').read_text()
           .splitlines()]
  assert [l['path'] for l in lines] == [str(folder / 'a_good.mp4'), str(folder / 'c_garbage.mp4'),
                                        str(folder / 'd_truncated.mp4'),
                                        str(folder / 'more' / 'b_good.mp4'), str(missing)]
  classes = (tiny_actions_root / 'classes.txt').read_text().split()
  for line in (lines[0], lines[3]):
    probabilities = [t['probability'] for t in line['top']]
    assert len(probabilities) == 5 and probabilities == sorted(probabilities, reverse=True)
    assert all(t['class'] in classes for t in line['top']) and 'error' not in line
  assert lines[1]['error'].startswith('cannot be decoded')
  assert lines[2]['error'].startswith('cannot be decoded')
  assert lines[4]['error'] == 'does not exist'
  saved = json.loads((workdir / 'predictions' / 'classes.json').read_text())
  assert saved['videos'] == lines and saved['checkpoint'].startswith('step 4')
  out = result.stdout
  assert out.startswith(f"{folder / 'a_good.mp4'}\n  1. ")  # A small batch shows each video.
  assert 'predicted   2 of 5 videos' in out and 'unreadable  3' in out
  for line in lines[1:3] + lines[4:]:
    assert f"{line['path']}: {line['error']}" in out
  assert str(workdir / 'predictions' / 'classes.jsonl') in out


def test_a_split_gives_one_line_per_record(workdir, tiny_actions_root, capsys, monkeypatch):
  from vidjax.data import registry
  from vidjax.tasks import classification_predict
  monkeypatch.setattr(classification_predict, 'SHOWN_VIDEOS', 4)  # 12 videos: summary only.
  config = tiny_config(tiny_actions_root, **{'train.num_steps': 4})
  lines = predict.predict(config, str(workdir), [], split='test')
  records = registry.load_split(config.data, 'test').records
  assert [l['path'] for l in lines] == [r.path for r in records] and len(lines) == 12
  assert all(len(l['top']) == 5 for l in lines)
  written = (workdir / 'predictions' / 'classes.jsonl').read_text().splitlines()
  assert [json.loads(l) for l in written] == lines
  out = capsys.readouterr().out
  assert 'predicted   12 of 12 videos' in out and '  1. ' not in out
