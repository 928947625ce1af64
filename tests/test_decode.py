"""Tests for vidjax.data.decode: right frames, a DecodeError per bad file."""
import pathlib
import pickle
import threading
import time

import numpy as np
import pytest

from vidjax.data import decode
from vidjax.data import testing
from vidjax.data.decode import DecodeError

NUM_FRAMES = 16


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
  """A few encoded videos shared by the tests: encoding dominates run time."""
  root = tmp_path_factory.mktemp('videos')
  paths = {}
  paths['mp4'] = testing.write_video(
      str(root / 'clip.mp4'), testing.fake_frames(NUM_FRAMES, 32, 32))
  paths['mkv'] = testing.write_video(
      str(root / 'noisy.mkv'),
      testing.fake_frames(48, 64, 64, noise_seed=0))
  paths['noisy_mp4'] = testing.write_video(
      str(root / 'noisy.mp4'), testing.fake_frames(48, 64, 64, noise_seed=0))
  paths['faststart'] = testing.write_video(
      str(root / 'faststart.mp4'),
      testing.fake_frames(48, 64, 64, noise_seed=0),
      container_options={'movflags': 'faststart'})
  return paths


def _damaged(src: str, dst: str, edit) -> str:
  with open(src, 'rb') as f:
    data = bytearray(f.read())
  with open(dst, 'wb') as f:
    f.write(bytes(edit(data)))
  return dst


