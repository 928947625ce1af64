"""The YOLO and MOT Challenge layouts, on fixture files in their exact published formats.

The box checks they share, COCO and CocoVID are in test_detection_layouts.py, whose
fixture writers these tests reuse.
"""
import numpy as np
import pytest

from tests.test_detection_layouts import _check_form, _image, _one_line_error, _write
from vidjax.data.layouts.mot import load_mot
from vidjax.data.layouts.yolo import label_path, load_yolo


_YOLO_YAML = """\
# Ultralytics YOLO, AGPL-3.0 license
path: ../datasets/tiny # dataset root dir (the author's; not here)
train: images/train # train images (relative to 'path')
val: images/val # val images (relative to 'path')
test: # test images (optional)

# Classes
names:
  0: person
  2: car
"""


@pytest.fixture
def yolo(tmp_path):
  _write(tmp_path / 'data.yaml', _YOLO_YAML)
  images, labels = tmp_path / 'images' / 'train', tmp_path / 'labels' / 'train'
  _image(images / 'a.jpg', 64, 48)
  _write(labels / 'a.txt', '0 0.5 0.5 0.25 0.5\n2 0.9 0.5 0.4 0.2\n'
         '1 0.5 0.5 0.1 0.1\n0 0.5 0.5 0 0.2\n')
  _image(images / 'b.png', 32, 32)  # No label file: no objects.
  _image(images / 'c.jpg', 16, 16)
  _write(labels / 'c.txt', '')  # Empty: no objects.
  _write(images / 'bad.jpg', 'not an image')
  _write(images / 'readme.md', 'not listed')
  _image(tmp_path / 'images' / 'val' / 'd.jpg', 16, 16)
  _write(tmp_path / 'labels' / 'val' / 'd.txt', '0 0.5 0.5 0.2\n')
  return tmp_path


def test_yolo_normalised_boxes_to_pixels_and_class_map(yolo):
  found = load_yolo(str(yolo), 'train')
  assert found.class_names == ['person', 'car'] and found.missing == []
  assert [r.video_id for r in found.records] == ['images/train/a', 'images/train/b',
                                                 'images/train/c']
  a = _check_form(found.records[0])
  # cx 32, cy 24, w 16, h 24 -> [24, 12, 40, 36]; the car (id 2 -> label 1) reaches x 70.4.
  np.testing.assert_allclose(a['boxes'], [[24, 12, 40, 36], [44.8, 19.2, 64, 28.8]], rtol=1e-6)
  assert a['box_labels'].tolist() == [0, 1] and a['track_ids'].tolist() == [-1, -1]
  assert (a['width'], a['height'], a['num_frames']) == (64, 48, 1)
  assert a['frame_files'] == [str(yolo / 'images' / 'train' / 'a.jpg')]
  assert (found.records[1].annotation['width'], found.records[1].annotation['height']) == (32, 32)
  assert found.problems.summary() == (
      'YOLO train: 1 box clipped to the image, 1 box with zero or negative size dropped, '
      '1 box with an unknown class id dropped, 1 image that cannot be read left out, '
      '1 image without a label file (no objects), 1 image with an empty label file (no objects)')
  _one_line_error(lambda: load_yolo(str(yolo), 'val'), 'd.txt, line 1', 'got 4 fields')
  _one_line_error(lambda: load_yolo(str(yolo), 'test'), "names no 'test' split",
                  'it has train, val')


def test_yolo_roboflow_layout_list_names_and_txt_lists(tmp_path):
  _write(tmp_path / 'data.yaml', "train: ../train/images\nval: valid.txt\nnc: 1\nnames: ['cat']\n")
  _image(tmp_path / 'train' / 'images' / 'x.jpg', 20, 10)
  _write(tmp_path / 'train' / 'labels' / 'x.txt', '0 0.5 0.5 1.0 1.0\n')
  _write(tmp_path / 'valid.txt', './train/images/x.jpg\ntrain/images/gone.jpg\n')
  assert label_path('/d/images/train/images/x.jpg') == '/d/images/train/labels/x.txt'
  found = load_yolo(str(tmp_path), 'train')
  assert found.class_names == ['cat']
  np.testing.assert_allclose(found.records[0].annotation['boxes'], [[0, 0, 20, 10]])
  val = load_yolo(str(tmp_path), 'val')
  assert [r.path for r in val.records] == [str(tmp_path / 'train' / 'images' / 'x.jpg')]
  assert val.missing == [str(tmp_path / 'train' / 'images' / 'gone.jpg')]


