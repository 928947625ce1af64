"""The detection task: targets by hand, the new registry entries on fixtures, then a run end to end.

The run trains a tiny YOLO detector for a few steps on a tiny synthetic_objects
set, in two invocations (the second resumes from the first's checkpoint),
evaluates every frame of the val and test videos (COCO mAP, ByteTrack,
HOTA / MOTA / IDF1), then `--mode predict` on one of its videos and on unreadable ones.
"""
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests import test_yolo_mot_layouts as yolo_mot
from tests.conftest import REPO, tiny_data
from tests.test_detection_layouts import _VID_JSON, _coco_json, _cocovid
from vidjax import config as config_lib
from vidjax import models, predict, tasks
from vidjax.data import clips, pipeline, registry
from vidjax.data.records import ClipInfo
from vidjax.errors import UserError
from vidjax.tasks import detection_eval, detection_report
from vidjax.tasks.detection_targets import BoxTargets

METRICS = ('mAP', 'AP50', 'AP75', 'AR100', 'HOTA', 'MOTA', 'IDF1')


def _annotation():
  """A 100x50 video: two boxes on frame 3, one on frame 1, a crowd box on frame 3."""
  return {'boxes': np.float32([[10, 20, 30, 40], [0, 0, 50, 10], [5, 5, 15, 15]]),
          'box_labels': np.int32([1, 2, 0]), 'box_frames': np.int32([3, 3, 1]),
          'track_ids': np.int32([1, 2, 1]), 'crowd_boxes': np.float32([[60, 10, 70, 20]]),
          'crowd_labels': np.int32([0]), 'crowd_frames': np.int32([3]),
          'width': 100, 'height': 50, 'num_frames': 5, 'frame_files': None}


def test_targets_are_the_last_frames_boxes_scaled_mirrored_and_padded():
  targets = BoxTargets(max_boxes=4, height=25, width=50)  # Half the video's size.
  plain = targets(_annotation(), ClipInfo(np.array([1, 2, 3]), 5))
  np.testing.assert_allclose(plain['boxes'], [[5, 10, 15, 20], [0, 0, 25, 5], [0] * 4, [0] * 4])
  assert plain['box_labels'].tolist() == [1, 2, 0, 0]  # The crowd box is no target.
  assert plain['box_mask'].tolist() == [True, True, False, False]
  mirrored = targets(_annotation(), ClipInfo(np.array([1, 2, 3]), 5, flipped=True))
  np.testing.assert_allclose(mirrored['boxes'][:2], [[35, 10, 45, 20], [25, 0, 50, 5]])
  earlier = targets(_annotation(), ClipInfo(np.array([3, 2, 1]), 5))  # Only the last index counts.
  np.testing.assert_allclose(earlier['boxes'][0], [2.5, 2.5, 7.5, 7.5])
  assert earlier['box_mask'].sum() == 1 and earlier['box_labels'][0] == 0
  padding = targets.padding()
  assert {k: (v.shape, v.dtype) for k, v in padding.items()} == {
      k: (v.shape, v.dtype) for k, v in plain.items()}
  with pytest.raises(ValueError, match='exceed the maximum of 1'):
    BoxTargets(1, 25, 50)(_annotation(), ClipInfo(np.array([3]), 5))


def test_evaluation_clips_end_at_each_frame_and_repeat_the_first():
  assert detection_eval.clip_indices(1, 4, 2).tolist() == [0, 0, 0, 1]
  assert detection_eval.clip_indices(7, 4, 2).tolist() == [1, 3, 5, 7]


def _records(data, split):
  found = registry.load_split(data, split)
  assert found.records and all('boxes' in r.annotation for r in found.records)
  return found


