"""HOTA, MOTA and IDF1 through TrackEval's metric classes, on cases computed by hand.

These guard against a silent change in TrackEval's behaviour as much as in ours.
Throughout: two objects, A at (0, 0, 10, 10) and B at (100, 0, 110, 10), in
frames 0..9, so a tracker box either matches one exactly (IoU 1) or nothing.
  MOTA = (TP - FP - IDSW) / #gt;  IDF1 = IDTP / (IDTP + IDFP / 2 + IDFN / 2);
  HOTA = mean over alpha in 0.05 .. 0.95 of sqrt(DetA * AssA), DetA = TP / (TP + FN + FP).
"""
import json

import numpy as np
import pytest

from vidjax.metrics import tracking as trk

A, B, FAR = (0, 0, 10, 10), (100, 0, 110, 10), (300, 300, 320, 340)
FRAMES = range(10)
GT = {t: [[*A, 1], [*B, 2]] for t in FRAMES}


def _score(pred, gt=GT):
  return trk.mot_metrics({'seq': gt}, {'seq': pred})


def test_a_perfect_tracker_scores_one():
  pred = {t: [[*A, 7, 0.9], [*B, 8, 0.8]] for t in FRAMES}  # Ids need not equal gt's.
  result = _score(pred)
  for key in ('HOTA', 'DetA', 'AssA', 'LocA', 'MOTA', 'MOTP', 'IDF1'):
    assert result[key] == pytest.approx(1.0), key
  assert (result['IDSW'], result['TP'], result['FP'], result['FN']) == (0, 20, 0, 0)
  assert (result['MT'], result['ML'], result['Frag']) == (2, 0, 0)
  assert (result['num_gt_dets'], result['num_gt_ids'], result['num_frames']) == (20, 2, 10)
  assert result['per_sequence']['seq']['MOTA'] == pytest.approx(1.0)
  json.dumps(result, allow_nan=False)  # Plain numbers only.


def test_swapping_ids_halfway():
  # Frames 0-4: id 1 on A, 2 on B; frames 5-9: 2 on A, 1 on B.
  pred = {t: [[*A, 1 if t < 5 else 2], [*B, 2 if t < 5 else 1]] for t in FRAMES}
  result = _score(pred)
  # CLEAR: every box is a tp; at frame 5 both A and B change tracker id: IDSW = 2.
  # MOTA = (20 - 0 - 2) / 20 = 0.9.
  assert (result['TP'], result['FP'], result['FN'], result['IDSW']) == (20, 0, 0, 2)
  assert result['MOTA'] == pytest.approx(0.9)
  # Identity: the best one-to-one map (A-1, B-2) agrees in 5 + 5 frames: IDTP 10,
  # IDFN = 20 - 10 = 10, IDFP = 20 - 10 = 10; IDF1 = 10 / (10 + 5 + 5) = 0.5.
  assert (result['IDTP'], result['IDFN'], result['IDFP']) == (10, 10, 10)
  assert result['IDF1'] == pytest.approx(0.5)
  # HOTA: DetA 1. Each tp (e.g. A-1) has TPA 5, FNA 5 (A with id 2), FPA 5 (id 1 on B):
  # AssA = 5 / 15 = 1/3 at every alpha, HOTA = sqrt(1 * 1/3) = 0.577.
  assert result['DetA'] == pytest.approx(1.0)
  assert result['AssA'] == pytest.approx(1 / 3)
  assert result['HOTA'] == pytest.approx(np.sqrt(1 / 3))


def test_missing_one_object_in_every_frame():
  result = _score({t: [[*A, 1]] for t in FRAMES})
  # TP 10, FN 10, FP 0: MOTA = 10 / 20 = 0.5. IDTP 10, IDFN 10: IDF1 = 10 / 15 = 2/3.
  # DetA = 10 / 20 = 1/2, AssA 1 (A keeps its one id): HOTA = sqrt(1/2).
  assert (result['TP'], result['FN'], result['FP'], result['IDSW']) == (10, 10, 0, 0)
  assert result['MOTA'] == pytest.approx(0.5)
  assert result['IDF1'] == pytest.approx(2 / 3)
  assert result['HOTA'] == pytest.approx(np.sqrt(0.5))
  assert (result['MT'], result['ML']) == (1, 1)


def test_false_positives_lower_mota_by_their_share_of_the_ground_truth():
  # A perfect tracker plus a box on nothing (id 9) in frames 0-3: FP 4.
  pred = {t: [[*A, 1], [*B, 2]] + ([[*FAR, 9]] if t < 4 else []) for t in FRAMES}
  result = _score(pred)
  # MOTA = (20 - 4 - 0) / 20 = 0.8 (each fp costs 1/20). IDF1 = 20 / (20 + 4/2) = 10/11.
  # DetA = 20 / (20 + 4) = 5/6, AssA 1: HOTA = sqrt(5/6).
  assert result['FP'] == 4
  assert result['MOTA'] == pytest.approx(0.8)
  assert result['IDF1'] == pytest.approx(10 / 11)
  assert result['HOTA'] == pytest.approx(np.sqrt(5 / 6))


