"""Localization and segmentation layouts, read from fixtures in their published formats.

Each fixture is written as the release writes it (THUMOS14's per-class text
files with their trailing spaces, ActivityNet's JSON, the MS-TCN folders),
with the faults real copies have; the expected values are worked by hand.
"""
import json
import logging
import pathlib

import numpy as np
import pytest

from vidjax.data.layouts.activitynet import load_activitynet_json
from vidjax.data.layouts.mstcn import load_mstcn
from vidjax.data.layouts.snippet_features import (read_features, seconds_to_snippets,
                                                  snippet_times)
from vidjax.data.layouts.thumos14 import load_thumos14
from vidjax.data.layouts.untrimmed import check_segments


def _write(path: pathlib.Path, text: str) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  return path


def _one_line_error(call, *fragments):
  with pytest.raises(ValueError) as info:
    call()
  message = str(info.value)
  assert '\n' not in message, message
  for fragment in fragments:
    assert fragment in message, (fragment, message)


# --- THUMOS14 ---------------------------------------------------------------

@pytest.fixture
def thumos(tmp_path):
  notes = tmp_path / 'annotations'
  # Indices out of alphabetical order: the class order must come from this file.
  _write(notes / 'detclasslist.txt', '7 HighJump\n9 BaseballPitch\n')
  _write(notes / 'BaseballPitch_val.txt',
         'video_validation_0000051 67.5 75.9 \n\n'
         'video_validation_0000051\t120.0  125.2\n'
         'video_validation_0000052 12.0 9.5\n')
  _write(notes / 'HighJump_val.txt', 'video_validation_0000053  1.0 4.5 \n')
  _write(notes / 'Ambiguous_val.txt',
         'video_validation_0000051 80.0 82.5\nvideo_validation_0000054 3.0 4.0\n')
  _write(notes / 'BaseballPitch_test.txt', 'video_test_0000001 1.0 2.0\n')
  return tmp_path, load_thumos14


def test_thumos14_reads_per_class_files_and_keeps_ambiguous_apart(thumos, caplog):
  root, load = thumos
  with caplog.at_level(logging.WARNING):
    found = load(str(root), 'val')
  assert found.class_names == ['HighJump', 'BaseballPitch']
  by_id = {r.video_id: r for r in found.records}
  assert list(by_id) == [f'video_validation_000005{i}' for i in (1, 2, 3, 4)]
  first = by_id['video_validation_0000051'].annotation
  np.testing.assert_allclose(first['segments'], [[67.5, 75.9], [120.0, 125.2]])
  assert first['segments'].dtype == np.float32 and first['labels'].dtype == np.int32
  assert first['labels'].tolist() == [1, 1]
  np.testing.assert_allclose(first['ambiguous'], [[80.0, 82.5]])
  assert first['duration'] is None and first['fps'] is None
  np.testing.assert_allclose(by_id['video_validation_0000053'].annotation['segments'], [[1.0, 4.5]])
  assert by_id['video_validation_0000053'].annotation['labels'].tolist() == [0]
  # End before start: dropped, reported; the video stays, background only.
  assert by_id['video_validation_0000052'].annotation['segments'].shape == (0, 2)
  assert found.problems == ['video_validation_0000052: segment [12.0, 9.5] ends before it '
                            'starts; dropped']
  assert len(by_id['video_validation_0000054'].annotation['segments']) == 0
  assert all(r.path == '' for r in found.records) and found.missing == []
  assert found.summary().startswith('4 videos (2 without segments), 2 classes, 3 segments, '
                                    '2 ambiguous, 1 annotation problems, e.g. video_validation')
  warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
  assert len(warnings) == 1 and '1 annotation problems' in warnings[0].getMessage()
  assert [r.video_id for r in load(str(root), 'validation').records] == list(by_id)
  test = load(str(root), 'test')
  assert [r.video_id for r in test.records] == ['video_test_0000001']
  assert test.class_names == found.class_names
  assert len(test.records[0].annotation['ambiguous']) == 0


def test_thumos14_finds_videos_and_lists_the_missing(thumos):
  root, load = thumos
  videos = root / 'videos'
  _write(videos / 'video_validation_0000051.mp4', '')
  _write(videos / 'validation' / 'video_validation_0000053.mp4', '')
  found = load(str(root), 'val')
  assert {r.video_id: r.path for r in found.records} == {
      'video_validation_0000051': str(videos / 'video_validation_0000051.mp4'),
      'video_validation_0000053': str(videos / 'validation' / 'video_validation_0000053.mp4')}
  assert found.missing == [str(videos / f'video_validation_000005{i}.mp4') for i in (2, 4)]
  assert '2 of 4 listed missing (50.0%)' in found.summary()


