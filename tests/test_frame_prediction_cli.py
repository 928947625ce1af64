"""Frame prediction from the command line: --mode predict on .npy and mp4 (unreadable files
skipped and listed), --mode evaluate."""
import json
import shutil

import numpy as np
import pytest

from tests.conftest import run_vidjax
from tests.test_frame_prediction import fp_config, fp_flags
from vidjax import predict
from vidjax.data import decode
from vidjax.data.moving_mnist import MovingMNISTSource
from vidjax.data.synthetic_actions import write_mp4
from vidjax.errors import UserError


@pytest.fixture(scope='module')
def trained(frame_prediction_run, tmp_path_factory):
  """(data root, workdir): a copy of the session's run (conftest.py), as these tests write
  predictions and evaluations into it."""
  root, workdir, *_ = frame_prediction_run
  return root, shutil.copytree(workdir, tmp_path_factory.mktemp('cli') / 'run')


def test_predict_writes_mp4_and_strip_for_npy_and_mp4(trained, tmp_path):
  root, workdir = trained
  sequence = MovingMNISTSource(1, split='test')[0][..., 0]  # [20, 64, 64] uint8
  public = tmp_path / 'public.npy'
  np.save(public, np.stack([sequence, sequence], axis=1))  # [T, N, 64, 64]: sequence 0
  clip = tmp_path / 'clip.mp4'
  write_mp4(clip, np.repeat(sequence[:10, ..., None], 3, axis=-1))  # 10 frames, no future
  result = run_vidjax(*fp_flags(root), '--workdir', workdir, '--mode', 'predict',
                      '--video', public, '--video', clip)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  assert lines[0] == str(public) and lines[3] == str(clip)
  assert 'strip (input, truth, predicted)' in lines[2] and 'strip (input, predicted)' in lines[5]
  for stem in ('public', 'clip'):
    mp4 = workdir / 'predictions' / f'{stem}_predicted.mp4'
    assert f'10 predicted frames: {mp4}' in result.stdout
    frames = decode.read_frames(str(mp4))
    assert frames.shape == (10, 64, 64, 3)
    assert (workdir / 'predictions' / f'{stem}_predicted.png').stat().st_size > 5000


def test_evaluate_mode_prints_every_split_beside_the_baselines(trained):
  root, workdir = trained
  result = run_vidjax(*fp_flags(root), '--workdir', workdir, '--mode', 'evaluate')
  assert result.returncode == 0, result.stderr[-3000:]
  for split in ('eval', 'test', 'test_3digits'):
    assert f'{split} BCE / sequence' in result.stdout
  assert 'last frame' in result.stdout and 'Shi et al. 2015, Table 1' in result.stdout


def test_predict_on_a_bad_file_is_one_line(trained, tmp_path):
  root, workdir = trained
  short = tmp_path / 'short.npy'
  np.save(short, np.zeros((3, 64, 64), np.uint8))
  result = run_vidjax(*fp_flags(root), '--workdir', workdir, '--mode', 'predict', '--video', short)
  assert result.returncode == 2
  assert 'has 3 frames; the model observes 10' in result.stderr and 'Traceback' not in result.stderr


def test_predict_skips_and_lists_unreadable_files(trained, tmp_path, capsys):
  root, workdir = trained
  workdir = shutil.copytree(workdir, tmp_path / 'run')  # Other tests read the fixture's.
  good = tmp_path / 'good.npy'
  np.save(good, MovingMNISTSource(1, split='test')[0][..., 0])  # [20, 64, 64]
  garbage, wrong = tmp_path / 'garbage.npy', tmp_path / 'wrong.npy'
  garbage.write_bytes(b'not an array' * 10)
  np.save(wrong, np.zeros((10, 32, 32), np.uint8))
  missing = str(tmp_path / 'missing.npy')
  paths = [str(garbage), str(good), missing, str(wrong)]
  written = predict.predict(fp_config(root), str(workdir), paths)
  assert [f['mp4'].name for f in written] == ['good_predicted.mp4']
  listed = json.loads((workdir / 'predictions' / 'unreadable.json').read_text())
  assert [f['path'] for f in listed] == [str(garbage), missing, str(wrong)]
  assert listed[0]['error'].startswith('is not a readable .npy: ')
  assert listed[1]['error'] == 'does not exist' and 'has shape [10, 32, 32]' in listed[2]['error']
  printed = capsys.readouterr().out
  assert 'predicted   1 of 4 files' in printed and f'{missing}: does not exist' in printed
  with pytest.raises(UserError, match=r"^none of the 2 files could be read, e.g. --video "
                                      r"'.*garbage.npy' is not a readable .npy: [^\n]*$"):
    predict.predict(fp_config(root), str(workdir), [str(garbage), missing])
