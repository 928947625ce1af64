"""Tests for vidjax.data.datasets on small fake copies of each layout."""
import logging
import os
import pickle

import pytest

from vidjax.data import datasets
from vidjax.data import decode
from vidjax.data import testing
from vidjax.data.datasets import VideoRecord


# ---------------------------------------------------------------------- UCF-101

@pytest.fixture(scope='module')
def ucf_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('ucf'))
  testing.make_ucf101(root)  # 3 classes x groups 1-4, fold k tests group k.
  return root


def test_ucf101_train_list(ucf_root):
  data = datasets.load_dataset('ucf101', ucf_root, 'train')
  assert data.class_names == ['ApplyEyeMakeup', 'Archery', 'HandstandPushups']
  assert len(data) == 9 and data.missing == []  # Groups 2, 3, 4.
  first = data.records[0]
  assert first == VideoRecord(
      os.path.join(ucf_root, 'UCF-101', 'ApplyEyeMakeup',
                   'v_ApplyEyeMakeup_g02_c01.avi'), 0,
      'v_ApplyEyeMakeup_g02_c01')
  assert [r.label for r in data.records] == [0] * 3 + [1] * 3 + [2] * 3
  assert all(os.path.exists(r.path) for r in data.records)


def test_ucf101_test_list_labels_come_from_folders(ucf_root):
  data = datasets.load_dataset('ucf101', ucf_root, 'test', fold=2)
  assert [(r.video_id, r.label) for r in data.records] == [
      ('v_ApplyEyeMakeup_g02_c01', 0), ('v_Archery_g02_c01', 1),
      ('v_HandStandPushups_g02_c01', 2)]  # The official spelling clash.


def test_ucf101_videos_decode(ucf_root):
  record = datasets.load_dataset('ucf101', ucf_root, 'test').records[0]
  assert decode.read_frames(record.path, [0, 7]).shape == (2, 32, 32, 3)


def test_ucf101_missing_file_is_reported(ucf_root, tmp_path):
  root = str(tmp_path)
  testing.make_ucf101(root, class_names=('Archery',), groups=2)
  gone = os.path.join(root, 'UCF-101', 'Archery', 'v_Archery_g02_c01.avi')
  os.remove(gone)
  data = datasets.load_dataset('ucf101', root, 'train', fold=1)
  assert len(data) == 0 and data.missing == [gone]


def test_ucf101_layout_errors_name_the_expected_file(tmp_path):
  expected = os.path.join(str(tmp_path), 'ucfTrainTestlist', 'classInd.txt')
  with pytest.raises(ValueError) as error:
    datasets.load_dataset('ucf101', str(tmp_path), 'train')
  assert str(error.value) == (f'UCF-101 annotations not found: expected '
                              f'{expected}')
  with pytest.raises(ValueError, match='fold must be 1, 2 or 3'):
    datasets.load_dataset('ucf101', str(tmp_path), 'train', fold=4)


# --------------------------------------------------------------------- Kinetics

KINETICS_CLASSES = ['zumba', 'abseiling', 'air drumming']  # Not sorted.


def test_kinetics_keeps_present_files_and_lists_missing(tmp_path, caplog):
  root = str(tmp_path)
  rows = testing.kinetics_rows(KINETICS_CLASSES, 3, 'train')  # 9 rows.
  gone = testing.make_kinetics(root, 'train', rows, missing=[1, 7])
  with caplog.at_level(logging.WARNING):
    data = datasets.load_dataset('kinetics400', root, 'train')
  assert data.class_names == ['abseiling', 'air drumming', 'zumba']
  assert len(data) == 7 and data.missing == gone
  assert 'train: 7 videos, 3 classes, 2 of 9 listed missing' in caplog.text
  by_id = {r.video_id: r for r in data.records}
  record = by_id['tr002000xyz_000000_000010']  # Third class given: 'air ...'
  assert record.label == 1
  assert record.path == os.path.join(root, 'train', 'air drumming',
                                     'tr002000xyz_000000_000010.mp4')
  assert gone[0].endswith(os.path.join('train', 'zumba',
                                       'tr000001xyz_000010_000020.mp4'))