def test_thumos14_classes_without_a_list_and_malformed_lines(thumos):
  root, load = thumos
  (root / 'annotations' / 'detclasslist.txt').unlink()
  assert load(str(root), 'val').class_names == ['BaseballPitch', 'HighJump']
  dropped = load(str(root), 'val', class_names=['BaseballPitch'])
  assert "has label 'HighJump', not in the class list; dropped" in dropped.problems[-1]
  _one_line_error(lambda: load(str(root), 'train'), "'val' or 'test'")
  _write(root / 'annotations' / 'Diving_val.txt', 'video_validation_0000051 1.0 2.0\n'
         'video_validation_0000051 3.0\n')
  _one_line_error(lambda: load(str(root), 'val'), 'Diving_val.txt, line 2', '2 fields')
  _write(root / 'annotations' / 'Diving_val.txt', 'video_validation_0000051 1.0 4,5\n')
  _one_line_error(lambda: load(str(root), 'val'), 'Diving_val.txt, line 1', 'not numbers')
  _one_line_error(lambda: load(str(root / 'nowhere'), 'val'), 'BaseballPitch_val.txt')


# --- ActivityNet-style JSON -------------------------------------------------

_ANET = {'version': 'VERSION 1.3', 'taxonomy': [], 'database': {
    'aaa': {'subset': 'training', 'duration': 10.0, 'fps': 30.0, 'url': 'https://youtu.be/aaa',
            'annotations': [{'segment': [1.0, 3.0], 'label': 'Zumba'},
                            {'segment': [8.0, 12.0], 'label': 'Archery'},
                            {'segment': [-1.0, 2.0], 'label': 'Archery', 'label_id': 0}]},
    'bbb': {'subset': 'validation', 'duration': 20.0,
            'annotations': [{'segment': [5.0, 4.0], 'label': 'Zumba'},
                            {'segment': [20.0, 30.0], 'label': 'Zumba'},
                            {'segment': [1.5, 2.5], 'label': 'Knitting'}]},
    'ccc': {'subset': 'validation', 'duration': 7.5, 'annotations': []},
    'ddd': {'subset': 'testing', 'duration': 12.0, 'annotations': []}}}


@pytest.fixture
def anet(tmp_path):
  _write(tmp_path / 'annotations.json', json.dumps(_ANET, indent=1))
  return tmp_path


def test_activitynet_subsets_classes_durations_and_repairs(anet):
  train = load_activitynet_json(str(anet), 'train')
  # Knitting is only in validation: classes come from every subset.
  assert train.class_names == ['Archery', 'Knitting', 'Zumba']
  (record,) = train.records
  assert (record.video_id, record.path) == ('aaa', '')
  note = record.annotation
  np.testing.assert_allclose(note['segments'], [[1, 3], [8, 10], [0, 2]])
  assert note['labels'].tolist() == [2, 0, 0]
  assert (note['duration'], note['fps']) == (10.0, 30.0)
  assert train.problems == [
      'aaa: segment [8.0, 12.0] ends after the video (10.0 s); clipped to it',
      'aaa: segment [-1.0, 2.0] starts before 0; clipped to 0']
  val = load_activitynet_json(str(anet), 'validation')
  assert [r.video_id for r in val.records] == ['bbb', 'ccc']
  np.testing.assert_allclose(val.records[0].annotation['segments'], [[1.5, 2.5]])
  assert val.records[0].annotation['labels'].tolist() == [1]
  assert val.records[0].annotation['fps'] is None
  assert [p.split(';')[0] for p in val.problems] == [
      'bbb: segment [5.0, 4.0] ends before it starts',
      'bbb: segment [20.0, 30.0] starts at or after the video ends (20.0 s)']
  assert val.records[1].annotation['segments'].shape == (0, 2)
  assert [r.video_id for r in load_activitynet_json(str(anet), 'test').records] == ['ddd']
  _one_line_error(lambda: load_activitynet_json(str(anet), 'holdout'),
                  "no subset 'holdout'", 'testing, training, validation')


