"""Detection and tracking layouts, read from fixtures in their published formats.

Each fixture is written as the release writes it (here COCO's instances JSON and
MMTracking's CocoVID conversion of ImageNet-VID; the Ultralytics YOLO folders and
MOT17 / MOT15 sequences are in test_yolo_mot_layouts.py), with the faults real
copies have; images are tiny PIL files and the expected boxes are worked by hand.
The one box check all layouts share is tested here too.
"""
import json
import logging
import pathlib

import numpy as np
import pytest
from PIL import Image

from vidjax.data.layouts.boxes import Problems, check_boxes
from vidjax.data.layouts.coco import load_coco, load_cocovid

_KEYS = {'boxes', 'box_labels', 'box_frames', 'track_ids', 'crowd_boxes', 'crowd_labels',
         'crowd_frames', 'width', 'height', 'num_frames', 'frame_files'}


def _write(path: pathlib.Path, text: str) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  return path


def _image(path: pathlib.Path, width: int, height: int) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.new('RGB', (width, height), (90, 120, 30)).save(path)
  return path


def _one_line_error(call, *fragments):
  with pytest.raises(ValueError) as info:
    call()
  message = str(info.value)
  assert '\n' not in message and all(f in message for f in fragments), (fragments, message)


def _check_form(record):
  note = record.annotation
  assert set(note) == _KEYS and note['boxes'].dtype == np.float32
  assert all(note[k].dtype == np.int32 for k in ('box_labels', 'box_frames', 'track_ids',
                                                 'crowd_labels', 'crowd_frames'))
  assert len({len(note[k]) for k in ('boxes', 'box_labels', 'box_frames', 'track_ids')}) == 1
  return note


# --- the one check ------------------------------------------------------------

@pytest.mark.parametrize('box, cls, frame, kept, kind', [
    ([1, 2, 5, 6], 0, 0, [1, 2, 5, 6], None), ([-4, 2, 5, 12], 0, 0, [0, 2, 5, 10], 'clipped'),
    ([3, 2, 3, 6], 0, 0, None, 'empty'), ([3, 6, 5, 2], 0, 0, None, 'empty'),
    ([20, 2, 25, 6], 0, 0, None, 'outside'), ([1, -8, 5, 0], 0, 0, None, 'outside'),
    ([1, 2, float('nan'), 6], 0, 0, None, 'not_finite'),
    ([1, 2, 5, 6], 7, 0, None, 'unknown_class'), ([1, 2, 5, 6], 0, 3, None, 'missing_frame')])
def test_check_boxes_each_fault_counted_with_one_line(box, cls, frame, kept, kind):
  problems = Problems('t')
  out = check_boxes('v', [box], [cls], [frame], [5], label_of={0: 0}, frame_index={0: 0, 1: 1},
                    width=16, height=10, problems=problems)
  if kept is None:
    assert out['boxes'].shape == (0, 4) and len(out['track_ids']) == 0
  else:
    np.testing.assert_allclose(out['boxes'], [kept])
    assert out['track_ids'].tolist() == [5] and out['box_frames'].tolist() == [0]
  assert dict(problems.counts) == ({kind: 1} if kind else {})
  assert len(problems.lines()) == (1 if kind else 0)
  assert all(line.startswith('v: box [') and f' on frame {frame} ' in line
             for line in problems.lines())


def test_problems_summary_plurals_and_kept_examples():
  problems = Problems('coco val')
  assert problems.summary() == 'coco val: no problems'
  for kind, count, messages in (('clipped', 3, (f'line {i}' for i in range(10))),
                                ('empty', 1, ['zero']), ('crowd', 2, ())):
    problems.add(kind, count, messages)
  assert problems.summary() == ('coco val: 3 boxes clipped to the image, 1 box with zero or '
                                'negative size dropped, 2 crowd boxes kept apart')
  assert problems.lines() == ['line 0', 'line 1', 'line 2', 'zero'] and problems.faults == 4
  pytest.raises(KeyError, problems.add, 'clippd')


