"""The localization task: label assignment, losses and decoding by hand, then a run end to end.

The run trains the detector on snippet features written in ActionFormer's
layout (an ActivityNet-style JSON plus <video_id>.npy [T, C]) in which each
action leaves a known trace, so a working detector must find them; then
`--mode evaluate` and `--mode predict` on a trained workdir, unreadable files skipped.
"""
import json
import os
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tests.conftest import REPO
from vidjax import config as config_lib
from vidjax import predict, tasks, train
from vidjax.errors import UserError
from vidjax.metrics import localization as tad_metrics
from vidjax.tasks import localization, localization_eval, localization_targets

CLASSES = ('jump', 'run', 'throw')
FPS, STRIDE, WINDOW = 8.0, 4, 16


def test_points_inside_the_centre_region_and_in_range_are_positives():
  # Level 0 points sit at 0..7 (stride 1), level 1 at 0.5, 2.5, 4.5, 6.5 (stride 2).
  # Segment [1, 4], centre 2.5: at level 0 the centre region (radius 1.5) is [1, 4],
  # so points 2 and 3 are inside; their larger distance is 2, in level 0's range [0, 2].
  # At level 1, point 2.5 is inside but its larger distance 1.5 is outside [2, 100].
  classes, offsets, positive = localization_targets.assign_points(
      [[1.0, 4.0]], [1], num_steps=8, levels=2, num_classes=2,
      regression_ranges=((0, 2), (2, 100)), radius=1.5)
  assert np.flatnonzero(positive).tolist() == [2, 3]
  np.testing.assert_array_equal(classes[[2, 3]], [[0, 1], [0, 1]])
  assert classes.sum() == 2
  np.testing.assert_allclose(offsets[2], [1, 2])  # Point 2: 1 to the start, 2 to the end.
  np.testing.assert_allclose(offsets[3], [2, 1])


def test_a_point_claimed_by_two_segments_takes_the_shorter():
  # Point 3 (level 0) lies in both [0, 6] and [2, 4.5]; ranges accept any reach.
  classes, offsets, positive = localization_targets.assign_points(
      [[0.0, 6.0], [2.0, 4.5]], [0, 1], num_steps=8, levels=1, num_classes=2,
      regression_ranges=((0, 100),), radius=10)
  assert positive[3] and classes[3].tolist() == [0, 1]
  np.testing.assert_allclose(offsets[3], [1.0, 1.5])


def test_crops_keep_segments_mostly_inside_and_labels_cover_snippet_centres():
  kept, labels = localization_targets.crop_segments([[0, 10], [12, 20], [28, 40]], [0, 1, 2],
                                                    start=8, length=24)
  # [0, 10] keeps 2 of 10 (dropped), [12, 20] wholly inside, [28, 40] keeps 4 of 12 (dropped).
  np.testing.assert_allclose(kept, [[4, 12]])
  assert labels.tolist() == [1]
  frames = localization_targets.snippet_labels([[1, 3], [2, 2.5]], [0, 2], 5)
  assert frames.tolist() == [0, 1, 3, 0, 0]  # The shorter segment wins its snippet.


def test_snippet_grid_uses_actionformer_time_convention():
  grid = localization_targets.SnippetGrid(stride=4, window=16, fps=30)
  # Snippet 0 covers frames [0, 16): its centre is frame 8, 8 / 30 s.
  assert grid.to_seconds(0) == pytest.approx(8 / 30)
  assert grid.to_snippets(grid.to_seconds(7.25)) == pytest.approx(7.25)


def test_diou_and_focal_losses_by_hand():
  pred = jnp.array([[1.0, 1.0], [1.0, 1.0], [0.0, 2.0]])
  target = jnp.array([[1.0, 1.0], [2.0, 2.0], [2.0, 0.0]])
  # Same: 0. Nested, same centre: IoU 2 / 4, no centre term: 0.5. Disjoint halves of
  # an enclosing length 4 with centres 2 apart: 1 - 0 + (2 / 4)^2 = 1.25.
  np.testing.assert_allclose(localization.diou_loss_1d(pred, target), [0.0, 0.5, 1.25], atol=1e-6)
  # logit 0 (p = 0.5), target 1: alpha * ln 2 * 0.5^2.
  value = localization.focal_loss(jnp.array(0.0), jnp.array(1.0), 0.25, 2.0)
  assert float(value) == pytest.approx(0.25 * np.log(2) * 0.25, rel=1e-6)


