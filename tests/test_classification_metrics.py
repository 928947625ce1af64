"""Classification metrics against scikit-learn, on random and hand-made cases.

The reference call is exactly `precision_recall_fscore_support(labels=range(K),
zero_division=0)`, with average=None / 'macro' / 'weighted'.
"""
import warnings

import numpy as np
import pytest
from sklearn import metrics as sk

from vidjax import report
from vidjax.metrics import classification as cls


def _sklearn(labels, predictions, k):
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # sklearn warns about classes missing from y_true.
    per_class = sk.precision_recall_fscore_support(labels, predictions, labels=range(k),
                                                   average=None, zero_division=0)
    averaged = {a: sk.precision_recall_fscore_support(labels, predictions, labels=range(k),
                                                      average=a, zero_division=0)[:3]
                for a in ('macro', 'weighted')}
    balanced = sk.balanced_accuracy_score(labels, predictions)
  return per_class, averaged, balanced


def _check_against_sklearn(probs, labels):
  k = probs.shape[1]
  result = cls.classification_metrics(probs, labels, k)
  predictions = np.argmax(probs, axis=1)
  (precision, recall, f1, support), averaged, balanced = _sklearn(labels, predictions, k)
  np.testing.assert_allclose(result['precision'], precision, atol=1e-12)
  np.testing.assert_allclose(result['recall'], recall, atol=1e-12)
  np.testing.assert_allclose(result['f1'], f1, atol=1e-12)
  np.testing.assert_array_equal(result['support'], support)
  for average, values in averaged.items():
    assert [result[average][m] for m in cls.AVERAGED] == pytest.approx(list(values), abs=1e-12)
  np.testing.assert_array_equal(result['confusion'],
                                sk.confusion_matrix(labels, predictions, labels=range(k)))
  assert result['top1'] == pytest.approx(sk.accuracy_score(labels, predictions))
  if k > 5:
    assert result['top5'] == pytest.approx(
        sk.top_k_accuracy_score(labels, probs, k=5, labels=range(k)))
  assert result['mean_class_accuracy'] == pytest.approx(balanced)
  return result


