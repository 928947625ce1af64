"""Data for denoising: the published layouts (DAVIS-2017, Set8-style frame folders, DIV2K,
video folders and lists) read from tiny copies in their exact layout, and the embedded set
(synthetic_denoise) generated small, read back through the registry, disjoint in photographs.
"""
import os
import pathlib

import ml_collections
import numpy as np
import pytest
from PIL import Image

from vidjax.data import decode, decode_images, registry
from vidjax.data import synthetic_actions as sa
from vidjax.data import synthetic_denoise as sd
from vidjax.data.layouts import frames
from vidjax.errors import UserError


def _image(path, size=(16, 16), value=0):
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
  return str(path)


def _text(path, lines):
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(''.join(f'{line}\n' for line in lines))


def _data(**values):
  return ml_collections.ConfigDict(values)


@pytest.fixture
def davis(tmp_path):
  for seq in ('bear', 'car'):
    for t in range(3):
      _image(tmp_path / 'JPEGImages' / '480p' / seq / f'{t:05d}.jpg', value=40 * t)
  _text(tmp_path / 'ImageSets' / '2017' / 'train.txt', ['bear'])
  _text(tmp_path / 'ImageSets' / '2017' / 'val.txt', ['car', 'gone'])
  _text(tmp_path / 'ImageSets' / '2017' / 'test-dev.txt', ['bear', 'car'])
  return tmp_path


def test_davis_reads_the_split_lists(davis):
  train = frames.load_davis(str(davis), 'train')
  assert [r.video_id for r in train.records] == ['bear'] and train.class_names == []
  files = train.records[0].annotation['frame_files']
  assert [os.path.basename(f) for f in files] == ['00000.jpg', '00001.jpg', '00002.jpg']
  val = frames.load_davis(str(davis), 'val')
  assert [r.video_id for r in val.records] == ['car']
  assert val.missing == [str(davis / 'JPEGImages' / '480p' / 'gone')]
  assert len(frames.load_davis(str(davis), 'test')) == 2  # test-dev.txt.
  with pytest.raises(ValueError, match=r'DAVIS split list not found.*trainval\.txt'):
    frames.load_davis(str(davis), 'trainval')


def test_davis_through_the_registry_decodes_in_order(davis):
  split = registry.load_split(_data(dataset='davis2017', root=str(davis)), 'train')
  record, = split.records
  clip, indices = decode_images.read_clip(record.annotation['frame_files'],
                                          lambda n: np.arange(n))
  assert clip.shape == (3, 16, 16, 3) and list(indices) == [0, 1, 2]
  assert list(clip[:, 0, 0, 0]) == [0, 40, 80]  # JPEG keeps a flat grey exactly.


def test_frame_folders_split_and_flat(tmp_path):
  for t in (1, 2, 10):  # Natural order: frame10 after frame2.
    _image(tmp_path / 'split' / 'test' / 'tractor' / f'frame{t}.png')
  _image(tmp_path / 'split' / 'train' / 'hypersmooth' / 'a.bmp')
  (tmp_path / 'split' / 'test' / 'empty').mkdir()
  found = frames.load_frame_folders(str(tmp_path / 'split'), 'test')
  assert [r.video_id for r in found.records] == ['tractor'] and len(found.missing) == 1
  names = [os.path.basename(f) for f in found.records[0].annotation['frame_files']]
  assert names == ['frame1.png', 'frame2.png', 'frame10.png']
  for seq in ('motorbike', 'snowboard'):  # Set8 as shipped: no split folder.
    _image(tmp_path / 'set8' / seq / '00000.jpeg')
  for split in ('train', 'test'):
    assert len(frames.load_frame_folders(str(tmp_path / 'set8'), split)) == 2
  with pytest.raises(ValueError, match="no frame folders for split 'val'"):
    frames.load_frame_folders(str(tmp_path / 'split'), 'val')


def test_frames_of_mixed_sizes_are_one_line(tmp_path):
  _image(tmp_path / 'test' / 'seq' / '0.png', (16, 16))
  _image(tmp_path / 'test' / 'seq' / '1.png', (20, 16))
  with pytest.raises(ValueError) as error:
    frames.load_frame_folders(str(tmp_path), 'test')
  message = str(error.value)
  assert '\n' not in message
  assert message == (f'frames of mixed sizes in {tmp_path / "test" / "seq"}: 0.png is 16x16, '
                     '1.png is 20x16; resize them to one size')
  with pytest.raises(UserError, match='frames of mixed sizes'):
    registry.load_split(_data(dataset='frame_folders', root=str(tmp_path)), 'test')