def test_decode_turns_a_confident_point_into_seconds():
  config = ml_collections.ConfigDict(dict(
      pre_nms_threshold=0.001, pre_nms_topk=100, min_duration_s=0.05, nms_method='hard',
      nms_iou_threshold=0.5, nms_sigma=0.5, min_score=0.001, max_segments_per_video=10,
      voting_threshold=0.0))
  scores = np.zeros((8 + 4, 2), np.float32)  # 2 levels over 8 steps: 12 points.
  offsets = np.zeros((12, 2), np.float32)
  scores[3, 1], offsets[3] = 0.9, [1.0, 2.0]  # Level 0 point at snippet 3: [2, 5].
  grid = localization_targets.SnippetGrid(STRIDE, WINDOW, FPS)
  found = localization_eval.decode_video(scores, offsets, num_steps=8, levels=2, valid_steps=8,
                                         grid=grid, duration=100.0, config=config)
  np.testing.assert_allclose(found['segments'], [[(2 * 4 + 8) / 8, (5 * 4 + 8) / 8]])
  assert found['labels'].tolist() == [1] and found['scores'].tolist() == pytest.approx([0.9])


def _write_features(root, rng):
  """ActionFormer's layout: annotations.json + features/<vid>.npy [T, 16], one trace per action."""
  (root / 'features').mkdir(parents=True)
  database = {}
  for subset, count in (('training', 10), ('validation', 3), ('testing', 3)):
    for i in range(count):
      vid, steps = f'{subset}_{i}', int(rng.integers(60, 200))
      x = rng.normal(0, 0.3, (steps, 16)).astype(np.float32)
      annotations, t = [], int(rng.integers(0, 10))
      while t < steps - 30:
        length, c = int(rng.integers(6, 24)), int(rng.integers(3))
        x[t:t + length, c] += 2.0
        x[t:t + length, 3 + c] += np.linspace(-1, 1, length)
        annotations.append({'segment': [(t * STRIDE + WINDOW / 2) / FPS,
                                        ((t + length) * STRIDE + WINDOW / 2) / FPS],
                            'label': CLASSES[c]})
        t += length + int(rng.integers(3, 30))
      np.save(root / 'features' / f'{vid}.npy', x)
      database[vid] = {'subset': subset, 'duration': (steps * STRIDE + WINDOW) / FPS, 'fps': FPS,
                       'annotations': annotations}
  database['testing_0']['annotations'] = []  # A video with no action.
  (root / 'annotations.json').write_text(json.dumps({'database': database}))
  (root / 'classes.txt').write_text('\n'.join(CLASSES) + '\n')


def _config(root, **overrides):
  flags = [f'data.root={root}', 'data.dataset=activitynet',
           f'localization.features_dir={root / "features"}', 'train.num_steps=120',
           'train.eval_every=1000', 'train.log_every=40', 'train.progress_bar=false',
           'model.temporal_detector.embed_dim=32', 'model.temporal_detector.head_dim=32',
           'model.temporal_detector.levels=4', 'model.temporal_detector.stem_blocks=1',
           'model.temporal_detector.block=conv',
           'localization.regression_ranges=((0,4),(4,8),(8,16),(16,10000))',
           'localization.max_seq_len=64', 'data.num_workers=0',
           *[f'{k}={v}' for k, v in overrides.items()]]
  return config_lib.load(str(REPO / 'configs' / 'localization.py'), flags)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  root = tmp_path_factory.mktemp('untrimmed')
  _write_features(root, np.random.default_rng(0))
  workdir = tmp_path_factory.mktemp('detector')
  config = _config(root)
  # With XLA's optimisations off (conftest.py) and 8 simulated devices, the jitted update of
  # this training returns non-finite gradients at step 3, while a plain jit of the same loss's
  # gradient on the same parameters and batch is finite, and so is the optimised build: an
  # unoptimised-partitioning artifact, not the loss. Trained here as users run it.
  jax.config.update('jax_disable_most_optimizations', False)
  try:
    train.train_and_evaluate(config, str(workdir))
  finally:
    jax.config.update('jax_disable_most_optimizations',
                      os.environ.get('JAX_DISABLE_MOST_OPTIMIZATIONS') == '1')
  return root, workdir, config