def test_kinetics_val_uses_the_train_class_order(tmp_path):
  root = str(tmp_path)
  testing.make_kinetics(root, 'train',
                        testing.kinetics_rows(KINETICS_CLASSES, 1, 'train'))
  testing.make_kinetics(root, 'val',
                        testing.kinetics_rows(['zumba'], 2, 'val'))
  data = datasets.load_dataset('kinetics700', root, 'val')
  assert data.class_names == ['abseiling', 'air drumming', 'zumba']
  assert [r.label for r in data.records] == [2, 2]


def test_kinetics_finds_underscored_and_flat_folders(tmp_path):
  root = str(tmp_path)
  rows = testing.kinetics_rows(['air drumming', 'zumba'], 1, 'train')
  testing.make_kinetics(root, 'train', rows)
  train = os.path.join(root, 'train')
  os.rename(os.path.join(train, 'air drumming'),
            os.path.join(train, 'air_drumming'))
  for name in os.listdir(os.path.join(train, 'zumba')):
    os.rename(os.path.join(train, 'zumba', name), os.path.join(train, name))
  data = datasets.load_dataset('kinetics600', root, 'train')
  assert data.missing == []
  assert [os.path.relpath(r.path, train) for r in data.records] == [
      os.path.join('air_drumming', 'tr000000xyz_000000_000010.mp4'),
      'tr001000xyz_000000_000010.mp4']


def test_kinetics_missing_csv(tmp_path):
  with pytest.raises(ValueError, match='Kinetics annotations not found: '
                     'expected .*annotations/val.csv'):
    datasets.load_dataset('kinetics400', str(tmp_path), 'val')


# ------------------------------------------------------- Something-Something-v2

@pytest.fixture(scope='module')
def ssv2_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('ssv2'))
  entries = testing.make_ssv2(root)  # 5 templates x 2 videos per split.
  return root, entries


def test_ssv2_labels_come_from_templates(ssv2_root):
  root, entries = ssv2_root
  data = datasets.load_dataset('ssv2', root, 'val')
  assert data.class_names[0] == 'Pushing something from left to right'
  assert len(data) == 10 and data.missing == []
  assert [r.label for r in data.records] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
  first = entries['validation'][0]
  assert data.records[0] == VideoRecord(
      os.path.join(root, '20bn-something-something-v2', f'{first["id"]}.webm'),
      0, first['id'])
  assert decode.read_frames(data.records[0].path, [3]).shape == (1, 32, 32, 3)


def test_ssv2_flip_label_map(ssv2_root):
  data = datasets.load_dataset('ssv2', ssv2_root[0], 'train')
  assert datasets.flip_label_map(data.class_names) == {0: 1, 1: 0, 3: 4, 4: 3}


def test_ssv2_unknown_template(tmp_path):
  root = str(tmp_path)
  testing.make_ssv2(root, per_class=1)
  with open(os.path.join(root, 'labels', 'labels.json'), 'w') as f:
    f.write('{"Putting something on a surface": "0"}')
  with pytest.raises(ValueError, match='is not in .*labels.json'):
    datasets.load_dataset('ssv2', root, 'train')


def test_ssv2_class_name():
  assert datasets.ssv2_class_name(
      'Taking [one of many similar things on the table]') == (
          'Taking one of many similar things on the table')
  assert datasets.ssv2_class_name('Putting [something] on [something]') == (
      'Putting something on something')


# -------------------------------------------------------------------------- CSV

def test_csv_with_class_names_sorted(tmp_path):
  root = str(tmp_path)
  testing.make_csv_list(root, [('a/x.mp4', 'run'), ('b/y.mp4', 'jump'),
                               ('c/z.mp4', 'run')], missing=[2])
  data = datasets.load_dataset('csv', root, 'train')
  assert data.class_names == ['jump', 'run']
  assert data.records == [
      VideoRecord(os.path.join(root, 'a/x.mp4'), 1, 'a/x'),
      VideoRecord(os.path.join(root, 'b/y.mp4'), 0, 'b/y')]
  assert data.missing == [os.path.join(root, 'c/z.mp4')]


