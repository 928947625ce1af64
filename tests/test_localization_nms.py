"""1-D NMS, Soft-NMS and score voting (ActionFormer's post-processing) by hand."""
import math

import numpy as np
import pytest

from vidjax.tasks import localization_nms as nms

# C, A, D, B in shuffled order. IoU(A, B) = 9/11 = 0.818, IoU(A, C) = 2/18 = 0.111,
# IoU(B, C) = 3/17 = 0.176, D overlaps nothing.
SEGMENTS = np.array([[8, 18], [0, 10], [20, 30], [1, 11]], float)
SCORES = np.array([0.7, 0.9, 0.6, 0.8])
ONE_LABEL = np.zeros(4, int)


def test_hard_nms_keeps_the_expected_segments():
  # A (0.9) first; B overlaps it 0.818 >= 0.5: gone; C overlaps A 0.111: kept; D kept.
  keep = nms.nms_1d(SEGMENTS, SCORES, ONE_LABEL, iou_threshold=0.5)
  np.testing.assert_array_equal(keep, [1, 0, 2])
  # At 0.15, C still survives: only kept segments suppress, and B (0.176 with C) is gone.
  np.testing.assert_array_equal(nms.nms_1d(SEGMENTS, SCORES, ONE_LABEL, iou_threshold=0.15),
                                [1, 0, 2])
  # At 0.1, A suppresses C (0.111 >= 0.1).
  np.testing.assert_array_equal(nms.nms_1d(SEGMENTS, SCORES, ONE_LABEL, iou_threshold=0.1),
                                [1, 2])
  np.testing.assert_array_equal(
      nms.nms_1d(SEGMENTS, SCORES, ONE_LABEL, iou_threshold=0.5, max_segments=2), [1, 0])


def test_iou_at_the_threshold_suppresses():
  # [0, 5] vs [0, 10]: IoU 0.5 exactly.
  keep = nms.nms_1d([[0, 10], [0, 5]], [0.9, 0.8], [0, 0], iou_threshold=0.5)
  np.testing.assert_array_equal(keep, [0])


def test_classes_never_suppress_each_other():
  segments, scores = [[0, 10], [0, 10]], [0.9, 0.8]
  np.testing.assert_array_equal(nms.nms_1d(segments, scores, [0, 1], iou_threshold=0.5), [0, 1])
  np.testing.assert_array_equal(nms.nms_1d(segments, scores, [1, 1], iou_threshold=0.5), [0])
  out_segments, out_scores, out_labels = nms.soft_nms_1d(segments, scores, [0, 1])
  np.testing.assert_allclose(out_scores, [0.9, 0.8])  # No decay across labels.
  np.testing.assert_array_equal(out_labels, [0, 1])


A, B, C = [0, 10], [5, 15], [10, 20]  # IoU(A, B) = IoU(B, C) = 5/15 = 1/3, IoU(A, C) = 0.


def test_gaussian_decay_by_hand():
  # Take A (0.9): B decays by exp(-(1/3)^2 / 0.5) = exp(-2/9) = 0.800737 to 0.640590;
  # C (IoU 0) keeps 0.7 and is taken next, decaying B again: 0.640590 * 0.800737 = 0.512944.
  segments, scores, labels = nms.soft_nms_1d([A, B, C], [0.9, 0.8, 0.7], [3, 3, 3], sigma=0.5)
  np.testing.assert_allclose(segments, [A, C, B])
  np.testing.assert_allclose(scores, [0.9, 0.7, 0.8 * math.exp(-2 / 9) ** 2])
  np.testing.assert_allclose(scores[2], 0.512944, atol=1e-6)
  np.testing.assert_array_equal(labels, [3, 3, 3])


def test_linear_decay_by_hand():
  # Threshold 0.3: B (IoU 1/3 >= 0.3 with A) becomes 0.8 * 2/3 = 0.533333, so C (0.7) goes
  # next and B decays again: 0.533333 * 2/3 = 0.355556.
  _, scores, _ = nms.soft_nms_1d([A, B, C], [0.9, 0.8, 0.7], [0, 0, 0], method='linear',
                                 iou_threshold=0.3)
  np.testing.assert_allclose(scores, [0.9, 0.7, 0.8 * 4 / 9])
  # Threshold 0.4: IoU 1/3 is below it, nothing decays.
  _, scores, _ = nms.soft_nms_1d([A, B, C], [0.9, 0.8, 0.7], [0, 0, 0], method='linear',
                                 iou_threshold=0.4)
  np.testing.assert_allclose(scores, [0.9, 0.8, 0.7])
  with pytest.raises(ValueError, match="'box'"):
    nms.soft_nms_1d([A], [0.9], [0], method='box')


