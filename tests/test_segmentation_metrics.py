"""MS-TCN's segmentation metrics (accuracy, edit, F1@k) equal hand computations."""
import numpy as np
import pytest

from vidjax.metrics import segmentation as seg

BG = (0,)


def test_segments_of_runs_and_background():
  labels = [0, 0, 1, 1, 1, 2, 0, 0, 2]
  got = seg.segments_of(labels)
  np.testing.assert_array_equal(got[0], [0, 1, 2, 0, 2])
  np.testing.assert_array_equal(got[1], [0, 2, 5, 6, 8])
  np.testing.assert_array_equal(got[2], [2, 5, 6, 8, 9])  # Ends are exclusive.
  labels, starts, ends = seg.segments_of([0, 0, 1, 1, 1, 2, 0, 0, 2], background=BG)
  np.testing.assert_array_equal(labels, [1, 2, 2])
  np.testing.assert_array_equal(starts, [2, 5, 8])
  np.testing.assert_array_equal(ends, [5, 6, 9])
  assert all(len(x) == 0 for x in seg.segments_of([], background=BG))
  assert all(len(x) == 0 for x in seg.segments_of([0, 0, 0], background=BG))


def test_edit_score_by_hand():
  # [1, 2, 3] vs [1, 3]: one deletion over the longer length 3: 1 - 1/3.
  assert seg.edit_score([1, 1, 2, 2, 3], [1, 1, 1, 3, 3]) == pytest.approx(2 / 3)
  # [1, 2] vs [2, 1]: two substitutions: 1 - 2/2 = 0.
  assert seg.edit_score([1, 1, 2], [2, 1, 1]) == 0.0
  # [1, 2, 3, 4] vs [2, 3, 4, 1]: delete 1, insert 1: 1 - 2/4 = 0.5.
  assert seg.edit_score([1, 2, 3, 4], [2, 3, 4, 1]) == 0.5
  assert seg.edit_score([3, 3, 1], [3, 1, 1]) == 1.0  # Same order, other boundaries.


def test_edit_score_leaves_out_background():
  pred, gt = [0, 1, 1, 0, 0, 2, 2], [1, 1, 1, 2, 2, 2, 2]
  # With background 0 dropped both are [1, 2]: 1. Kept, [0, 1, 0, 2] vs [1, 2] needs
  # two deletions: 1 - 2/4 = 0.5.
  assert seg.edit_score(pred, gt, background=BG) == 1.0
  assert seg.edit_score(pred, gt) == 0.5
  # A segment split by background counts twice: [1, 1] vs [1]: 1 - 1/2.
  assert seg.edit_score([1, 1, 0, 1, 1], [1, 1, 1, 1, 1], background=BG) == 0.5
  # Both all background: no segments at all, defined as 1 (MS-TCN divides by zero).
  assert seg.edit_score([0, 0, 0], [0, 0, 0], background=BG) == 1.0


def test_f1_counts_of_an_over_segmented_action():
  gt = [1] * 10
  pred = [1, 1, 1, 1, 1, 0, 1, 1, 1, 1]
  # Background splits the prediction into [0, 5) (IoU 5/10 = 0.5) and [6, 10) (0.4).
  # The first takes the one true segment; the second's best is taken: a fp.
  assert seg.f1_counts(pred, gt, 0.1, BG) == (1, 1, 0)
  assert seg.f1_counts(pred, gt, 0.5, BG) == (1, 1, 0)  # IoU 0.5 >= 0.5.
  assert seg.f1_counts(pred, gt, 0.6, BG) == (0, 2, 1)
  # Split by another label: [0, 4) IoU 0.4, the 2 on [4, 6) has no true segment of its
  # label (fp), [6, 10) IoU 0.4 finds the true segment taken (fp).
  assert seg.f1_counts([1] * 4 + [2] * 2 + [1] * 4, gt, 0.25, BG) == (1, 2, 0)
  assert seg.f1_counts([1] * 4 + [2] * 2 + [1] * 4, gt, 0.5, BG) == (0, 3, 1)


def test_f1_takes_the_best_true_segment_even_when_taken():
  # True segments G1 [0, 10), G2 [12, 20); predicted P1 [0, 4), P2 [5, 14).
  # P1: IoU with G1 4/10 = 0.4, a tp at 0.1. P2: with G1 5/14 = 0.357, with G2 2/15 =
  # 0.133. Its best, G1, is taken, so it is a fp although G2 passes 0.1 (MS-TCN's rule).
  # G2 stays unmatched: fn 1.
  gt = [1] * 10 + [0] * 2 + [1] * 8
  pred = [1] * 4 + [0] + [1] * 9 + [0] * 6
  assert seg.f1_counts(pred, gt, 0.1, BG) == (1, 1, 1)


