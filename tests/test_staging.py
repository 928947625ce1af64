"""vidjax/data/staging.py: a dataset appears whole or not at all."""
import os

import pytest

from vidjax.data import staging


def _fill(folder, text):
  folder.mkdir(parents=True)
  (folder / 'DONE').write_text(text)


def test_publish_replaces_the_old_dataset_and_leaves_no_folder_behind(tmp_path):
  root = tmp_path / 'data'
  _fill(root, 'old')
  fresh = staging.staging_dir(root)
  assert fresh.parent == tmp_path and not fresh.exists()
  _fill(fresh, 'new')
  staging.publish(fresh, root, lambda: False)
  assert (root / 'DONE').read_text() == 'new'
  assert sorted(os.listdir(tmp_path)) == ['data']


@pytest.mark.parametrize('theirs_is_wanted', [True, False])
def test_a_dataset_another_process_published_first(tmp_path, monkeypatch, theirs_is_wanted):
  root = tmp_path / 'data'
  mine = staging.staging_dir(root)
  _fill(mine, 'mine')
  rename = os.rename

  def race(src, dst):  # The other process renames its copy onto root just before us.
    if src == mine:
      _fill(root, 'theirs')
      raise OSError('Directory not empty')
    rename(src, dst)
  monkeypatch.setattr(staging.os, 'rename', race)
  if theirs_is_wanted:
    staging.publish(mine, root, lambda: True)
  else:
    with pytest.raises(OSError, match='Directory not empty'):
      staging.publish(mine, root, lambda: False)
  assert (root / 'DONE').read_text() == 'theirs' and not mine.exists()


def test_the_wanted_dataset_already_in_place_is_kept_for_its_readers(tmp_path):
  root = tmp_path / 'data'
  _fill(root, 'theirs')
  inode = root.stat().st_ino
  mine = staging.staging_dir(root)
  _fill(mine, 'mine')
  staging.publish(mine, root, lambda: (root / 'DONE').read_text() == 'theirs')
  assert root.stat().st_ino == inode and (root / 'DONE').read_text() == 'theirs'
  assert sorted(os.listdir(tmp_path)) == ['data']
