"""`config.data` -> the records of a split, for each dataset layout, end to end.

The layouts themselves are tested in test_datasets.py; here: the config keys
that choose them, and that a split read this way goes through the pipeline.
"""
import pytest

from tests.conftest import tiny_data
from vidjax.data import pipeline, sources, testing
from vidjax.errors import UserError


def test_ucf101_fold_is_chosen_in_the_config(tmp_path):
  testing.make_ucf101(str(tmp_path))  # Fold k tests on group k.
  for fold in (1, 3):
    split = sources.load_split(tiny_data(dataset='ucf101', root=str(tmp_path), ucf101_fold=fold),
                               'test')
    assert len(split.records) == 3
    assert all(f'_g{fold:02d}_' in path for path, _ in split.records)
  with pytest.raises(UserError, match="split must be 'train' or 'test'.*data.eval_split"):
    sources.load_split(tiny_data(dataset='ucf101', root=str(tmp_path)), 'val')


def test_kinetics_names_and_missing_files(tmp_path):
  names = ['abseiling', 'air drumming']
  missing = testing.make_kinetics(str(tmp_path), 'train', testing.kinetics_rows(names, 3, 'train'),
                                  missing=[1])
  for kind in ('kinetics', 'kinetics700'):
    split = sources.load_split(tiny_data(dataset=kind, root=str(tmp_path)), 'train')
    assert split.class_names == names and split.missing == missing and len(split.records) == 5


def test_ssv2_split_reads_through_the_pipeline(tmp_path):
  testing.make_ssv2(str(tmp_path))
  split = sources.load_split(tiny_data(dataset='ssv2', root=str(tmp_path)), 'val')
  assert len(split.records) == 10 and len(split.class_names) == 5
  data = tiny_data(num_frames=4, frame_stride=1, eval_num_clips=2)
  failures = pipeline.FailureCounter('val', 0.0, min_seen=len(split.records))
  batches = list(pipeline.eval_batches(split.records, data, batch_size=8, num_batches=3,
                                       failures=failures))
  assert sum(int(b['mask'].sum()) for b in batches) == 20 and not failures.failed


def test_empty_root_for_a_real_dataset_is_one_line():
  with pytest.raises(UserError, match='data.root is empty'):
    sources.load_split(tiny_data(dataset='kinetics', root=''), 'train')
