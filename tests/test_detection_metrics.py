"""COCO box mAP through pycocotools on cases computed by hand.

COCO's AP at one IoU threshold is the mean, over the 101 recall thresholds
0, 0.01, ..., 1, of the best precision at that recall or beyond; mAP averages
it over the IoU thresholds 0.50, 0.55, ..., 0.95 and the classes with ground truth.
"""
import json

import numpy as np
import pytest

from vidjax.metrics import detection as det

NAMES = ['car', 'person']


def _image(boxes, labels, scores=None):
  image = {'boxes': np.asarray(boxes, np.float64).reshape(-1, 4), 'labels': np.asarray(labels, int)}
  if scores is not None:
    image['scores'] = np.asarray(scores, np.float64)
  return image


def _eval(gt_images, pred_images, names=NAMES):
  return det.coco_eval(det.coco_ground_truth(gt_images, names), det.coco_results(pred_images))


def test_xyxy_and_xywh_round_trip():
  xyxy = np.array([[1.5, 2.0, 11.5, 7.0], [0.0, 0.0, 100.0, 50.0]])
  np.testing.assert_array_equal(det.xyxy_to_xywh(xyxy), [[1.5, 2.0, 10.0, 5.0], [0, 0, 100, 50]])
  np.testing.assert_array_equal(det.xywh_to_xyxy(det.xyxy_to_xywh(xyxy)), xyxy)
  assert det.xyxy_to_xywh(np.zeros((0, 4))).shape == (0, 4)


def test_coco_json_fields():
  gt = det.coco_ground_truth([_image([[10, 20, 40, 60]], [1]), _image([], [])], NAMES)
  assert gt['images'] == [{'id': 0}, {'id': 1}]
  assert gt['categories'] == [{'id': 0, 'name': 'car'}, {'id': 1, 'name': 'person'}]
  assert gt['annotations'] == [{'id': 1, 'image_id': 0, 'category_id': 1, 'bbox': [10, 20, 30, 40],
                                'area': 1200.0, 'iscrowd': 0}]
  results = det.coco_results([_image([], [], []), _image([[1, 2, 4, 6]], [0], [0.25])])
  assert results == [{'image_id': 1, 'category_id': 0, 'bbox': [1, 2, 3, 4], 'score': 0.25}]
  json.dumps(gt), json.dumps(results)  # Plain JSON types only.


def test_perfect_predictions_score_one(tmp_path):
  # A small (10 x 10), a medium (50 x 50) and a large (120 x 120) object: every area range has one.
  gt = [_image([[0, 0, 10, 10], [20, 20, 70, 70]], [0, 1]),
        _image([[0, 0, 120, 120], [200, 200, 210, 210]], [1, 1])]
  pred = [dict(image, scores=np.full(len(image['labels']), 0.9)) for image in gt]
  result = _eval(gt, pred)
  for key in ('mAP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR10', 'AR100'):
    assert result[key] == pytest.approx(1.0), key
  # AR@1 keeps one detection per image and class: image 1 has two persons, so person's
  # recall is 2/3 (one of image 0, one of image 1's two), car's 1: (1 + 2/3) / 2 = 5/6.
  assert result['AR1'] == pytest.approx(5 / 6)
  assert result['per_class_AP'] == pytest.approx({'car': 1.0, 'person': 1.0})
  assert result['num_ground_truth'] == {'car': 1, 'person': 3}
  # The same numbers from the JSON files an official tool would read.
  (tmp_path / 'gt.json').write_text(json.dumps(det.coco_ground_truth(gt, NAMES)))
  (tmp_path / 'results.json').write_text(json.dumps(det.coco_results(pred)))
  assert det.coco_eval(tmp_path / 'gt.json', str(tmp_path / 'results.json')) == result


def test_a_box_at_iou_0_64_passes_three_of_the_ten_thresholds():
  # [0, 0, 8, 8] inside [0, 0, 10, 10]: IoU = 64 / 100 = 0.64 (not 0.60, which sits on a
  # threshold where rounding decides). It is a tp at 0.50, 0.55, 0.60 (AP 1 each) and a fp
  # at 0.65 ... 0.95 (AP 0 each): AP50 = 1, AP75 = 0, mAP = 3 / 10.
  result = _eval([_image([[0, 0, 10, 10]], [0])], [_image([[0, 0, 8, 8]], [0], [0.9])], ['car'])
  assert result['AP50'] == pytest.approx(1.0)
  assert result['AP75'] == 0.0
  assert result['mAP'] == pytest.approx(0.3)
  assert result['per_class_AP'] == {'car': pytest.approx(0.3)}
  assert result['AR100'] == pytest.approx(0.3)  # Recall 1 at 3 thresholds, 0 at 7.