def test_registry_reads_coco_cocovid_yolo_and_mot(tmp_path):
  # The layout tests' fixture writers (their pytest fixtures' own functions).
  yolo = yolo_mot.yolo.__wrapped__(tmp_path / 'yolo')
  mot = yolo_mot.mot.__wrapped__(tmp_path / 'mot')
  _coco_json(tmp_path / 'coco')
  coco = _records(tiny_data(dataset='coco', root=str(tmp_path / 'coco')), 'val2017')
  assert coco.class_names == ['person', 'dog'] and len(coco.records) == 2
  _cocovid(tmp_path / 'vid')
  vid = _records(tiny_data(dataset='cocovid', root=str(tmp_path / 'vid'), annotation_file=_VID_JSON,
                           image_dir='Data/VID'), 'train')
  assert vid.class_names == ['airplane', 'antelope']
  assert _records(tiny_data(dataset='yolo', root=str(yolo)), 'train').class_names == ['person',
                                                                                     'car']
  assert _records(tiny_data(dataset='mot', root=str(mot)), 'train').class_names == ['pedestrian']
  # Image-folder frames reach the pipeline: a training clip of the CocoVID video's 2 frames.
  data = tiny_data(num_frames=2, frame_stride=1, height=16, width=16)
  video = next(r for r in vid.records if r.annotation['num_frames'] == 2)
  clip_fn = clips.TrainClip(pipeline.ClipSpec.from_config(data), BoxTargets(4, 16, 16))
  element = clip_fn((0, video), np.random.default_rng(0))
  assert element['video'].shape == (2, 16, 16, 3) and element['box_mask'].any()


def test_box_detectors_are_a_kind_apart():
  assert models.BOX_DETECTORS == {'yolo': models.FAMILIES['yolo'].cls}
  config = config_lib.load(str(REPO / 'configs' / 'detection.py'))
  with pytest.raises(UserError, match="unknown model 'yolo'"):
    models.build_detector(config.model, 3)  # Localization's builder refuses it.
  with pytest.raises(UserError, match='train_crop'):
    tasks.get(config_lib.load(str(REPO / 'configs' / 'detection.py'),
                              ['data.train_crop=center']))
  with pytest.raises(UserError, match='set --config.data.num_frames=4'):
    tasks.get(config_lib.load(str(REPO / 'configs' / 'detection.py'),
                              ['model.yolo.temporal=attention', 'data.num_frames=1']))
  with pytest.raises(UserError, match='label_mode must be one of box, multi, track'):
    tasks.get(config_lib.load(str(REPO / 'configs' / 'detection.py'),
                              ['detection.label_mode=vote']))


def test_coco_yolox_config_builds_a_yolox_s_sized_model():
  config = config_lib.load(str(REPO / 'configs' / 'coco_yolox.py'), ['data.root=/path/to/coco'])
  pipeline.ClipSpec.from_config(config.data)
  task = tasks.get(config)
  model = task.build_model({'class_names': [f'c{i}' for i in range(80)]})
  example = jnp.zeros((1, *task.input_shape))
  params = jax.eval_shape(model.init, jax.random.key(0), example)
  count = sum(x.size for x in jax.tree.leaves(params))
  # YOLOX-S: 8.97M (Ge et al. 2021, Table 3, 9.0M); ours has GroupNorm and a leaner head stem.
  assert count == pytest.approx(8.97e6, rel=0.1), count
  out = jax.eval_shape(model.apply, params, example)
  assert out['cls'].shape == (1, 80 * 80 + 40 * 40 + 20 * 20, 80)
  assert task.input_shape == (1, 640, 640, 3)


def test_draw_marks_each_track_box():
  frames = np.zeros((2, 32, 32, 3), np.uint8)
  tracks = {1: np.array([[4, 4, 20, 20, 3, 0.9, 1]])}
  drawn = detection_report.draw(frames, tracks, ['a', 'b'])
  assert not drawn[0].any() and drawn[1, 4, 10].any() and not drawn[1, 12, 12].any()


