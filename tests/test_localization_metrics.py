"""ActivityNet detection mAP equals hand computations and a literal slow reference."""
import json

import numpy as np
import pytest

from vidjax.metrics import localization as loc


def test_tiou_thresholds():
  assert loc.THUMOS14_TIOUS == (0.3, 0.4, 0.5, 0.6, 0.7)
  assert loc.ACTIVITYNET_TIOUS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def test_segment_iou_by_hand():
  # [0, 10] vs [5, 15]: 5 / 15;  vs [10, 20]: touching, 0;  vs itself: 1;  vs [2, 4]: 2 / 10;
  # vs the zero-length [3, 3]: 0 / 10 = 0.
  got = loc.segment_iou([0, 10], [[5, 15], [10, 20], [0, 10], [2, 4], [3, 3]])
  np.testing.assert_allclose(got, [1 / 3, 0.0, 1.0, 0.2, 0.0])
  # Two zero-length segments: union 0, defined as tIoU 0 (not NaN).
  assert loc.segment_iou([3, 3], [[3, 3]])[0] == 0.0
  pair = loc.pairwise_tiou([[0, 10], [5, 15]], [[0, 10], [10, 20], [5, 15]])
  # Row 2: [5, 15] vs [0, 10]: 5 / 15;  vs [10, 20]: 5 / 15;  vs itself: 1.
  np.testing.assert_allclose(pair, [[1, 0, 1 / 3], [1 / 3, 1 / 3, 1]])


def test_interpolated_ap_envelope():
  # precision [1, 0.5, 2/3], recall [0.5, 0.5, 1]: the envelope is 1 up to recall 0.5 and
  # 2/3 from 0.5 to 1, so AP = 0.5 * 1 + 0.5 * 2/3 = 0.8333.
  assert loc.interpolated_ap([1, 0.5, 2 / 3], [0.5, 0.5, 1]) == pytest.approx(5 / 6)


def test_perfect_prediction_is_ap_one():
  gt = [('v1', 0, 10), ('v1', 20, 30), ('v2', 5, 6)]
  pred = [(v, s, e, 0.9) for v, s, e in gt]
  np.testing.assert_allclose(loc.average_precision(gt, pred, loc.ACTIVITYNET_TIOUS), np.ones(10))


def test_tp_fp_tp_with_two_ground_truths():
  gt = [('v1', 0, 10), ('v1', 20, 30)]
  # By score: tp, fp (no overlap), tp. precision 1, 1/2, 2/3; recall 1/2, 1/2, 1.
  # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
  pred = [('v1', 20, 30, 0.7), ('v1', 40, 50, 0.8), ('v1', 0, 10, 0.9)]
  np.testing.assert_allclose(loc.average_precision(gt, pred, (0.5,)), [5 / 6])


def test_a_second_detection_of_one_ground_truth_is_a_false_positive():
  gt = [('v1', 0, 10), ('v1', 20, 30)]
  # The duplicate of [0, 10] (score 0.8) is a fp, so it is tp, fp, tp again: AP 5/6.
  # Counting it as a tp would give recall 1 at rank 2 and AP 1.
  pred = [('v1', 0, 10, 0.9), ('v1', 0, 10, 0.8), ('v1', 20, 30, 0.7)]
  np.testing.assert_allclose(loc.average_precision(gt, pred, (0.5,)), [5 / 6])


def test_a_match_in_another_video_is_a_false_positive():
  gt = [('v1', 0, 10)]
  # The top prediction overlaps perfectly but in v2: fp, then tp. precision 0, 1/2;
  # recall 0, 1: the envelope is 1/2 up to recall 1, AP = 0.5.
  pred = [('v2', 0, 10, 0.9), ('v1', 0, 10, 0.8)]
  np.testing.assert_allclose(loc.average_precision(gt, pred, (0.5,)), [0.5])


def test_tiou_exactly_at_the_threshold_counts():
  gt = [('v1', 0, 10)]
  # [0, 7] vs [0, 10]: tIoU 7/10 = 0.7 exactly, which is >= 0.7.
  np.testing.assert_allclose(
      loc.average_precision(gt, [('v1', 0, 7, 1.0)], loc.THUMOS14_TIOUS), np.ones(5))
  # [0, 5]: tIoU 0.5, a tp at 0.5 but not at 0.55.
  np.testing.assert_allclose(
      loc.average_precision(gt, [('v1', 0, 5, 1.0)], (0.5, 0.55)), [1.0, 0.0])


