"""`--mode extract`: a trained classifier's snippet features, checked against the model itself."""
import json

import jax
import numpy as np
import pytest

from tests.conftest import tiny_config
from vidjax import extract, predict, train
from vidjax.data import decode, synthetic_actions
from vidjax.tasks.classification import normalize


def test_snippets_start_every_stride_frames_and_fit_in_the_video():
  assert extract.snippet_starts(16, 4, 8).tolist() == [0, 4, 8]
  assert extract.snippet_starts(7, 4, 8).tolist() == []


@pytest.fixture(scope='module')
def extracted(tiny_actions_root, tmp_path_factory):
  """A 2-step LRCN, then extraction over two test videos, a short one and a broken one."""
  workdir = tmp_path_factory.mktemp('backbone')
  config = tiny_config(tiny_actions_root, **{'train.num_steps': 2, 'train.checkpoint_every': 2})
  train.train_and_evaluate(config, str(workdir))
  videos = sorted(str(p) for p in (tiny_actions_root / 'videos' / 'test').glob('*.mp4'))[:2]
  short = tmp_path_factory.mktemp('short') / 'short.mp4'
  synthetic_actions.write_mp4(short, np.zeros((5, 32, 32, 3), np.uint8))
  broken = short.parent / 'broken.mp4'
  broken.write_bytes(b'not a video')
  out = tmp_path_factory.mktemp('features')
  config = tiny_config(tiny_actions_root, **{'extract.out_dir': str(out), 'extract.stride': 4,
                                             'extract.batch_size': 8})
  extract.extract(config, str(workdir), videos + [str(short), str(broken)])
  return config, workdir, out, videos


def test_features_are_what_the_head_reads_for_each_snippet(extracted):
  config, workdir, out, videos = extracted
  index = json.loads((out / 'features.json').read_text())
  assert index['stride'] == 4 and index['window'] == 8 and index['layout'] == 'TC'
  stem = videos[0].rsplit('/', 1)[1][:-4]
  features, probs = np.load(out / f'{stem}.npy'), np.load(out / 'probabilities' / f'{stem}.npy')
  num_frames = decode.read_frame_count(videos[0])
  assert len(features) == len(extract.snippet_starts(num_frames, 4, 8)) == index['videos'][stem]['num_snippets']
  # Snippet 1 is frames 4, 6, 8, 10: its logits are the head applied to its feature.
  _, model, params, _, _ = predict.restore_params(config, str(workdir))
  frames = decode.read_frames(videos[0], [4, 6, 8, 10], height=32, width=32)
  video = normalize(frames[None], config.data.mean, config.data.std)
  logits = model.apply(params, video)
  head = params['params']['head']
  np.testing.assert_allclose(features[1] @ head['kernel'] + head['bias'], logits[0], atol=1e-4)
  np.testing.assert_allclose(probs[1], jax.nn.softmax(logits[0]), atol=1e-5)


def test_short_and_broken_videos_are_skipped_with_their_reason(extracted):
  _, _, out, _ = extracted
  skipped = json.loads((out / 'features.json').read_text())['skipped']
  assert 'shorter than one snippet' in skipped['short']
  assert 'cannot be decoded' in skipped['broken']
  assert not (out / 'short.npy').exists()


def test_a_second_extraction_skips_what_is_written(extracted):
  config, workdir, out, videos = extracted
  stem = videos[0].rsplit('/', 1)[1][:-4]
  before = (out / f'{stem}.npy').stat().st_mtime_ns
  extract.extract(config, str(workdir), videos)
  assert (out / f'{stem}.npy').stat().st_mtime_ns == before
  assert set(json.loads((out / 'features.json').read_text())['videos']) >= {stem}
