"""Frames stored as image files read like a video's: sampled, resized, failures as DecodeError."""
import numpy as np
import pytest
from PIL import Image

from vidjax.data import decode_images
from vidjax.data.decode_checks import DecodeError

COLOURS = ((200, 10, 10), (10, 200, 10), (10, 10, 200))


@pytest.fixture
def frames(tmp_path):
  files = []
  for i, colour in enumerate(COLOURS):
    files.append(str(tmp_path / f'{i:06d}.png'))
    Image.new('RGB', (20, 10), colour).save(files[-1])
  return files


def test_sampled_frames_in_the_asked_shape_and_order(frames):
  seen = []
  clip, indices = decode_images.read_clip(frames, lambda n: seen.append(n) or [[2, 0], [2, 2]],
                                          height=8, width=16)
  assert seen == [3] and clip.shape == (2, 2, 8, 16, 3) and clip.dtype == np.uint8
  assert indices.tolist() == [[2, 0], [2, 2]]
  np.testing.assert_allclose(clip[0, 0, 4, 8], COLOURS[2], atol=3)
  np.testing.assert_allclose(clip[0, 1, 4, 8], COLOURS[0], atol=3)


def test_native_and_short_side_sizes(frames):
  native, _ = decode_images.read_clip(frames, lambda n: [1])
  assert native.shape == (1, 10, 20, 3)
  short, _ = decode_images.read_clip(frames, lambda n: [1], short_side=5)
  assert short.shape == (1, 5, 10, 3)


def test_missing_or_damaged_images_are_decode_errors(frames, tmp_path):
  with pytest.raises(DecodeError, match='file not found'):
    decode_images.read_clip(frames + [str(tmp_path / 'gone.png')], lambda n: [n - 1])
  (tmp_path / 'bad.png').write_text('not an image')
  with pytest.raises(DecodeError, match='not a readable image'):
    decode_images.read_clip([str(tmp_path / 'bad.png')], lambda n: [0])
  with pytest.raises(ValueError, match='bad indices'):
    decode_images.read_clip(frames, lambda n: [n])