def test_tsv_with_integer_labels_and_classes_txt(tmp_path):
  root = str(tmp_path)
  testing.make_csv_list(root, [('x.mp4', '2'), ('y.mp4', '0')],
                        name='val.tsv', delimiter='\t',
                        class_names=['c0', 'c1', 'c2'])
  data = datasets.load_dataset('csv', root, 'val')  # Tab detected.
  assert data.class_names == ['c0', 'c1', 'c2']
  assert [r.label for r in data.records] == [2, 0]


def test_csv_names_in_classes_txt_order(tmp_path):
  root = str(tmp_path)
  testing.make_csv_list(root, [('x.mp4', 'b'), ('y.mp4', 'a')],
                        class_names=['b', 'a'])
  data = datasets.load_dataset('csv', root, 'train')
  assert [r.label for r in data.records] == [0, 1]


def test_csv_label_errors(tmp_path):
  root = str(tmp_path)
  testing.make_csv_list(root, [('x.mp4', 'b'), ('y.mp4', 'zzz')],
                        class_names=['b'])
  with pytest.raises(ValueError, match="'zzz' .* is not in .*classes.txt"):
    datasets.load_dataset('csv', root, 'train')
  with pytest.raises(ValueError, match='CSV list not found'):
    datasets.load_dataset('csv', root, 'test')


# ---------------------------------------------------------------- entry point

def test_load_dataset_argument_errors(tmp_path):
  with pytest.raises(ValueError, match="did you mean 'ucf101'"):
    datasets.load_dataset('ucf-101', str(tmp_path), 'train')
  with pytest.raises(ValueError, match="did you mean 'fold'"):
    datasets.load_dataset('ucf101', str(tmp_path), 'train', folds=2)
  with pytest.raises(ValueError, match='root not found'):
    datasets.load_dataset('ssv2', str(tmp_path / 'nope'), 'train')


def test_each_layout_is_its_own_module_and_datasets_reexports_it():
  from vidjax.data import flip_labels
  from vidjax.data.layouts import common, csv_list, kinetics, ssv2, ucf101
  assert datasets.load_csv_list is csv_list.load_csv_list
  assert datasets.load_ucf101 is ucf101.load_ucf101
  assert datasets.load_kinetics is kinetics.load_kinetics
  assert datasets.load_ssv2 is ssv2.load_ssv2
  assert datasets.ssv2_class_name is ssv2.ssv2_class_name
  assert datasets.VideoDataset is common.VideoDataset
  assert datasets.VideoRecord is common.VideoRecord
  assert datasets.flip_label_map is flip_labels.flip_label_map


def test_records_pickle_for_grain_workers(tmp_path):
  root = str(tmp_path)
  testing.make_csv_list(root, [('x.mp4', 'a')])
  data = datasets.load_dataset('csv', root, 'train')
  assert pickle.loads(pickle.dumps(data)) == data


def test_flip_label_map_cases():
  names = ['Turning Left', 'turning right', 'Turning Right', 'moving leftwards',
           'moving rightwards', 'left', 'upright']
  assert datasets.flip_label_map(names) == {0: 2, 2: 0, 3: 4, 4: 3}
  assert datasets.flip_label_map(['abseiling', 'zumba']) == {}
  # snake_case and rotations: a mirror turns clockwise into counter-clockwise.
  assert datasets.flip_label_map(['move_left', 'move_right', 'rotate_cw', 'rotate_ccw', 'grow']) == {
      0: 1, 1: 0, 2: 3, 3: 2}
  assert datasets.flip_label_map(['Spinning something clockwise', 'Spinning something '
                                  'anticlockwise', 'Turning counter-clockwise']) == {0: 1, 1: 0}