def test_min_score_drops_segments():
  # B decays to 0.640590 < 0.7: dropped. D starts below min_score: dropped.
  segments, scores, _ = nms.soft_nms_1d([A, B, [30, 40]], [0.9, 0.8, 0.0005], [0, 0, 0],
                                        min_score=0.7)
  np.testing.assert_allclose(segments, [A])
  np.testing.assert_allclose(scores, [0.9])
  for method in ('hard', 'none'):
    _, scores, _ = nms.postprocess([A, C], [0.9, 0.0005], [0, 0], method=method, min_score=1e-3)
    np.testing.assert_allclose(scores, [0.9])


def test_voting_averages_boundaries_by_score():
  # A = [0, 10] (0.6) suppresses B = [2, 10] (0.3, IoU 0.8) and C = [0, 14] (0.1, IoU
  # 10/14 = 0.714). D = [2, 10] (0.9) has another label: kept, and it neither votes for A
  # nor takes A's votes.
  segments = [[0, 10], [2, 10], [0, 14], [2, 10]]
  scores, labels = [0.6, 0.3, 0.1, 0.9], [0, 0, 0, 1]
  # Voting at 0.75: A and B: start (0.6 * 0 + 0.3 * 2) / 0.9 = 0.666667, end 10.
  out, out_scores, out_labels = nms.postprocess(segments, scores, labels, method='hard',
                                                iou_threshold=0.5, voting_threshold=0.75)
  np.testing.assert_allclose(out, [[2, 10], [2 / 3, 10]])
  np.testing.assert_allclose(out_scores, [0.9, 0.6])  # Voting leaves scores alone.
  np.testing.assert_array_equal(out_labels, [1, 0])
  # At 0.7, C joins: start (0.6 * 0 + 0.3 * 2 + 0.1 * 0) / 1.0 = 0.6,
  # end (0.6 * 10 + 0.3 * 10 + 0.1 * 14) / 1.0 = 10.4.
  out, _, _ = nms.postprocess(segments, scores, labels, method='hard', iou_threshold=0.5,
                              voting_threshold=0.7)
  np.testing.assert_allclose(out, [[2, 10], [0.6, 10.4]])


def test_postprocess_sorts_and_caps_over_all_classes():
  segments = [[0, 10], [0, 10], [20, 30], [40, 50]]
  scores, labels = [0.5, 0.9, 0.7, 0.8], [0, 1, 2, 3]
  out, out_scores, out_labels = nms.postprocess(segments, scores, labels, method='none',
                                                max_segments=3)
  np.testing.assert_allclose(out_scores, [0.9, 0.8, 0.7])
  np.testing.assert_array_equal(out_labels, [1, 3, 2])
  np.testing.assert_allclose(out, [[0, 10], [40, 50], [20, 30]])
  # 'soft' is gaussian Soft-NMS, class-wise.
  soft = nms.postprocess([A, B, C], [0.9, 0.8, 0.7], [0, 0, 0], method='soft', sigma=0.5)
  np.testing.assert_allclose(soft[1], [0.9, 0.7, 0.512944], atol=1e-6)
  with pytest.raises(ValueError, match="'fast'"):
    nms.postprocess([A], [0.9], [0], method='fast')
  with pytest.raises(ValueError, match=r'\[N, 2\]'):
    nms.postprocess([A, B], [0.9], [0, 0])


def test_empty_input():
  assert nms.nms_1d(np.zeros((0, 2)), [], [], iou_threshold=0.5).shape == (0,)
  for method in ('soft', 'hard', 'none'):
    segments, scores, labels = nms.postprocess([], [], np.zeros(0, int), method=method,
                                               voting_threshold=0.75)
    assert segments.shape == (0, 2) and scores.shape == (0,) and labels.shape == (0,)
  segments, scores, labels = nms.soft_nms_1d(np.zeros((0, 2)), [], np.zeros(0, int))
  assert segments.shape == (0, 2) and scores.shape == (0,) and labels.shape == (0,)
