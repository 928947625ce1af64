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


def test_evaluate_reports_per_class_metrics_beside_the_training_results(trained_workdir,
                                                                         tiny_actions_root):
  import json
  from tests.test_classification_metrics import event_tags
  before = {name: (trained_workdir / name).read_bytes() for name in ('results.json', 'metrics.jsonl')}
  result = vidjax('--config', 'configs/default.py', '--workdir', str(trained_workdir),
                  f'--config.data.root={tiny_actions_root}', *TINY, '--mode', 'evaluate')
  assert result.returncode == 0, result.stderr[-3000:]
  assert {name: (trained_workdir / name).read_bytes() for name in before} == before
  evaluation = json.loads((trained_workdir / 'evaluation.json').read_text())
  trained = json.loads(before['results.json'])
  names = evaluation['class_names']
  assert names == trained['class_names'] and len(names) == 12
  for fields in (evaluation['test'], evaluation['eval'], trained['test']):
    assert list(fields['per_class']) == names
    assert set(fields['per_class'][names[0]]) == {'precision', 'recall', 'f1', 'support'}
    assert sum(c['support'] for c in fields['per_class'].values()) == fields['num_videos'] == 12
    assert set(fields['macro']) == set(fields['weighted']) == {'precision', 'recall', 'f1'}
    matrix = fields['confusion_matrix']
    assert len(matrix) == 12 and all(len(row) == 12 for row in matrix)
    assert [sum(row) for row in matrix] == [fields['per_class'][n]['support'] for n in names]
    assert 'top1' in fields and 'top5' in fields and 'mean_class_accuracy' in fields
  # Same parameters, same videos: evaluate agrees with the training run's final numbers.
  assert evaluation['test']['confusion_matrix'] == trained['test']['confusion_matrix']
  evaluate_tags = event_tags(trained_workdir / 'tensorboard' / 'evaluate')
  for split in ('eval', 'test'):
    for tag in ('top1', 'macro_f1', 'weighted_recall', 'per_class', 'confusion_matrix'):
      assert evaluate_tags[f'{split}/{tag}'] == {4}, tag  # At the checkpoint's step.
  assert {'test/per_class', 'test/confusion_matrix'} <= set(event_tags(trained_workdir / 'tensorboard'))
  lines = result.stdout.splitlines()
  for split in ('eval', 'test'):
    table = lines.index(f"  {evaluation[split]['split']} per class") + 1
    assert lines[table].split() == ['#', 'class', 'precision', 'recall', 'f1', 'support']
    assert lines[table + 2].split()[1] == names[0]
    assert lines[table + 2 + 12 + 1].split()[:2] == ['macro', 'avg']