def test_motp_is_the_mean_iou_and_hota_averages_over_alpha():
  # Tracker boxes (0, 0, 8, 8) inside A: IoU 64/100 = 0.64. CLEAR matches at IoU >= 0.5:
  # MOTA 1, MOTP 0.64. HOTA's alphas 0.05 .. 0.60 (12 of 19) match, 0.65 .. 0.95 do not:
  # HOTA = DetA = 12/19. LocA is the matches' mean IoU, 0.64, at the 12 alphas and, as
  # TrackEval defines it, 1 at the 7 without a match: (12 * 0.64 + 7) / 19 = 0.7726.
  result = _score({t: [[0, 0, 8, 8, 1]] for t in FRAMES}, {t: [[*A, 1]] for t in FRAMES})
  assert result['MOTA'] == pytest.approx(1.0)
  assert result['MOTP'] == pytest.approx(0.64)
  assert result['DetA'] == pytest.approx(12 / 19)
  assert result['HOTA'] == pytest.approx(12 / 19)
  assert result['LocA'] == pytest.approx((12 * 0.64 + 7) / 19)


def test_sequences_combine_by_counts_not_by_averaging():
  perfect = {t: [[*A, 1], [*B, 2]] for t in FRAMES}
  short_gt = {t: [[*A, 1], [*B, 2]] for t in range(5)}
  half = {t: [[*A, 1]] for t in range(5)}
  result = trk.mot_metrics({'s1': GT, 's2': short_gt}, {'s1': perfect, 's2': half})
  # s1: TP 20; s2 (5 frames): TP 5, FN 5. Pooled MOTA = 25 / 30 = 5/6, not the mean of
  # 1 and 1/2; IDF1 = 25 / (25 + 5/2) = 10/11; DetA = 25 / 30, AssA 1: HOTA = sqrt(5/6).
  assert result['MOTA'] == pytest.approx(5 / 6)
  assert result['IDF1'] == pytest.approx(10 / 11)
  assert result['HOTA'] == pytest.approx(np.sqrt(5 / 6))
  assert (result['num_gt_ids'], result['num_pred_ids'], result['num_frames']) == (4, 3, 15)
  assert result['per_sequence']['s2']['MOTA'] == pytest.approx(0.5)


def test_an_empty_tracker_and_frames_without_boxes():
  result = _score({})
  assert (result['TP'], result['FN'], result['MOTA'], result['HOTA'], result['IDF1']) == (
      0, 20, 0.0, 0.0, 0.0)
  # Ground truth only in frames 0 and 9: the empty frames between are fine.
  gt = {0: [[*A, 1]], 9: [[*A, 1]]}
  assert _score({0: [[*A, 3]], 9: [[*A, 3]]}, gt)['HOTA'] == pytest.approx(1.0)


def test_mot_text_round_trip(tmp_path):
  pred = {0: np.array([[110.5, 20, 150.25, 100, 2, 0.75], [1, 2, 11, 22, 1, 0.5]]),
          3: np.array([[5, 5, 6, 7, 2, 1.0]])}
  path = tmp_path / 'seq.txt'
  trk.write_mot(path, pred)
  # By frame (1-based) then id; left, top, width, height; -1 for the unused world coordinates.
  assert path.read_text().splitlines() == [
      '1,1,1.0,2.0,10.0,20.0,0.5,-1,-1,-1',
      '1,2,110.5,20.0,39.75,80.0,0.75,-1,-1,-1',
      '4,2,5.0,5.0,1.0,2.0,1.0,-1,-1,-1']
  back = trk.read_mot(path)
  assert list(back) == [0, 3]
  np.testing.assert_array_equal(back[0], pred[0][[1, 0]])
  np.testing.assert_array_equal(back[3], pred[3])
  # Rows without a confidence are written with 1; space-separated files read the same.
  trk.write_mot(path, {0: [[*A, 4]]})
  assert path.read_text() == '1,4,0.0,0.0,10.0,10.0,1.0,-1,-1,-1\n'
  path.write_text('1 4 0 0 10 10 1 -1 -1 -1\n')
  np.testing.assert_array_equal(trk.read_mot(path)[0], [[*A, 4, 1]])


def test_bad_inputs_are_one_line_errors():
  with pytest.raises(ValueError, match="only in pred: \\['other'\\]"):
    trk.mot_metrics({'seq': GT}, {'seq': GT, 'other': {}})
  with pytest.raises(ValueError, match='repeats a track id'):
    _score({0: [[*A, 1], [*B, 1]]})
  with pytest.raises(ValueError, match='pass {sequence name'):
    trk.mot_metrics({0: [[*A, 1]]}, {0: [[*A, 1]]})
  with pytest.raises(ValueError, match='negative'):
    _score({-1: [[*A, 1]]})