def _truncated(src, dst):
  return _damaged(src, dst, lambda d: d[:len(d) // 2])


# ------------------------------------------------------------------ good files

def test_reads_requested_frames_in_requested_order(videos):
  wanted = [0, 5, 3, 3, 15]
  frames = decode.read_frames(videos['mp4'], wanted)
  assert frames.shape == (5, 32, 32, 3) and frames.dtype == np.uint8
  np.testing.assert_array_equal(
      testing.nearest_frames(frames, NUM_FRAMES), wanted)


def test_reads_all_frames_without_indices(videos):
  frames = decode.read_frames(videos['mp4'])
  assert decode.read_frame_count(videos['mp4']) == NUM_FRAMES
  np.testing.assert_array_equal(
      testing.nearest_frames(frames, NUM_FRAMES), np.arange(NUM_FRAMES))


@pytest.mark.parametrize('height,width', [(24, 40), (48, 48)])
def test_scales_frames(videos, height, width):
  # 48 wide is a size decord's own scaler rejects; decode.py then scales
  # the full-size frames itself.
  frames = decode.read_frames(videos['mp4'], [2, 9], height=height,
                              width=width, num_threads=2)
  assert frames.shape == (2, height, width, 3)
  np.testing.assert_array_equal(
      testing.nearest_frames(frames, NUM_FRAMES), [2, 9])


def test_bad_arguments_are_value_errors(videos):
  with pytest.raises(ValueError, match='both height and width'):
    decode.read_frames(videos['mp4'], [0], height=16)
  with pytest.raises(ValueError, match='negative'):
    decode.read_frames(videos['mp4'], [-1])


def test_decode_error_survives_pickling():
  # Grain workers send exceptions to the main process by pickling them.
  error = pickle.loads(pickle.dumps(DecodeError('a.mp4', 'empty file')))
  assert (error.path, error.reason) == ('a.mp4', 'empty file')


# ------------------------------------------------------------------- bad files

def test_missing_file(tmp_path):
  with pytest.raises(DecodeError, match='file not found'):
    decode.read_frames(str(tmp_path / 'nope.mp4'), [0])
  with pytest.raises(DecodeError, match='file not found'):
    decode.read_frame_count(str(tmp_path / 'nope.mp4'))


def test_empty_file(tmp_path):
  path = tmp_path / 'empty.mp4'
  path.write_bytes(b'')
  with pytest.raises(DecodeError, match='empty file'):
    decode.read_frames(str(path), [0])


def test_garbage_bytes(tmp_path):
  path = tmp_path / 'garbage.mp4'
  path.write_bytes(np.random.default_rng(0).bytes(5000))
  with pytest.raises(DecodeError, match='cannot open'):
    decode.read_frames(str(path), [0])
  with pytest.raises(DecodeError, match='cannot open'):
    decode.read_frame_count(str(path))


def test_a_file_decord_cannot_open_prints_its_messages_once(videos, tmp_path, capfd):
  """decord's and ffmpeg's C++ lines about a bad file print on the first read only;
  later reads (the next epochs) fail the same way, silently; a replaced file is read."""
  path = tmp_path / 'garbage.mp4'
  path.write_bytes(np.random.default_rng(1).bytes(5000))
  reasons = []
  for _ in range(3):
    with pytest.raises(DecodeError) as error:
      decode.read_frames(str(path), [0])
    reasons.append(error.value.reason)
    printed = capfd.readouterr().err
    if len(reasons) == 1:
      assert 'ERROR opening' in printed
    else:
      assert printed == ''
  assert len(set(reasons)) == 1 and 'cannot open' in reasons[0]
  path.write_bytes(pathlib.Path(videos['mp4']).read_bytes())
  assert decode.read_frames(str(path), [0, 3]).shape == (2, 32, 32, 3)


def test_truncated_mp4_without_index(videos, tmp_path):
  # The mp4 muxer writes its index (moov) last, so half a file has none.
  path = _truncated(videos['noisy_mp4'], str(tmp_path / 'cut.mp4'))
  with pytest.raises(DecodeError, match='truncated mp4'):
    decode.read_frames(path, [0])


def test_truncated_mkv_reads_up_to_the_cut(videos, tmp_path):
  path = _truncated(videos['mkv'], str(tmp_path / 'cut.mkv'))
  count = decode.read_frame_count(path)
  assert 0 < count < 48
  frames = decode.read_frames(path, [0, count - 1], timeout_s=30)
  np.testing.assert_array_equal(testing.nearest_frames(frames, 48),
                                [0, count - 1])
  with pytest.raises(DecodeError, match='past decodable end'):
    decode.read_frames(path, [0, 47], timeout_s=30)


def test_truncated_faststart_mp4_falls_back_to_pyav(videos, tmp_path):
  # With the index first, decord refuses the cut file outright; PyAV decodes
  # the frames before the cut and reports the first one it cannot reach.
  path = _truncated(videos['faststart'], str(tmp_path / 'cut.mp4'))
  frames = decode.read_frames(path, [3, 0], timeout_s=30)
  np.testing.assert_array_equal(testing.nearest_frames(frames, 48), [3, 0])
  with pytest.raises(DecodeError, match='frame 47 past decodable end'):
    decode.read_frames(path, [47], timeout_s=30)


def _damage_packet(src: str, dst: str, packet: int, framing: bool) -> str:
  """Overwrites a packet's 4-byte NAL length (framing) or its picture data."""
  pos, size = testing.packet_spans(src)[packet]
  def edit(data):
    if framing:
      data[pos:pos + 4] = b'\xff' * 4
    else:
      end = pos + size - 2
      data[pos + size // 2:end] = np.random.default_rng(0).bytes(
          end - pos - size // 2)
    return data
  return _damaged(src, dst, edit)


def test_corrupt_framing_in_the_middle_stops_decoding_there(videos,
                                                            tmp_path):
  path = _damage_packet(videos['noisy_mp4'], str(tmp_path / 'bad.mp4'), 20,
                        framing=True)
  # Frames before the damage read, every time: decord alone fails this read
  # or not depending on how far its decoding thread had read ahead.
  for _ in range(5):
    frames = decode.read_frames(path, [0, 5])
    np.testing.assert_array_equal(testing.nearest_frames(frames, 48), [0, 5])
  with pytest.raises(DecodeError, match='frame 30 past decodable end'):
    decode.read_frames(path, [0, 30], height=32, width=32)
  with pytest.raises(DecodeError, match='frame 47 past decodable end'):
    decode.read_frames(path)  # All frames.
  with pytest.raises(DecodeError, match='corrupt data'):
    decode.check_video(path)


def test_corrupt_picture_data_is_concealed_but_check_video_finds_it(
    videos, tmp_path):
  """decord returns wrong frames without raising; `check_video` catches it."""
  path = _damage_packet(videos['noisy_mp4'], str(tmp_path / 'bad.mp4'), 20,
                        framing=False)
  clean = decode.read_frames(videos['noisy_mp4'])
  damaged = decode.read_frames(path)  # No error, but wrong frames:
  assert damaged.shape == clean.shape
  wrong = np.abs(damaged.astype(int) - clean.astype(int)).mean(
      axis=(1, 2, 3)) > 2  # [48]
  # Right before the damaged packet (frame ~20), wrong after it up to the end
  # (the next key frame would be past 48).
  assert not wrong[:16].any() and wrong[24:].all()
  assert decode.check_video(videos['noisy_mp4']) == 48
  with pytest.raises(DecodeError, match='corrupt data'):
    decode.check_video(path)


def test_unsupported_codec(videos, tmp_path):
  # A codec tag no decoder knows: neither decord nor PyAV can read it.
  path = _damaged(videos['mp4'], str(tmp_path / 'unknown.mp4'),
                  lambda d: d.replace(b'avc1', b'qqqq'))
  with pytest.raises(DecodeError, match='unsupported codec'):
    decode.read_frames(path, [0])


@pytest.mark.skipif(testing.av1_encoder() is None,
                    reason='this PyAV build has no AV1 encoder')
def test_av1_is_read_through_pyav(tmp_path):
  import decord
  path = testing.write_video(str(tmp_path / 'av1.mp4'),
                             testing.fake_frames(NUM_FRAMES, 32, 32),
                             codec=testing.av1_encoder())
  with pytest.raises(Exception):  # The reason the fallback exists.
    decord.VideoReader(path)
  assert decode.read_frame_count(path) == NUM_FRAMES
  frames = decode.read_frames(path, [7, 2, 2], height=16, width=24)
  assert frames.shape == (3, 16, 24, 3)
  np.testing.assert_array_equal(
      testing.nearest_frames(frames, NUM_FRAMES), [7, 2, 2])
  with pytest.raises(DecodeError, match='past decodable end'):
    decode.read_frames(path, [NUM_FRAMES])


# ------------------------------------------------------------------- timeouts

def test_timeout_gives_up_on_a_stuck_decode(videos, monkeypatch):
  release = threading.Event()
  monkeypatch.setattr(decode, '_read', lambda *args: release.wait(10))
  begin = time.monotonic()
  with pytest.raises(DecodeError, match='timed out after 0.2s'):
    decode.read_frames(videos['mp4'], [0], timeout_s=0.2)
  assert time.monotonic() - begin < 2
  release.set()  # Lets the abandoned thread finish.


def test_timeout_returns_frames_and_errors_of_the_decode(videos, tmp_path):
  frames = decode.read_frames(videos['mp4'], [1, 4], timeout_s=30)
  np.testing.assert_array_equal(frames, decode.read_frames(videos['mp4'],
                                                           [1, 4]))
  with pytest.raises(DecodeError, match='file not found'):
    decode.read_frames(str(tmp_path / 'nope.mp4'), timeout_s=30)