# --- COCO ---------------------------------------------------------------------

def _coco_box(i: int, image: int, category: int, bbox: list, crowd: int = 0) -> dict:
  polygon = [[bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1], bbox[0], bbox[1] + bbox[3]]]
  return {'segmentation': {'counts': [0, 3072], 'size': [48, 64]} if crowd else polygon,
          'area': bbox[2] * bbox[3], 'iscrowd': crowd, 'image_id': image, 'bbox': bbox,
          'category_id': category, 'id': i}


def _coco_json(root: pathlib.Path) -> dict:
  # Categories keep COCO's sparse ids (1, 18) and list order; the rest as released.
  data = {
      'info': {'description': 'COCO 2017 Dataset', 'version': '1.0', 'year': 2017},
      'licenses': [{'url': 'http://creativecommons.org/licenses/by-nc-sa/2.0/', 'id': 1,
                    'name': 'Attribution-NonCommercial-ShareAlike License'}],
      'images': [
          {'license': 1, 'file_name': '000000000042.jpg', 'coco_url': '', 'height': 48,
           'width': 64, 'date_captured': '2013-11-14 17:02:52', 'flickr_url': '', 'id': 42},
          {'license': 1, 'file_name': '000000000007.jpg', 'height': 32, 'width': 32, 'id': 7},
          {'license': 1, 'file_name': '000000000009.jpg', 'height': 32, 'width': 32, 'id': 9}],
      'annotations': [  # Image 1234 is not listed; image 9's file is absent.
          _coco_box(1, 42, 18, [10.0, 5.0, 20.0, 10.0]), _coco_box(2, 42, 1, [50, 40, 30, 20]),
          _coco_box(3, 42, 1, [5.0, 5.0, 0.0, 3.0]), _coco_box(4, 42, 99, [1, 1, 2, 2]),
          _coco_box(5, 42, 1, [0, 0, 64, 48], crowd=1), _coco_box(6, 1234, 1, [1, 1, 2, 2]),
          _coco_box(7, 7, 18, [40, 1, 5, 5]), _coco_box(8, 9, 1, [1, 1, 2, 2])],
      'categories': [{'supercategory': 'person', 'id': 1, 'name': 'person'},
                     {'supercategory': 'animal', 'id': 18, 'name': 'dog'}]}
  _write(root / 'annotations' / 'instances_val2017.json', json.dumps(data))
  _image(root / 'val2017' / '000000000042.jpg', 64, 48)
  _image(root / 'val2017' / '000000000007.jpg', 32, 32)  # 000000000009.jpg is absent.
  return data


def test_coco_boxes_labels_crowd_and_faults(tmp_path, caplog):
  _coco_json(tmp_path)
  with caplog.at_level(logging.WARNING):
    found = load_coco(str(tmp_path), 'val2017')
  assert found.class_names == ['person', 'dog']
  assert [r.video_id for r in found.records] == ['7', '42']
  assert found.missing == [str(tmp_path / 'val2017' / '000000000009.jpg')]
  seven, big = (_check_form(r) for r in found.records)
  assert found.records[1].path == str(tmp_path / 'val2017' / '000000000042.jpg')
  # xywh -> xyxy; id 18 -> label 1; the second box clipped to the 64x48 image.
  np.testing.assert_allclose(big['boxes'], [[10, 5, 30, 15], [50, 40, 64, 48]])
  assert big['box_labels'].tolist() == [1, 0] and big['box_frames'].tolist() == [0, 0]
  assert big['track_ids'].tolist() == [-1, -1] and seven['boxes'].shape == (0, 4)
  np.testing.assert_allclose(big['crowd_boxes'], [[0, 0, 64, 48]])
  assert big['crowd_labels'].tolist() == [0] and big['crowd_frames'].tolist() == [0]
  assert (big['width'], big['height'], big['num_frames'], big['frame_files']) == (
      64, 48, 1, [found.records[1].path])
  assert found.problems.summary() == (
      'COCO val2017: 1 box clipped to the image, 1 box outside the image dropped, '
      '1 box with zero or negative size dropped, 1 box with an unknown class id dropped, '
      '1 box on a frame that does not exist dropped, 1 crowd box kept apart')
  lines = found.problems.lines()
  assert '42: box [1, 1, 3, 3] has class id 99, not in the class list; dropped' in lines
  assert '7: box [40, 1, 45, 6] lies outside the 32x32 image; dropped' in lines
  assert any('image 1234, which is not among the images' in line for line in lines)
  assert found.summary().startswith('2 videos (2 frames, 1 without boxes), 2 classes, '
                                    '2 boxes, 0 tracks, 1 of 3 listed missing (33.3%)')
  warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
  assert len(warnings) == 1 and 'COCO val2017: 1 box clipped' in warnings[0].getMessage()