def test_activitynet_class_list_videos_and_actionformer_subsets(anet):
  known = load_activitynet_json(str(anet), 'val', class_names=['Zumba', 'Archery'])
  assert known.class_names == ['Zumba', 'Archery']
  assert "label 'Knitting', not in the class list; dropped" in known.problems[-1]
  _write(anet / 'classes.txt', 'Zumba\n\nKnitting\nArchery\n')
  assert load_activitynet_json(str(anet), 'train').class_names == ['Zumba', 'Knitting', 'Archery']
  videos = anet / 'videos'
  _write(videos / 'v_aaa.mkv', '')
  _write(videos / 'bbb.mp4', '')
  assert load_activitynet_json(str(anet), 'train').records[0].path == str(videos / 'v_aaa.mkv')
  val = load_activitynet_json(str(anet), 'val')
  assert [r.path for r in val.records] == [str(videos / 'bbb.mp4')]
  assert val.missing == [str(videos / 'ccc.mp4')]
  # ActionFormer's THUMOS14 JSON: "Validation" is the training set, "Test" the test set.
  pitch = {'label': 'BaseballPitch', 'segment': [67.5, 75.9], 'label_id': 0}
  _write(anet / 'th14' / 'thumos14.json', json.dumps({'database': {
      'video_validation_0000051': {'subset': 'Validation', 'duration': 169.79, 'fps': 30.0,
                                   'annotations': [pitch]},
      'video_test_0000004': {'subset': 'Test', 'duration': 33.5, 'fps': 30.0, 'annotations': []}}}))
  for split, video in (('validation', 'video_validation_0000051'), ('test', 'video_test_0000004')):
    found = load_activitynet_json(str(anet / 'th14'), split, annotation_file='thumos14.json')
    assert [r.video_id for r in found.records] == [video] and found.problems == []


def test_activitynet_malformed_files(anet):
  _write(anet / 'bad.json', '{"database": {\n  "aaa": {"subset": "training",}\n}}')
  _one_line_error(lambda: load_activitynet_json(str(anet), 'train', annotation_file='bad.json'),
                  'bad.json, line 2', 'invalid JSON')
  _write(anet / 'bad.json', json.dumps({'results': {}}))
  _one_line_error(lambda: load_activitynet_json(str(anet), 'train', annotation_file='bad.json'),
                  'bad.json', 'no "database"')
  _write(anet / 'bad.json', '{"database": {\n "aaa": {"subset": "training", "annotations": '
         '[{"segment": ["1.0", 2.0], "label": "Zumba"}]}}}')
  _one_line_error(lambda: load_activitynet_json(str(anet), 'train', annotation_file='bad.json'),
                  'bad.json, line 2', "video 'aaa'", '"segment": [t0, t1]')
  _one_line_error(lambda: load_activitynet_json(str(anet), 'train', annotation_file='no.json'),
                  'no.json')


# --- MS-TCN folders ---------------------------------------------------------

_V1 = ['background'] * 2 + ['take'] * 3 + ['pour'] * 2 + ['background'] + ['take'] * 2


@pytest.fixture
def mstcn(tmp_path):
  _write(tmp_path / 'mapping.txt', '0 background\n1 take\n2 pour\n')
  _write(tmp_path / 'groundTruth' / 'v1.txt', '\n'.join(_V1) + '\n')
  _write(tmp_path / 'groundTruth' / 'v2.txt', 'take\ntake\nstir\nbackground\n')
  _write(tmp_path / 'groundTruth' / 'v3.txt', 'background\nbackground\nbackground\n')
  _write(tmp_path / 'splits' / 'train.split1.bundle', 'v1.txt\nv2.txt\n\n')
  _write(tmp_path / 'splits' / 'test.split1.bundle', 'v3.txt\n')
  return tmp_path


def test_mstcn_frame_labels_become_segments_in_seconds(mstcn):
  found = load_mstcn(str(mstcn), 'train')
  assert found.class_names == ['background', 'take', 'pour'] and found.background == (0,)
  v1, v2 = (r.annotation for r in found.records)
  assert v1['frame_labels'].tolist() == [0, 0, 1, 1, 1, 2, 2, 0, 1, 1]
  assert v1['frame_labels'].dtype == np.int32
  # Runs [2, 5) take, [5, 7) pour, [8, 10) take, at 15 fps.
  np.testing.assert_allclose(v1['segments'], np.array([[2, 5], [5, 7], [8, 10]]) / 15, rtol=1e-6)
  assert v1['labels'].tolist() == [1, 2, 1]
  assert (v1['duration'], v1['fps']) == (10 / 15, 15.0)
  # 'stir' is not in mapping.txt: relabelled background, reported once.
  assert v2['frame_labels'].tolist() == [1, 1, 0, 0]
  np.testing.assert_allclose(v2['segments'], [[0, 2 / 15]], rtol=1e-6)
  assert found.problems == ["v2: 1 frames labelled 'stir', not in mapping.txt; "
                            "relabelled 'background'"]
  assert [r.path for r in found.records] == ['', '']
  (v3,) = load_mstcn(str(mstcn), 'test', fps=30.0).records
  assert v3.annotation['segments'].shape == (0, 2) and v3.annotation['duration'] == 0.1