def test_yolo_malformed_yaml_and_labels(yolo):
  for text, fragments in (('', ('the file is empty',)),
                          ('train: images/train\nnames: [a, b\n', ('line 3', 'invalid YAML')),
                          ('train: images/train\n', ('"names" is None',)),
                          ('train: images/train\nnc: 3\nnames: [a]\n', ('"nc" is 3',)),
                          ('train: nowhere\nnames: [a]\n', ('YOLO train images not found',))):
    _write(yolo / 'bad.yaml', text)
    _one_line_error(lambda: load_yolo(str(yolo), 'train', data_yaml='bad.yaml'), 'bad.yaml',
                    *fragments)
  for line, fragment in (('0 0.5 0.5 0.2 0.2 0.1 0.3', 'got 7 fields'),
                         ('0 0.5 0.5 0.2 x', 'not five numbers'),
                         ('0.5 0.5 0.5 0.2 0.2', 'not an integer id')):
    _write(yolo / 'labels' / 'train' / 'a.txt', f'0 0.5 0.5 0.2 0.2\n{line}\n')
    _one_line_error(lambda: load_yolo(str(yolo), 'train'), 'a.txt, line 2', fragment)


# --- MOT Challenge ------------------------------------------------------------

def _seqinfo(name: str, length: int, width: int = 64, height: int = 48) -> str:
  return (f'[Sequence]\nname={name}\nimDir=img1\nframeRate=30\nseqLength={length}\n'
          f'imWidth={width}\nimHeight={height}\nimExt=.jpg\n')


# MOT17 gt.txt, sorted by track id as released.
_MOT17_GT = """\
1,1,10,5,20,30,1,1,0.9
2,1,12,5,20,30,1,1,0.8
3,1,13,5,20,30,1,1,1
4,1,14,5,20,30,1,1,1
5,1,15,5,20,30,1,1,1
1,2,-5,10,15,20,1,1,0.5
1,3,30,20,10,10,0,1,1
1,4,30,20,10,10,1,3,1
2,5,1,1,5,5,1,99,1
2,6,1,1,0,5,1,1,1
"""


@pytest.fixture
def mot(tmp_path):
  root = tmp_path / 'MOT17'
  seq = root / 'train' / 'MOT17-02-FRCNN'
  _write(seq / 'seqinfo.ini', _seqinfo('MOT17-02-FRCNN', 4))
  for n in (1, 2, 4):  # Frame 3's image is missing.
    _image(seq / 'img1' / f'{n:06d}.jpg', 64, 48)
  _write(seq / 'gt' / 'gt.txt', _MOT17_GT)
  video_seq = root / 'train' / 'MOT17-05-SDP'  # Frames as one video file.
  _write(video_seq / 'seqinfo.ini', _seqinfo('MOT17-05-SDP', 3))
  _write(video_seq / 'MOT17-05-SDP.mp4', '')
  _write(video_seq / 'gt' / 'gt.txt', '3,7,1,1,4,4,1,1,1\n')
  test = root / 'test' / 'MOT17-01-FRCNN'  # No gt/ in the test split.
  _write(test / 'seqinfo.ini', _seqinfo('MOT17-01-FRCNN', 1))
  _image(test / 'img1' / '000001.jpg', 64, 48)
  return root