def test_a_wrong_label_costs_ap_that_the_class_agnostic_score_gives_back():
  # Two cars; the detector finds both, at IoU 0.64 and 1, but calls the second a person.
  # With classes: car has one tp of two (recall 1/2, precision 1): AP50 = 51 / 101; person has
  # no ground truth (absent). As one class, both boxes are tps at IoU 0.50-0.60: AP 1 at those
  # 3 thresholds, so AP50 = 1. At the 7 from 0.65 up, the first-ranked box is a fp: precision
  # 1/2 at recall 1/2, AP = 51 * 1/2 / 101. mAP = (3 + 7 * 51 / 202) / 10.
  gt = [_image([[0, 0, 10, 10], [20, 0, 30, 10]], [0, 0])]
  pred = [_image([[0, 0, 8, 8], [20, 0, 30, 10]], [0, 1], [0.9, 0.8])]
  result = _eval(gt, pred)
  assert result['per_class_AP50'] == {'car': pytest.approx(51 / 101), 'person': None}
  assert result['AP50'] == pytest.approx(51 / 101)
  one = det.coco_eval(*det.class_agnostic(det.coco_ground_truth(gt, NAMES),
                                          det.coco_results(pred)))
  assert one['AP50'] == pytest.approx(1.0)
  assert one['per_class_AP'] == {'object': pytest.approx((3 + 7 * 51 / 202) / 10)}
  assert one['mAP'] == one['per_class_AP']['object']


def test_a_higher_scored_false_positive_halves_precision():
  gt = [_image([[0, 0, 10, 10]], [0])]
  # By score: fp (no overlap, 0.9), tp (0.8). precision 0, 1/2; recall 0, 1. The envelope
  # is 1/2 at every recall, so all 101 recall thresholds read 1/2: AP = 0.5 at every IoU.
  pred = [_image([[50, 50, 60, 60], [0, 0, 10, 10]], [0, 0], [0.9, 0.8])]
  result = _eval(gt, pred, ['car'])
  assert result['mAP'] == pytest.approx(0.5)
  assert result['AP50'] == pytest.approx(0.5)
  # Scored the other way round (tp first) the fp costs nothing: precision 1 up to recall 1.
  result = _eval(gt, [_image(pred[0]['boxes'], [0, 0], [0.8, 0.9])], ['car'])
  assert result['mAP'] == pytest.approx(1.0)


def test_101_point_interpolation_differs_from_the_all_point_area():
  gt = [_image([[0, 0, 10, 10], [20, 0, 30, 10]], [0, 0])]
  # By score: tp, fp, tp. precision 1, 1/2, 2/3; recall 1/2, 1/2, 1; envelope 1, 2/3, 2/3.
  # Recall thresholds 0 .. 0.50 (51 of them) read 1, 0.51 .. 1 (50) read 2/3:
  # AP = (51 * 1 + 50 * 2/3) / 101 = 0.83498, where the all-point area gives 5/6 = 0.83333.
  pred = [_image([[0, 0, 10, 10], [50, 50, 60, 60], [20, 0, 30, 10]], [0, 0, 0], [0.9, 0.8, 0.7])]
  result = _eval(gt, pred, ['car'])
  assert result['mAP'] == pytest.approx((51 + 50 * 2 / 3) / 101)
  assert result['mAP'] != pytest.approx(5 / 6, abs=1e-3)


def test_empty_predictions_score_zero():
  gt = [_image([[0, 0, 10, 10]], [0]), _image([[0, 0, 50, 50]], [1])]
  for pred in ([], [_image([], [], []), _image([], [], [])]):
    result = _eval(gt, pred)
    for key in ('mAP', 'AP50', 'AP75', 'APs', 'APm', 'AR1', 'AR100'):
      assert result[key] == 0.0, key
    assert result['APl'] is None  # No large object: undefined, not 0.
    assert result['per_class_AP'] == {'car': 0.0, 'person': 0.0}


def test_a_class_without_ground_truth_is_absent_not_zero():
  # 'person' has no ground truth and one (wrong) prediction; it is None and not in the mean:
  # mAP = car's 1.0, not (1 + 0) / 2.
  gt = [_image([[0, 0, 10, 10]], [0])]
  pred = [_image([[0, 0, 10, 10], [30, 30, 40, 40]], [0, 1], [0.9, 0.8])]
  result = _eval(gt, pred)
  assert result['per_class_AP'] == {'car': pytest.approx(1.0), 'person': None}
  assert result['num_ground_truth'] == {'car': 1, 'person': 0}
  assert result['mAP'] == pytest.approx(1.0)
  json.dumps(result, allow_nan=False)


def test_bad_inputs_are_one_line_errors():
  gt = det.coco_ground_truth([_image([[0, 0, 10, 10]], [0])], NAMES)
  with pytest.raises(ValueError, match=r'labels \[2\]'):
    det.coco_ground_truth([_image([[0, 0, 1, 1]], [2])], NAMES)
  with pytest.raises(ValueError, match='image_id 5'):
    det.coco_eval(gt, [{'image_id': 5, 'category_id': 0, 'bbox': [0, 0, 1, 1], 'score': 1.0}])
  with pytest.raises(ValueError, match='category_id 7'):
    det.coco_eval(gt, [{'image_id': 0, 'category_id': 7, 'bbox': [0, 0, 1, 1], 'score': 1.0}])
  with pytest.raises(ValueError, match='2 boxes but 1 scores'):
    det.coco_results([_image([[0, 0, 1, 1], [0, 0, 2, 2]], [0, 0], [0.5])])