def test_f1_counts_and_background():
  gt = pred = [0, 0, 1, 1, 1, 1, 0, 0]
  assert seg.f1_counts(pred, gt, 0.5, BG) == (1, 0, 0)
  assert seg.f1_counts(pred, gt, 0.5) == (3, 0, 0)  # Background runs are segments too.
  assert seg.f1_counts([0, 0, 0], [0, 0, 0], 0.5, BG) == (0, 0, 0)
  assert seg.f1_counts([1, 1, 0], [0, 0, 0], 0.5, BG) == (0, 1, 0)  # No true segment: fp.
  assert seg.f1_counts([0, 0, 0], [2, 2, 0], 0.5, BG) == (0, 0, 1)


def test_accuracy_is_over_all_frames_with_background():
  # v1: 3 of 4 frames; v2: 1 of 2 (a correct background frame counts). 4/6, not the
  # mean of per-video accuracies (0.625).
  pairs = [([1, 1, 2, 2], [1, 1, 1, 2]), ([0, 0], [0, 1])]
  assert seg.segmentation_scores(pairs, background=BG)['accuracy'] == pytest.approx(4 / 6)


def test_segmentation_scores_by_hand():
  v1 = ([1] * 4 + [0] + [1] * 9 + [0] * 6, [1] * 10 + [0] * 2 + [1] * 8)
  v2 = ([1, 1, 1, 1, 1, 0, 1, 1, 1, 1], [1] * 10)
  # Accuracy: v1 has 4 + 5 + 2 = 11 of 20 frames right, v2 9 of 10: 20/30.
  # Edit: v1 [1, 1] vs [1, 1]: 1; v2 [1, 1] vs [1]: 0.5; mean 0.75.
  # v1 counts (tp, fp, fn): (1, 1, 1) at 0.1 and 0.25 (see above), (0, 2, 2) at 0.5.
  # v2: (1, 1, 0) at every overlap. Summed: (2, 2, 1), (2, 2, 1), (1, 3, 2).
  # F1 = 2tp / (2tp + fp + fn): 4/7, 4/7, 2/7.
  scores = seg.segmentation_scores([v1, v2], background=BG)
  assert sorted(scores) == ['accuracy', 'edit', 'f1@10', 'f1@25', 'f1@50']
  assert scores['accuracy'] == pytest.approx(2 / 3)
  assert scores['edit'] == 0.75
  assert scores['f1@10'] == pytest.approx(4 / 7)
  assert scores['f1@25'] == pytest.approx(4 / 7)
  assert scores['f1@50'] == pytest.approx(2 / 7)


def test_all_background_video_and_errors():
  scores = seg.segmentation_scores([([0, 0, 0], [0, 0, 0])], background=BG)
  assert scores == {'accuracy': 1.0, 'edit': 1.0, 'f1@10': 0.0, 'f1@25': 0.0, 'f1@50': 0.0}
  with pytest.raises(ValueError, match='3 frames but its ground truth 2'):
    seg.segmentation_scores([([1, 1, 1], [1, 1])])
  with pytest.raises(ValueError, match='no frames'):
    seg.segmentation_scores([])


def _literal_f1_counts(pred, gt, overlap, background):
  """MS-TCN's matching written out: IoU over the hull, zeroed for other labels."""
  def runs(labels):
    out, start = [], 0
    for t in range(1, len(labels) + 1):
      if t == len(labels) or labels[t] != labels[start]:
        if labels[start] not in background:
          out.append((labels[start], start, t))
        start = t
    return out
  p, y = runs(list(pred)), runs(list(gt))
  hits, tp, fp = [False] * len(y), 0, 0
  for label, start, end in p:
    ious = [(min(end, e) - max(start, s)) / (max(end, e) - min(start, s)) * (label == lab)
            for lab, s, e in y]
    best = max(range(len(ious)), key=lambda j: (ious[j], -j)) if ious else None
    if best is not None and ious[best] >= overlap and not hits[best]:
      tp, hits[best] = tp + 1, True
    else:
      fp += 1
  return tp, fp, len(y) - sum(hits)


def test_f1_counts_match_a_literal_reference_on_random_videos():
  rng = np.random.default_rng(0)
  for _ in range(30):
    gt = np.repeat(rng.integers(0, 3, 8), rng.integers(1, 6, 8))
    pred = np.where(rng.uniform(size=gt.size) < 0.8, gt, rng.integers(0, 3, gt.size))
    for overlap in (0.1, 0.25, 0.5):
      assert seg.f1_counts(pred, gt, overlap, BG) == _literal_f1_counts(pred, gt, overlap, BG)