def test_mot17_filters_conf_and_class_and_drops_missing_frames(mot):
  found = load_mot(str(mot), 'train')
  assert found.class_names == ['pedestrian'] and found.missing == []
  (seq, video), frames = found.records, mot / 'train' / 'MOT17-02-FRCNN' / 'img1'
  note = _check_form(seq)
  assert seq.video_id == 'MOT17-02-FRCNN' and seq.path == str(frames)
  assert note['frame_files'] == [str(frames / f'{n:06d}.jpg') for n in (1, 2, 4)]
  np.testing.assert_allclose(note['boxes'], [[10, 5, 30, 35], [12, 5, 32, 35],
                                             [14, 5, 34, 35], [0, 10, 10, 30]])
  assert note['box_frames'].tolist() == [0, 1, 2, 0]  # MOT frame 4 is the third image.
  assert note['track_ids'].tolist() == [1, 1, 1, 2] and note['box_labels'].tolist() == [0] * 4
  assert (note['width'], note['height'], note['num_frames']) == (64, 48, 3)
  assert found.problems.summary() == (
      'MOT17 train: 1 box clipped to the image, 1 box with zero or negative size dropped, '
      '1 box with an unknown class id dropped, 2 boxes on a frame that does not exist dropped, '
      '1 frame whose image is missing left out, 2 rows not to be scored (conf 0 or another '
      'class) skipped')
  assert [m.split(' is on')[0] for m in found.problems.examples['missing_frame']] == [
      'MOT17-02-FRCNN: box [13, 5, 33, 35] on frame 3',
      'MOT17-02-FRCNN: box [15, 5, 35, 35] on frame 5']
  assert video.path == str(mot / 'train' / 'MOT17-05-SDP' / 'MOT17-05-SDP.mp4')
  note = video.annotation  # MOT frame 3 of the video is its frame 2.
  assert (note['frame_files'], note['num_frames'], note['box_frames'].tolist()) == (None, 3, [2])
  cars = load_mot(str(mot), 'train', classes=(1, 3))
  assert cars.class_names == ['pedestrian', 'car']
  assert cars.records[0].annotation['box_labels'].tolist() == [0, 0, 0, 0, 1]
  test = load_mot(str(mot), 'test')
  assert test.records[0].annotation['boxes'].shape == (0, 4)
  assert test.problems.summary() == 'MOT17 test: 1 sequence without gt/gt.txt (no boxes)'


def test_mot15_rows_without_class_are_all_kept(tmp_path):
  seq = tmp_path / 'MOT15' / 'train' / 'ADL-Rundle-6'
  _write(seq / 'seqinfo.ini', _seqinfo('ADL-Rundle-6', 2, 32, 32))
  for n in (1, 2):
    _image(seq / 'img1' / f'{n:06d}.jpg', 32, 32)
  _write(seq / 'gt' / 'gt.txt', '1,1,1,2,10,10,1,-1,-1,-1\n2,1,2,2,10,10,0,-1,-1,-1\n')
  (record,) = load_mot(str(tmp_path / 'MOT15'), 'train').records
  np.testing.assert_allclose(record.annotation['boxes'], [[1, 2, 11, 12], [2, 2, 12, 12]])
  assert record.annotation['box_frames'].tolist() == [0, 1]
  assert record.annotation['track_ids'].tolist() == [1, 1]  # conf 0 kept: no class column.


def test_mot_malformed_files(mot):
  seq = mot / 'train' / 'MOT17-02-FRCNN'
  gt = seq / 'gt' / 'gt.txt'
  for text, fragments in (('', ('gt.txt', 'the file is empty')),
                          ('1,1,10,5,20,30,1,1,1\n1,2,3,4,5\n', ('gt.txt, line 2', 'got 5')),
                          ('1,1,10,5,20,30,1,1,1\n1,2,3,4,5,6,1\n', ('line 2', 'line 1 has 9')),
                          ('1,1,10,5,20,30,1,1,1\n1,2,3,4,5,x,1,1,1\n', ('line 2', 'not comma')),
                          ('1.5,1,10,5,20,30,1,1,1\n', ('line 1', 'frame, id and class must')),
                          ('1,1,10,5,20,30,1,nan,1\n', ('line 1', 'must be integers'))):
    _write(gt, text)
    _one_line_error(lambda: load_mot(str(mot), 'train'), *fragments)
  _write(gt, _MOT17_GT)
  _write(seq / 'seqinfo.ini', '[Sequence]\nname=MOT17-02-FRCNN\nimDir=img1\n')
  _one_line_error(lambda: load_mot(str(mot), 'train'), 'seqinfo.ini', 'frameRate is None')
  _write(seq / 'seqinfo.ini', 'name=MOT17-02-FRCNN\n')
  _one_line_error(lambda: load_mot(str(mot), 'train'), 'seqinfo.ini, line 1', 'not an INI file')
  _one_line_error(lambda: load_mot(str(mot), 'val'), 'MOT val sequences not found')
  _one_line_error(lambda: load_mot(str(mot), 'train', classes=(42,)), 'MOT classes')
