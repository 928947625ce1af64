"""The dataset registry: `config.data` -> the records of a split, for every dataset.

The layouts themselves are tested in test_datasets.py; here: the config keys
that choose them, that a split read this way goes through the pipeline, and
that Moving MNIST is a registry dataset like the others.
"""
import pytest

from tests.conftest import tiny_data
from vidjax.data import pipeline, registry, testing
from vidjax.tasks.classification import LabelTargets
from vidjax.errors import UserError


def test_ucf101_fold_is_chosen_in_the_config(tmp_path):
  testing.make_ucf101(str(tmp_path))  # Fold k tests on group k.
  for fold in (1, 3):
    split = registry.load_split(tiny_data(dataset='ucf101', root=str(tmp_path), ucf101_fold=fold),
                               'test')
    assert len(split.records) == 3
    assert all(f'_g{fold:02d}_' in r.path for r in split.records)
    assert {r.annotation['label'] for r in split.records} <= set(range(101))
  with pytest.raises(UserError, match="split must be 'train' or 'test'.*data.eval_split"):
    registry.load_split(tiny_data(dataset='ucf101', root=str(tmp_path)), 'val')


def test_kinetics_names_and_missing_files(tmp_path):
  names = ['abseiling', 'air drumming']
  missing = testing.make_kinetics(str(tmp_path), 'train', testing.kinetics_rows(names, 3, 'train'),
                                  missing=[1])
  for kind in ('kinetics', 'kinetics700'):
    split = registry.load_split(tiny_data(dataset=kind, root=str(tmp_path)), 'train')
    assert split.class_names == names and split.missing == missing and len(split.records) == 5


def test_ssv2_split_reads_through_the_pipeline(tmp_path):
  testing.make_ssv2(str(tmp_path))
  split = registry.load_split(tiny_data(dataset='ssv2', root=str(tmp_path)), 'val')
  assert len(split.records) == 10 and len(split.class_names) == 5
  data = tiny_data(num_frames=4, frame_stride=1, eval_num_clips=2)
  failures = pipeline.FailureCounter('val', 0.0, min_seen=len(split.records))
  batches = list(pipeline.eval_batches(split.records, data, batch_size=8, num_batches=3,
                                       failures=failures, targets=LabelTargets()))
  assert sum(int(b['mask'].sum()) for b in batches) == 20 and not failures.failed


def test_empty_root_for_a_real_dataset_is_one_line():
  with pytest.raises(UserError, match='data.root is empty'):
    registry.load_split(tiny_data(dataset='kinetics', root=''), 'train')


def test_unknown_dataset_is_one_line_with_the_closest_name():
  with pytest.raises(UserError, match="unknown data.dataset 'kinetic'.*did you mean 'kinetics'"):
    registry.load_split(tiny_data(dataset='kinetic'), 'train')


def test_every_entry_names_its_published_class_count_or_none():
  assert registry.get('ucf101').num_classes == 101 and registry.get('ssv2').num_classes == 174
  assert registry.get('kinetics700').num_classes == 700
  assert registry.get('csv').num_classes is None  # A user's own list: read from its files.


def test_moving_mnist_is_an_array_backed_registry_dataset(tmp_path):
  data = tiny_data(dataset='moving_mnist', root=str(tmp_path))
  with data.unlocked():
    data.moving_mnist.num_val, data.moving_mnist.num_test = 4, 4
    data.moving_mnist.train_sequences = 6
  train = registry.load_split(data, 'train', seed=3)
  assert len(train.records) == 6 and train.records[2].index == 2
  first = train.source[train.records[0].index]
  assert first.shape == (20, 64, 64, 1) and first.dtype == 'uint8'
  assert (registry.load_split(data, 'train', seed=3).source[0] == first).all()  # (seed, i) alone.
  for split in ('val', 'test', 'test_3digits'):
    fixed = registry.load_split(data, split)
    assert len(fixed.records) == 4 and fixed.source.shape == (4, 20, 64, 64, 1)
    assert fixed.records[0].path.endswith('.npy')
  with pytest.raises(UserError, match="Moving MNIST has the splits"):
    registry.load_split(data, 'validation')