def test_greedy_matching_takes_the_highest_tiou_ground_truth():
  gt = [('v1', 0, 10), ('v1', 4, 14)]  # A, B
  # p1 = [3, 13] (0.9): tIoU with A 7/13 = 0.538, with B 9/11 = 0.818 -> takes B.
  # p2 = [0, 10] (0.8): A (tIoU 1), B 6/14 = 0.43.
  # At 0.5 and 0.7 both are tp: AP 1. (Taking the first listed gt A for p1 would
  # leave p2 only B at 0.43: a fp, and AP 0.5 at 0.5.)
  # At 0.9: p1 fp, p2 tp: precision 0, 1/2; recall 0, 1/2: AP = 1/2 * 1/2 = 0.25.
  pred = [('v1', 3, 13, 0.9), ('v1', 0, 10, 0.8)]
  np.testing.assert_allclose(loc.average_precision(gt, pred, (0.5, 0.7, 0.9)), [1, 1, 0.25])


def test_a_matched_ground_truth_passes_to_the_next_best():
  gt = [('v1', 0, 10), ('v1', 2, 12)]  # A, B
  # p1 = [0, 10] takes A. p2 = [0, 11]: A 10/11 = 0.909 (taken), B 9/12 = 0.75.
  # At 0.5: p2 takes B, AP 1. At 0.8: B is too far, p2 is a fp: precision 1, 1/2;
  # recall 1/2, 1/2: AP = 0.5.
  pred = [('v1', 0, 10, 0.9), ('v1', 0, 11, 0.8)]
  np.testing.assert_allclose(loc.average_precision(gt, pred, (0.5, 0.8)), [1.0, 0.5])


def test_a_tie_in_tiou_goes_to_the_later_ground_truth():
  gt = [('v1', 0, 10), ('v1', 5, 15)]  # A, B
  # p1 = [2.5, 12.5]: tIoU 7.5 / 12.5 = 0.6 with both; the official reversed argsort
  # (numpy sorting ties stably) tries B first. p2 = [5, 15]: B is taken, A has 5/15:
  # a fp. precision 1, 1/2; recall 1/2, 1/2: AP 0.5 (taking A first would give 1).
  pred = [('v1', 2.5, 12.5, 0.9), ('v1', 5, 15, 0.8)]
  np.testing.assert_allclose(loc.average_precision(gt, pred, (0.5,)), [0.5])


def test_no_predictions_and_no_ground_truth():
  np.testing.assert_array_equal(loc.average_precision([('v', 0, 1)], [], (0.5, 0.7)), [0, 0])
  assert np.isnan(loc.average_precision([], [('v', 0, 1, 0.5)], (0.5,))).all()


def _gt(video, t0, t1, label):
  return {'video_id': video, 'segment': (t0, t1), 'label': label}


def _pred(video, t0, t1, label, score):
  return {'video_id': video, 'segment': (t0, t1), 'label': label, 'score': score}


def test_detection_map_excludes_classes_without_ground_truth():
  names = ['jump', 'run', 'swim']
  gt = [_gt('v1', 0, 10, 0), _gt('v1', 20, 30, 1)]
  # jump: perfect, AP 1. run: no predictions, AP 0. swim: no ground truth (its one
  # prediction is scored nowhere), None and out of the mean: mAP = (1 + 0) / 2 = 0.5,
  # not (1 + 0 + 0) / 3.
  pred = [_pred('v1', 0, 10, 0, 0.9), _pred('v1', 40, 50, 2, 0.8)]
  result = loc.detection_map(gt, pred, names, tious=(0.5, 0.7))
  assert result['per_class_ap'] == {'jump': [1.0, 1.0], 'run': [0.0, 0.0], 'swim': None}
  assert result['num_ground_truth'] == {'jump': 1, 'run': 1, 'swim': 0}
  assert result['map'] == [0.5, 0.5]
  assert result['average_map'] == 0.5
  assert result['tious'] == [0.5, 0.7]
  json.dumps(result, allow_nan=False)  # Plain floats only.


def test_detection_map_averages_over_tious_and_classes():
  names = ['a', 'b']
  gt = [_gt('v1', 0, 10, 0), _gt('v1', 20, 30, 0), _gt('v2', 0, 10, 1)]
  # a: tp, fp, tp at both thresholds: 5/6. b: [0, 6] has tIoU 0.6: tp at 0.5, fp at 0.7.
  # mAP@0.5 = (5/6 + 1) / 2 = 11/12;  mAP@0.7 = (5/6 + 0) / 2 = 5/12;  mean = 2/3.
  pred = [_pred('v1', 0, 10, 0, 0.9), _pred('v1', 40, 50, 0, 0.8), _pred('v1', 20, 30, 0, 0.7),
          _pred('v2', 0, 6, 1, 0.5)]
  result = loc.detection_map(gt, pred, names, tious=(0.5, 0.7))
  np.testing.assert_allclose(result['map'], [11 / 12, 5 / 12])
  assert result['average_map'] == pytest.approx(2 / 3)
  table = loc.per_class_table(result).splitlines()
  assert table[0].split() == ['class', 'n_gt', '0.50', '0.70', 'mean']
  assert table[2].split() == ['a', '2', '0.8333', '0.8333', '0.8333']
  assert table[3].split() == ['b', '1', '1.0000', '0.0000', '0.5000']
  assert table[-1].split() == ['mAP', '3', '0.9167', '0.4167', '0.6667']


