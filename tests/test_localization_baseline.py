"""The sliding-window baseline: windows scored by the classifier, NMS picked on val, same evaluator."""
import numpy as np
import pytest

from vidjax.tasks import localization_baseline as baseline
from vidjax.tasks.localization_eval import Video, frame_labels_from_segments
from vidjax.tasks.localization_targets import SnippetGrid

GRID = SnippetGrid(stride=4, window=16, fps=8)


def test_window_scores_contrast_the_inside_with_the_flanks():
  # Classifier columns: background, a, b. Snippets 0-3; windows of 2, flanks of 1.
  probs = np.array([[1.0, 0.0, 0.0], [0.2, 0.8, 0.0], [0.0, 0.6, 0.4], [1.0, 0.0, 0.0]])
  segments, scores, labels = baseline.window_candidates(probs, np.array([1, 2]), GRID, windows=(2,))
  # Action a (column 1), windows [0, 2), [1, 3), [2, 4): inside 0.4, 0.7, 0.3; flanks (those that
  # exist) 0.6, 0, 0.8; scores 0.4 * 0.4, 0.7 * 1, 0.3 * 0.2. Action b: inside 0, 0.2, 0.2 with
  # flanks 0: the first is under MIN_SCORE. Window [1, 3) spans frames 4 .. 2 * 4 + 16: 0.5-3 s.
  by_label = {c: sorted(zip(map(tuple, segments[labels == c]), scores[labels == c]))
              for c in (0, 1)}
  assert [round(s, 6) for _, s in by_label[0]] == [0.16, 0.7, 0.06]
  assert by_label[0][1][0] == pytest.approx((0.5, 3.0))
  assert [round(s, 6) for _, s in by_label[1]] == [0.2, 0.2]


def test_classes_are_matched_to_the_classifier_by_name():
  assert baseline.action_columns(['background', 'b', 'a'], ['a', 'b']).tolist() == [2, 1]
  with pytest.raises(ValueError, match="no class 'c'"):
    baseline.action_columns(['background', 'a'], ['a', 'c'])


def test_a_classifier_that_is_right_gives_a_perfect_baseline(tmp_path):
  # One action 'a' over snippets 4..11 (the classifier is sure there), background elsewhere.
  probs = np.zeros((20, 2), np.float32)
  probs[:, 0] = 1.0
  probs[4:12] = [0.0, 1.0]
  np.save(tmp_path / 'v.npy', probs)
  start, end = 4 * 4 / 8, (11 * 4 + 16) / 8  # Frames of snippets 4..11: 2 s to 7.5 s.
  segments, labels = np.array([[start, end]]), np.array([0])
  video = Video('v', '', 20, GRID, 12.0, segments, labels,
                frame_labels_from_segments(segments, labels, 96, 8))
  result = baseline.evaluate([video], [video], tmp_path, ['background', 'a'], ['a'], (0.5, 0.7))
  assert result['map'] == pytest.approx([1.0, 1.0])
  assert result['nms']['chosen_on'] == 'val'
  assert result['segmentation']['f1@50'] == pytest.approx(1.0)