def test_coco_malformed_files(tmp_path):
  data = _coco_json(tmp_path)
  notes = tmp_path / 'annotations'
  load = lambda name: load_coco(str(tmp_path), 'val2017', annotation_file=f'annotations/{name}')
  _write(notes / 'empty.json', '')
  _one_line_error(lambda: load('empty.json'), 'empty.json', 'the file is empty')
  _write(notes / 'bad.json', '{"images": [\n  {"id": 1,}\n]}')
  _one_line_error(lambda: load('bad.json'), 'bad.json, line 2', 'invalid JSON')
  data['annotations'][1]['bbox'] = [50.0, 40.0, 30.0]
  _write(notes / 'short.json', json.dumps(data))
  _one_line_error(lambda: load('short.json'), 'short.json', 'annotations[1]', '[x, y, w, h]')
  data['annotations'][1]['bbox'] = [1, 1, 2, 2]
  data['images'][1]['id'] = 42
  _write(notes / 'twice.json', json.dumps(data))
  _one_line_error(lambda: load('twice.json'), 'images id 42 is used 2 times')
  _one_line_error(lambda: load('none.json'), 'COCO annotations not found', 'none.json')
  _one_line_error(lambda: load_cocovid(str(tmp_path), 'x', annotation_file=str(
      notes / 'instances_val2017.json')), 'no "videos"', 'load_coco')


# --- CocoVID (MMTracking's ImageNet-VID conversion) ----------------------------

_VID_NAME = 'train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000'
_VID_JSON = 'annotations/imagenet_vid_train.json'


def _cocovid(root: pathlib.Path) -> None:
  frame = lambda i, n, video, fid: {
      'file_name': f'{_VID_NAME if video == 1 else "val/ILSVRC2015_val_00000000"}/{n:06d}.JPEG',
      'height': 24, 'width': 32, 'id': i, 'frame_id': fid, 'video_id': video,
      'is_vid_train_frame': True}
  box = lambda i, image, cat, inst, bbox: {
      'id': i, 'video_id': 1, 'image_id': image, 'category_id': cat, 'instance_id': inst,
      'bbox': bbox, 'area': bbox[2] * bbox[3], 'iscrowd': False, 'occluded': False,
      'generated': False}
  data = {
      'categories': [{'id': 1, 'name': 'airplane', 'encode_name': 'n02691156'},
                     {'id': 2, 'name': 'antelope', 'encode_name': 'n02419796'}],
      'videos': [{'id': 1, 'name': _VID_NAME, 'vid_train_frames': [0, 2]},
                 {'id': 2, 'name': 'val/ILSVRC2015_val_00000000', 'vid_train_frames': []}],
      # Listed out of frame order; frame 1's image is absent on disk.
      'images': [frame(3, 2, 1, 2), frame(1, 0, 1, 0), frame(2, 1, 1, 1), frame(4, 0, 2, 0),
                 {'file_name': 'det/n02691156_1.JPEG', 'height': 20, 'width': 20, 'id': 5,
                  'frame_id': -1, 'video_id': -1}],
      'annotations': [box(1, 1, 2, 0, [1, 2, 10, 8]), box(2, 3, 2, 0, [3, 2, 10, 8]),
                      box(3, 3, 1, 1, [20, 10, 20, 20]), box(4, 2, 2, 0, [2, 2, 10, 8]),
                      box(5, 4, 1, 0, [0, 0, 4, 4]),
                      {'id': 6, 'image_id': 5, 'category_id': 1, 'bbox': [1, 1, 2, 2],
                       'area': 4, 'iscrowd': False}]}
  _write(root / _VID_JSON, json.dumps(data))
  frames = root / 'Data' / 'VID'
  for name in (f'{_VID_NAME}/000000.JPEG', f'{_VID_NAME}/000002.JPEG',
               'val/ILSVRC2015_val_00000000/000000.JPEG'):
    _image(frames / name, 32, 24)
  _image(frames / 'det' / 'n02691156_1.JPEG', 20, 20)