def test_mstcn_features_missing_and_bad_inputs(mstcn):
  (mstcn / 'features').mkdir()
  np.save(mstcn / 'features' / 'v1.npy', np.zeros((4, 10), np.float32))  # [C, T]
  found = load_mstcn(str(mstcn), 'train')
  assert [r.path for r in found.records] == [str(mstcn / 'features' / 'v1.npy')]
  assert found.missing == [str(mstcn / 'features' / 'v2.npy')]
  _one_line_error(lambda: load_mstcn(str(mstcn), 'val'), 'train and test bundles only')
  _one_line_error(lambda: load_mstcn(str(mstcn), 'train', split_index=2), 'train.split2.bundle')
  _write(mstcn / 'mapping.txt', '0 take\n1 pour\n')
  _one_line_error(lambda: load_mstcn(str(mstcn), 'train'), 'v1.txt, line 1', "'background'")
  _write(mstcn / 'mapping.txt', '0 background\n1 take pour\n')
  _one_line_error(lambda: load_mstcn(str(mstcn), 'train'), 'mapping.txt, line 2')


# --- snippet features and times ---------------------------------------------

def test_read_features_layouts_and_bad_files(tmp_path):
  ct = np.arange(40, dtype=np.float64).reshape(4, 10)  # MS-TCN: [C, T]
  np.save(tmp_path / 'ct.npy', ct)
  np.save(tmp_path / 'tc.npy', ct.T)  # ActionFormer: [T, C]
  for name, layout, dim in (('ct', 'CT', None), ('ct', 'auto', 4), ('tc', 'TC', None),
                            ('tc', 'auto', 4), ('tc', 'TC', 4)):
    features = read_features(str(tmp_path / f'{name}.npy'), layout=layout, feature_dim=dim)
    assert features.dtype == np.float32 and features.shape == (10, 4)
    np.testing.assert_array_equal(features, ct.T)
  np.savez(tmp_path / 'one.npz', feats=ct.T)
  np.testing.assert_array_equal(read_features(str(tmp_path / 'one.npz'), layout='TC'), ct.T)
  np.savez(tmp_path / 'two.npz', rgb=ct, flow=ct)
  _one_line_error(lambda: read_features(str(tmp_path / 'two.npz'), layout='CT'), 'two.npz',
                  'expected one')
  _one_line_error(lambda: read_features(str(tmp_path / 'ct.npy')), 'ct.npy', 'feature_dim')
  _one_line_error(lambda: read_features(str(tmp_path / 'ct.npy'), feature_dim=7), 'no axis')
  _one_line_error(lambda: read_features(str(tmp_path / 'ct.npy'), layout='TC', feature_dim=4),
                  '10 channels')
  np.save(tmp_path / 'square.npy', np.zeros((4, 4)))
  _one_line_error(lambda: read_features(str(tmp_path / 'square.npy'), feature_dim=4), 'both axes')
  data = (tmp_path / 'ct.npy').read_bytes()
  (tmp_path / 'cut.npy').write_bytes(data[:len(data) - 17])
  _one_line_error(lambda: read_features(str(tmp_path / 'cut.npy'), layout='CT'), 'cut.npy',
                  'truncated or corrupt')
  (tmp_path / 'junk.npy').write_bytes(b'not an array')
  _one_line_error(lambda: read_features(str(tmp_path / 'junk.npy'), layout='CT'), 'junk.npy')


def test_snippet_times_follow_actionformer_and_invert():
  # ActionFormer's THUMOS14 I3D: 16-frame windows every 4 frames at 30 fps.
  times = snippet_times(3, stride=4, window=16, fps=30.0)
  np.testing.assert_allclose(times, [8 / 30, 12 / 30, 16 / 30])
  # (t * fps - 0.5 * window) / stride: 1 s -> (30 - 8) / 4 = 5.5.
  assert seconds_to_snippets(1.0, stride=4, window=16, fps=30.0) == pytest.approx(5.5)
  np.testing.assert_allclose(
      seconds_to_snippets(snippet_times(50, stride=4, window=16, fps=30.0),
                          stride=4, window=16, fps=30.0), np.arange(50), atol=1e-9)
  _one_line_error(lambda: snippet_times(3, stride=0, window=16, fps=30.0), 'positive')


@pytest.mark.parametrize('t0, t1, kept, problem', [
    (5.0, 5.0, None, 'ends before it starts'),
    (10.0, 11.0, None, 'starts at or after'),
    (-3.0, -1.0, None, 'ends before the video starts'),
    (float('nan'), 1.0, None, 'not a finite time'),
    (9.0, 10.0, [9.0, 10.0], None)])
def test_check_segments_edges(t0, t1, kept, problem):
  problems = []
  boxes, labels = check_segments('v', [(t0, t1)], [0], ['a'], 10.0, problems)
  assert (boxes.tolist() == [kept]) if kept else boxes.shape == (0, 2)
  assert len(labels) == len(boxes)
  assert (problem in problems[0]) if problem else problems == []