def test_div2k_images_are_one_frame_records(tmp_path):
  for name in ('0002', '0001'):
    _image(tmp_path / 'DIV2K_train_HR' / f'{name}.png')
  _image(tmp_path / 'DIV2K_valid_HR' / '0801.png', (20, 12))
  train = frames.load_div2k(str(tmp_path), 'train')
  assert [r.video_id for r in train.records] == ['0001', '0002']
  assert all(r.annotation['frame_files'] == [r.path] for r in train.records)
  assert [r.video_id for r in frames.load_div2k(str(tmp_path), 'test').records] == ['0801']
  with pytest.raises(UserError, match="DIV2K split must be.*data.train_split"):
    registry.load_split(_data(dataset='div2k', root=str(tmp_path)), 'trainval')
  with pytest.raises(ValueError, match='DIV2K val images not found'):
    frames.load_div2k(str(tmp_path / 'DIV2K_train_HR'), 'val')


def test_video_folder_and_csv(tmp_path):
  clip = np.zeros((2, 16, 16, 3), np.uint8)
  for relative in ('train/b/x.mp4', 'train/a.avi', 'test/y.mkv'):
    (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / relative).write_bytes(b'')  # Listed, never opened.
  sa.write_mp4(tmp_path / 'train' / 'b' / 'x.mp4', clip)
  train = frames.load_video_folder(str(tmp_path), 'train')
  assert [r.video_id for r in train.records] == ['a', 'b/x']
  assert all(r.annotation == {} for r in train.records) and train.class_names == []
  assert decode.read_frames(train.records[1].path).shape == (2, 16, 16, 3)
  _text(tmp_path / 'val.csv', ['path,note', 'train/b/x.mp4,seen', 'gone.mp4,absent'])
  val = frames.load_video_folder(str(tmp_path), 'val')
  assert [r.video_id for r in val.records] == ['train/b/x']
  assert val.missing == [str(tmp_path / 'gone.mp4')]
  _text(tmp_path / 'bad.csv', ['file', 'x.mp4'])
  with pytest.raises(ValueError, match='has no "path" column'):
    frames.load_video_folder(str(tmp_path), 'bad')
  with pytest.raises(ValueError, match='val2 videos not found'):
    frames.load_video_folder(str(tmp_path), 'val2')


def test_embedded_splits_are_disjoint_in_photographs():
  used = {s: {sd.video_source(s, i) for i in range(100)} for s in sd.SPLITS}
  assert used == {s: set(sd.SOURCES[s]) for s in sd.SPLITS}
  assert not (used['train'] & used['test'] or used['train'] & used['val']
              or used['val'] & used['test'])


@pytest.mark.parametrize('shape', [(512, 512), (172, 448), (930, 930)])
def test_camera_views_stay_inside_the_photograph(shape):
  for index in range(10):
    path = sd.camera_path(np.random.default_rng([7, index]), shape, 32, 96)
    half = path.side / 2
    angle = np.deg2rad(path.roll)
    reach = half * (np.abs(np.cos(angle)) + np.abs(np.sin(angle)))
    assert np.all(path.centre - reach[:, None] >= 0)
    assert np.all(path.centre + reach[:, None] <= np.array(shape) - 1)
    assert path.side.min() >= 96 - 1e-9  # No frame upsamples its photograph.


def test_embedded_set_generates_once_and_reads_back(tmp_path):
  data = _data(dataset='synthetic_denoise', root=str(tmp_path / 'denoise'),
               denoise_videos_per_split=(2, 1, 1), denoise_frames=8, denoise_size=32)
  splits = {s: registry.load_split(data, s) for s in sd.SPLITS}
  assert [len(splits[s].records) for s in sd.SPLITS] == [2, 1, 1]
  for split in splits.values():
    assert split.class_names == [] and split.missing == []
    for record in split.records:
      assert decode.read_frames(record.path).shape == (8, 32, 32, 3)
  sources = {s: (tmp_path / 'denoise' / f'{s}.csv').read_text().split()[1:] for s in sd.SPLITS}
  for s in sd.SPLITS:
    assert {row.split(',')[1] for row in sources[s]} <= set(sd.SOURCES[s])
  done = tmp_path / 'denoise' / 'DONE'
  stamp = done.stat().st_mtime_ns
  registry.load_split(data, 'test')  # Same parameters: nothing is written.
  assert done.stat().st_mtime_ns == stamp
  video = decode.read_frames(splits['train'].records[0].path).astype(np.float64)
  assert video.std() > 10 and np.abs(np.diff(video, axis=0)).mean() > 1  # Texture, motion.