def test_detection_map_rejects_bad_labels_and_no_ground_truth():
  with pytest.raises(ValueError, match="label 3"):
    loc.detection_map([_gt('v1', 0, 1, 3)], [], ['a', 'b'])
  with pytest.raises(ValueError, match='undefined'):
    loc.detection_map([], [_pred('v1', 0, 1, 0, 0.5)], ['a'])
  with pytest.raises(ValueError, match='repeated: a'):
    loc.detection_map([_gt('v1', 0, 1, 0)], [], ['a', 'a'])


def test_results_json_round_trip(tmp_path):
  names = ['jump', 'run']
  pred = [_pred('v1', 0.5, 10.25, 1, 0.75), _pred('v2', 3.0, 4.0, 0, 0.5),
          _pred('v1', 1.0, 2.0, 0, 0.25)]
  results = loc.activitynet_results(pred, names)
  assert results['version'] == 'VERSION 1.3'
  assert results['external_data'] == {'used': False, 'details': ''}
  assert results['results']['v1'][0] == {'label': 'run', 'score': 0.75, 'segment': [0.5, 10.25]}
  path = tmp_path / 'results.json'
  path.write_text(json.dumps(results))
  back = loc.read_activitynet_results(path, names)
  # Grouped by video: v1's two predictions, then v2's.
  assert back == [pred[0], pred[2], pred[1]]
  assert loc.read_activitynet_results(results, names) == back
  gt = [_gt('v1', 0.5, 10.25, 1), _gt('v2', 3.0, 4.0, 0)]
  assert loc.detection_map(gt, back, names) == loc.detection_map(gt, pred, names)


def test_reading_an_unknown_label_names_it():
  results = {'results': {'v9': [{'label': 'fly', 'score': 0.5, 'segment': [0, 1]}]}}
  with pytest.raises(ValueError) as info:
    loc.read_activitynet_results(results, ['jump', 'run'])
  assert "'fly'" in str(info.value) and "'v9'" in str(info.value)
  assert '\n' not in str(info.value)
  with pytest.raises(ValueError, match="'results'"):
    loc.read_activitynet_results({'version': 'VERSION 1.3'}, ['jump'])


def _literal_ap(gt, pred, tious):
  """The definition read aloud: by score, each prediction takes the unmatched gt of its
  video with the highest tIoU, if that is >= the threshold; AP sums each rise in recall
  times the best precision at that recall or beyond."""
  aps = []
  for threshold in tious:
    used = [False] * len(gt)
    hits = []
    for video, t0, t1, _ in sorted(pred, key=lambda p: -p[3]):
      best, best_tiou = None, -1.0
      for j, (g_video, g0, g1) in enumerate(gt):
        if g_video != video or used[j]:
          continue
        inter = max(0.0, min(t1, g1) - max(t0, g0))
        tiou = inter / ((t1 - t0) + (g1 - g0) - inter)
        if tiou >= threshold and tiou > best_tiou:
          best, best_tiou = j, tiou
      if best is not None:
        used[best] = True
      hits.append(best is not None)
    precision, recall, found = [], [], 0
    for i, hit in enumerate(hits):
      found += hit
      precision.append(found / (i + 1))
      recall.append(found / len(gt))
    ap, reached = 0.0, 0.0
    for i in range(len(hits)):
      if recall[i] > reached:
        ap += (recall[i] - reached) * max(precision[i:])
        reached = recall[i]
    aps.append(ap)
  return aps


def test_matches_a_literal_reference_on_random_predictions():
  rng = np.random.default_rng(0)
  videos = ['v0', 'v1', 'v2']
  gt = []
  for _ in range(10):
    start = rng.uniform(0, 80)
    gt.append((videos[rng.integers(3)], start, start + rng.uniform(2, 20)))
  pred = []
  for i in range(50):
    if i % 2:  # Jittered copies of ground truth, so that matches and duplicates occur.
      video, t0, t1 = gt[rng.integers(len(gt))]
      t0, t1 = t0 + rng.normal(0, 2), t1 + rng.normal(0, 2)
      video = video if rng.uniform() < 0.9 else videos[rng.integers(3)]
    else:
      video, t0 = videos[rng.integers(3)], rng.uniform(0, 80)
      t1 = t0 + rng.uniform(1, 20)
    pred.append((video, t0, max(t1, t0 + 0.5), rng.uniform()))
  tious = loc.THUMOS14_TIOUS + loc.ACTIVITYNET_TIOUS
  got = loc.average_precision(gt, pred, tious)
  np.testing.assert_allclose(got, _literal_ap(gt, pred, tious), rtol=1e-12, atol=1e-12)
  assert np.any((got > 0.05) & (got < 0.95))  # The case is not trivial.