def test_training_resumes_and_reports_box_and_track_metrics(tiny_detection_run):
  _, workdir, _, first, final = tiny_detection_run
  assert first['stopped_at'] == 2 and int(final['state'].step) == 4
  results = json.loads((workdir / 'results.json').read_text())
  assert results['task'] == 'detection' and results['step'] == 4
  for split in ('eval', 'test'):
    for key in METRICS:
      # MOTA is 1 - (misses + false positives + switches) / boxes: at most 1, and
      # negative for a tracker with more false positives than boxes.
      low = -np.inf if key == 'MOTA' else 0.0
      assert low <= results[split][key] <= 1, (split, key, results[split][key])
    assert results[split]['num_frames'] >= 16 and results[split]['num_tracked_videos'] == 1
    assert set(results[split]['per_class_AP']) == {
        'digit_2', 'digit_3', 'digit_5', 'digit_7', 'circle', 'square', 'triangle'}
  history = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert any('eval/mAP' in row for row in history) and any('train/box' in row for row in history)
  for name in ('predictions_test.json', 'per_class_ap_test.txt', 'training_curves.png'):
    assert (workdir / name).stat().st_size > 0, name


def test_evaluate_and_predict_a_trained_workdir(tiny_detection_run, capsys):
  root, workdir, config, _, _ = tiny_detection_run
  evaluated = predict.evaluate(config, str(workdir))
  saved = json.loads((workdir / 'results.json').read_text())
  assert evaluated['test']['mAP'] == pytest.approx(saved['test']['mAP'])
  assert json.loads((workdir / 'evaluation.json').read_text())['test']['split'] == 'test'
  # The other label modes: the same weights' each-box-its-best-class mAP is kept beside theirs.
  for mode in ('multi', 'track'):
    other = config.copy_and_resolve_references()
    other.detection.label_mode = mode
    scored = predict.evaluate(other, str(workdir))['test']
    assert scored['box_label_mAP'] == pytest.approx(saved['test']['mAP']), mode
    assert 0 <= scored['mAP'] <= 1 and scored['HOTA'] == pytest.approx(saved['test']['HOTA'])
  video = root / 'videos' / 'test_0000.mp4'
  found = predict.predict(config, str(workdir), [str(video)])
  printed = capsys.readouterr().out
  assert 'circle' in printed and 'tracks' in printed
  out = workdir / 'predictions'
  for name in ('test_0000_tracks.mp4', 'test_0000_mot.txt', 'test_0000_coco.json'):
    assert (out / name).is_file(), name
  assert (out / 'test_0000_tracks.mp4').stat().st_size > 0
  assert len(json.loads((out / 'test_0000_coco.json').read_text())) == sum(
      len(d['boxes']) for d in found[0]['detections'])


def test_predict_skips_and_lists_unreadable_videos(tiny_detection_run, tmp_path, capsys):
  root, workdir, config, _, _ = tiny_detection_run
  workdir = shutil.copytree(workdir, tmp_path / 'run')  # Other tests read the fixture's.
  video, garbage = root / 'videos' / 'test_0000.mp4', tmp_path / 'garbage.mp4'
  garbage.write_bytes(b'not a video' * 100)
  missing = str(tmp_path / 'missing.mp4')
  found = predict.predict(config, str(workdir), [str(garbage), missing, str(video)])
  out = workdir / 'predictions'
  assert len(found) == 1 and (out / 'test_0000_coco.json').is_file()
  assert not (out / 'garbage_coco.json').exists()
  listed = json.loads((out / 'unreadable.json').read_text())
  assert [f['path'] for f in listed] == [str(garbage), missing]
  assert listed[0]['error'].startswith('cannot be decoded: ')
  assert listed[1]['error'] == 'does not exist'
  printed = capsys.readouterr().out
  assert 'predicted   1 of 3 files' in printed and f"{garbage}: {listed[0]['error']}" in printed
  with pytest.raises(UserError, match=r"^none of the 2 files could be read, e.g. --video '.*"
                                      r"garbage.mp4' cannot be decoded: [^\n]*unreadable.json\)$"):
    predict.predict(config, str(workdir), [str(garbage), missing])
  with pytest.raises(UserError, match=r"^--video '.*missing.mp4' does not exist$"):
    predict.predict(config, str(workdir), [missing])