def test_cocovid_frame_order_tracks_missing_frames_and_video_files(tmp_path):
  _cocovid(tmp_path)
  found = load_cocovid(str(tmp_path), 'train', annotation_file=_VID_JSON, image_dir='Data/VID')
  assert found.class_names == ['airplane', 'antelope'] and found.missing == []
  by_id = {r.video_id: r for r in found.records}
  assert sorted(by_id) == ['5', _VID_NAME, 'val/ILSVRC2015_val_00000000']
  note, folder = _check_form(by_id[_VID_NAME]), tmp_path / 'Data' / 'VID' / _VID_NAME
  assert by_id[_VID_NAME].path == str(folder)
  # Frame 1 is absent: frames 0 and 2 become 0 and 1, and frame 1's box is dropped.
  assert note['frame_files'] == [str(folder / '000000.JPEG'), str(folder / '000002.JPEG')]
  assert note['num_frames'] == 2 and (note['width'], note['height']) == (32, 24)
  np.testing.assert_allclose(note['boxes'], [[1, 2, 11, 10], [3, 2, 13, 10], [20, 10, 32, 24]])
  assert note['box_frames'].tolist() == [0, 1, 1] and note['track_ids'].tolist() == [0, 0, 1]
  assert note['box_labels'].tolist() == [1, 1, 0]
  assert dict(found.problems.counts) == {'missing_image': 1, 'missing_frame': 1, 'clipped': 1}
  examples = found.problems.examples
  assert examples['missing_image'][0].startswith(f'{_VID_NAME}: frame 1 (')
  assert 'on frame 1 is on a frame that does not exist' in examples['missing_frame'][0]
  assert found.summary().startswith('3 videos (4 frames, 0 without boxes), 2 classes, '
                                    '5 boxes, 3 tracks;')
  det = by_id['5'].annotation  # An ImageNet DET image (video_id -1): a one-frame record.
  assert det['boxes'].tolist() == [[1, 1, 3, 3]] and det['track_ids'].tolist() == [-1]
  # With video files, 'box_frames' are the frame ids: no frame is left out.
  _write(tmp_path / 'videos' / f'{_VID_NAME}.mp4', '')
  found = load_cocovid(str(tmp_path), 'train', annotation_file=_VID_JSON, image_dir='Data/VID',
                       video_dir='videos')
  video = {r.video_id: r for r in found.records}[_VID_NAME]
  assert video.path == str(tmp_path / 'videos' / f'{_VID_NAME}.mp4')
  note = video.annotation
  assert (note['frame_files'], note['num_frames'], note['box_frames'].tolist()) == (
      None, 3, [0, 1, 2, 2])
  assert found.missing == [str(tmp_path / 'videos' / 'val/ILSVRC2015_val_00000000.mp4')]


# --- YOLO ---------------------------------------------------------------------
