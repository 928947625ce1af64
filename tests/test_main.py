"""The command line, as a user runs it: exit codes, one-line errors, predict."""
from tests.conftest import TINY_CLASSIFIER_FLAGS as TINY
from tests.conftest import run_vidjax as vidjax


def one_line_error(result) -> str:
  assert result.returncode == 2, result.stderr[-2000:]
  lines = [l for l in result.stderr.splitlines() if l.startswith('error: ')]
  assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr[-2000:]
  return lines[0]


def test_config_typo_is_one_line_and_exit_2(tmp_path):
  result = vidjax('--config', 'configs/default.py', '--workdir', str(tmp_path),
                  '--config.optim.lerning_rate=1')
  assert one_line_error(result) == ("error: unknown config key 'optim.lerning_rate' "
                                    "(did you mean 'optim.learning_rate'?)")


def test_missing_dataset_root_is_one_line(tmp_path):
  result = vidjax('--config', 'configs/default.py', '--workdir', str(tmp_path),
                  '--config.data.dataset=ucf101', f'--config.data.root={tmp_path}/nowhere')
  assert 'ucf101 root not found' in one_line_error(result)


def test_predict_prints_ranked_classes(trained_workdir, tiny_actions_root):
  video = sorted((tiny_actions_root / 'videos' / 'test').glob('*.mp4'))[0]
  result = vidjax('--config', 'configs/default.py', '--workdir', str(trained_workdir),
                  f'--config.data.root={tiny_actions_root}', *TINY,
                  '--mode', 'predict', '--video', str(video))
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.strip().splitlines()
  assert lines[0] == str(video)
  ranked = [line.split() for line in lines[1:6]]
  assert [r[0] for r in ranked] == ['1.', '2.', '3.', '4.', '5.']
  probabilities = [float(r[2]) for r in ranked]
  assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0001
  assert all(r[1] in (tiny_actions_root / 'classes.txt').read_text().split() for r in ranked)


def test_predict_on_bad_paths_is_one_line(trained_workdir, tiny_actions_root, tmp_path):
  garbage = tmp_path / 'garbage.mp4'
  garbage.write_bytes(b'\x00' * 500)
  for path, expected in [(tmp_path / 'nope.mp4', 'does not exist'), (garbage, 'cannot be decoded')]:
    result = vidjax('--config', 'configs/default.py', '--workdir', str(trained_workdir),
                    f'--config.data.root={tiny_actions_root}', *TINY,
                    '--mode', 'predict', '--video', str(path))
    assert expected in one_line_error(result)


def test_evaluate_mode_and_wrong_model_checkpoint(trained_workdir, tiny_actions_root):
  result = vidjax('--config', 'configs/default.py', '--workdir', str(trained_workdir),
                  f'--config.data.root={tiny_actions_root}', *TINY, '--mode', 'evaluate')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'test top-1 / top-5' in result.stdout
  result = vidjax('--config', 'configs/default.py', '--workdir', str(trained_workdir),
                  f'--config.data.root={tiny_actions_root}', *TINY, '--config.model.name=single_frame')
  assert ("holds a checkpoint with model.name='lrcn', but this config has "
          "model.name='single_frame'") in one_line_error(result)