def test_training_finds_the_actions_and_writes_the_report(trained):
  _, workdir, _ = trained
  results = json.loads((workdir / 'results.json').read_text())
  assert results['task'] == 'localization'
  assert results['test']['average_map'] >= 0.6, results['test']
  assert results['test']['segmentation']['f1@50'] >= 0.6
  assert set(results['test']['map']) == {'0.3', '0.4', '0.5', '0.6', '0.7'}
  for name in ('timeline_test.png', 'training_curves.png', 'per_class_ap_test.txt'):
    assert (workdir / name).stat().st_size > 0, name
  # The ActivityNet-format file scores to the same mAP with the evaluator.
  gt_db = json.loads((trained[0] / 'annotations.json').read_text())['database']
  ground_truth = [{'video_id': v, 'segment': a['segment'], 'label': CLASSES.index(a['label'])}
                  for v, e in gt_db.items() if e['subset'] == 'testing' for a in e['annotations']]
  predictions = tad_metrics.read_activitynet_results(str(workdir / 'predictions_test.json'),
                                                     list(CLASSES))
  again = tad_metrics.detection_map(ground_truth, predictions, list(CLASSES))
  assert again['average_map'] == pytest.approx(results['test']['average_map'])


def test_evaluate_and_predict_on_features(trained, capsys):
  root, workdir, config = trained
  results = predict.evaluate(config, str(workdir))
  saved = json.loads((workdir / 'results.json').read_text())
  assert results['test']['average_map'] == pytest.approx(saved['test']['average_map'])
  found = predict.predict(config, str(workdir), [str(root / 'features' / 'testing_1.npy')])
  printed = capsys.readouterr().out
  assert found[0] and any(c in printed for c in CLASSES)
  assert (workdir / 'predictions' / 'testing_1_timeline.png').is_file()


def test_predict_skips_and_lists_unreadable_features(trained, tmp_path, capsys):
  root, workdir, config = trained
  workdir = shutil.copytree(workdir, tmp_path / 'run')  # Other tests read the fixture's.
  good = root / 'features' / 'testing_2.npy'
  garbage, wrong = tmp_path / 'garbage.npy', tmp_path / 'wrong.npy'
  garbage.write_bytes(b'not an array' * 10)
  np.save(wrong, np.zeros((40, 7), np.float32))  # The detector reads 16 channels.
  missing = str(tmp_path / 'missing.npy')
  found = predict.predict(config, str(workdir), [str(wrong), str(good), missing, str(garbage)])
  assert len(found) == 1 and (workdir / 'predictions' / 'testing_2_activitynet.json').is_file()
  listed = json.loads((workdir / 'predictions' / 'unreadable.json').read_text())
  assert [f['path'] for f in listed] == [str(wrong), missing, str(garbage)]
  assert listed[0]['error'].startswith('has shape [40, 7]; expected [T, 16]')
  assert listed[2]['error'].startswith('is not a readable .npy: ')
  printed = capsys.readouterr().out
  assert 'predicted   1 of 4 files' in printed and f'{missing}: does not exist' in printed
  with pytest.raises(UserError, match=r"^--video '.*garbage.npy' is not a readable .npy: [^\n]*$"):
    predict.predict(config, str(workdir), [str(garbage)])


def test_missing_features_are_counted_not_fatal(trained, tmp_path):
  root, _, _ = trained
  features = tmp_path / 'features'
  features.mkdir()
  for path in (root / 'features').glob('*.npy'):
    if path.stem != 'training_3':
      (features / path.name).write_bytes(path.read_bytes())
  config = _config(root, **{'localization.features_dir': str(features),
                            'data.max_failed_fraction': 0.2})
  task = tasks.get(config)
  task.train_iterator(8)
  found = task._split('train')
  assert len(found.videos) == 9 and found.failed == ['training_3: no features file']


def test_thumos14_full_scale_config_builds_actionformers_detector():
  import jax
  config = config_lib.load(str(REPO / 'configs' / 'thumos14_i3d.py'))
  task = tasks.get(config)
  model = task.build_model({'class_names': [f'c{i}' for i in range(20)], 'feature_dim': 2048})
  params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 2304, 2048)))
  out = jax.eval_shape(model.apply, params, jnp.zeros((1, 2304, 2048)))
  points = sum(2304 // 2 ** level for level in range(6))
  assert out['class_logits'].shape == (1, points, 20)
  assert out['segment_logits'].shape == (1, 2304, 21)
  assert task.input_shape == (2304, 2048)