@pytest.mark.parametrize('seed', range(6))
def test_random_cases_match_sklearn(seed):
  rng = np.random.default_rng(seed)
  k = int(rng.integers(3, 30))
  n = int(rng.integers(1, 60))
  # Labels from a subset of classes, so some classes are empty or only predicted.
  present = rng.choice(k, size=max(1, k // 2), replace=False)
  labels = rng.choice(present, size=n)
  probs = rng.dirichlet(np.ones(k) * 0.3, size=n)
  probs[np.arange(n), labels] += rng.random(n) * 0.5  # Better than chance, not perfect.
  _check_against_sklearn(probs / probs.sum(1, keepdims=True), labels)


def _one_hot(predictions, k):
  probs = np.full((len(predictions), k), 0.01)
  probs[np.arange(len(predictions)), predictions] = 1.0
  return probs


def test_hand_made_case_with_an_empty_and_a_never_predicted_class():
  # Classes: 0 perfect, 1 half right, 2 never predicted, 3 in neither labels nor predictions,
  # 4 only predicted.
  labels = np.array([0, 0, 1, 1, 2])
  predictions = np.array([0, 0, 1, 4, 1])
  result = _check_against_sklearn(_one_hot(predictions, 5), labels)
  np.testing.assert_allclose(result['precision'], [1, 0.5, 0, 0, 0])
  np.testing.assert_allclose(result['recall'], [1, 0.5, 0, 0, 0])
  np.testing.assert_allclose(result['f1'], [1, 0.5, 0, 0, 0])
  np.testing.assert_array_equal(result['support'], [2, 2, 1, 0, 0])
  assert result['macro'] == pytest.approx({'precision': 0.3, 'recall': 0.3, 'f1': 0.3})
  assert result['weighted']['recall'] == pytest.approx(3 / 5)  # = top-1.
  assert result['mean_class_accuracy'] == pytest.approx(0.5)  # Over classes 0, 1, 2 only.
  assert result['confusion'][1].tolist() == [0, 1, 0, 0, 1]


def test_f1_is_per_class_then_averaged():
  # Precision 1/3 and recall 1 for class 0: F1 = 2tp / (2tp + fp + fn) = 0.5.
  labels = np.array([0, 1, 1, 2, 2, 2])
  predictions = np.array([0, 0, 0, 2, 2, 2])
  result = _check_against_sklearn(_one_hot(predictions, 3), labels)
  assert result['f1'].tolist() == pytest.approx([0.5, 0.0, 1.0])
  assert result['macro']['f1'] == pytest.approx(0.5)


def test_split_fields_are_json_numbers():
  import json
  labels = np.array([0, 1, 1])
  result = cls.classification_metrics(_one_hot(np.array([0, 1, 0]), 3), labels, 3)
  result.update(loss=0.5, num_failed=0)
  fields = json.loads(json.dumps(cls.split_fields(result, ['a', 'b', 'c'])))
  assert fields['confusion_matrix'] == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
  assert fields['per_class']['c'] == {'precision': 0.0, 'recall': 0.0, 'f1': 0.0, 'support': 0}
  assert fields['per_class']['a']['precision'] == pytest.approx(0.5)
  assert set(fields['macro']) == set(fields['weighted']) == {'precision', 'recall', 'f1'}
  assert fields['num_videos'] == 3 and fields['loss'] == 0.5


def test_per_class_table_is_one_line_per_class_and_two_averages():
  names = [f'class_{i:03d}' for i in range(100)] + ['a' * 80]
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 101, 300)
  result = cls.classification_metrics(rng.random((300, 101)), labels, 101)
  lines = cls.per_class_table(result, names).splitlines()
  assert len(lines) == 2 + 101 + 1 + 2
  assert lines[0].split() == ['#', 'class', 'precision', 'recall', 'f1', 'support']
  assert len({len(line) for line in lines}) == 1  # Aligned, long names clipped.
  assert lines[2].split() == ['0', 'class_000', f"{result['precision'][0]:.4f}",
                              f"{result['recall'][0]:.4f}", f"{result['f1'][0]:.4f}",
                              str(result['support'][0])]
  assert lines[-2].split()[:2] == ['macro', 'avg'] and lines[-1].split()[-1] == '300'
  assert lines[-1].split()[2] == f"{result['weighted']['precision']:.4f}"


def test_confusion_table_rows_are_true_classes():
  lines = cls.confusion_table(np.array([[2, 0], [1, 10]])).splitlines()
  assert [line.split() for line in lines] == [['true\\pred', '0', '1'], ['0', '2', '0'],
                                              ['1', '1', '10']]


def event_tags(folder) -> dict[str, set[int]]:
  """{tag: steps} of the TensorBoard event files directly in `folder` (TFRecord framing:
  length, its CRC, the Event proto, its CRC)."""
  import pathlib
  import struct
  from tensorboardX.proto import event_pb2
  tags: dict[str, set[int]] = {}
  for path in pathlib.Path(folder).glob('events.out.tfevents.*'):
    data, at = path.read_bytes(), 0
    while at < len(data):
      (length,) = struct.unpack('<Q', data[at:at + 8])
      event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
      at += 12 + length + 4
      for value in event.summary.value:  # add_text's tags end in '/text_summary'.
        tags.setdefault(value.tag.removesuffix('/text_summary'), set()).add(event.step)
  return tags


def test_writer_without_history_writes_events_elsewhere(tmp_path):
  writer = report.Writer(tmp_path, tensorboard='tensorboard/evaluate', history=False)
  writer.scalars(3, {'test/top1': 0.5})
  writer.text(3, 'test/per_class', 'a  b\n1  2')
  writer.close()
  tags = event_tags(tmp_path / 'tensorboard' / 'evaluate')
  assert {'test/top1', 'test/per_class'} <= set(tags) and tags['test/top1'] == {3}
  assert not (tmp_path / 'metrics.jsonl').exists()


def test_summary_puts_a_table_below_its_key():
  lines = report.summary([('top-1', '0.5'), ('per class', 'a  1\nb  2')]).splitlines()
  assert lines[1:-1] == ['  top-1      0.5', '  per class', '    a  1', '    b  2']
  assert lines[0] == lines[-1] == '=' * 16
