"""Reads frames out of video files: the public entry of decoding.

Every failure (missing, empty, truncated, garbage, unsupported codec, a frame
past the decodable end, a timeout) becomes a `DecodeError` carrying the path
and a short reason, so callers can skip the video and count it instead of
crashing a training run. `decord.DECORDError` is not a `RuntimeError`, hence
the broad `except Exception` around every decoder call.

`read_clip` is what the input pipeline calls: it opens a file once, counts
its frames, asks a sampling function which to read, and reads them, where
`read_frame_count` followed by `read_frames` would open it twice.

Two decoders, one result:
  * decord first (decode_decord.py): it seeks to the wanted frames and scales
    in ffmpeg, which is what makes clip sampling from long videos cheap.
  * PyAV (decode_pyav.py) when decord cannot open the file or fails to decode
    it: AV1, mp4s whose tail is cut, damaged data.
The file checks, the timeout and `DecodeError` itself are in decode_checks.py.

Damage in the middle of a file goes one of two ways. Where it breaks the
stream's framing (an H.264 NAL length, a slice header), decoding stops there:
frames before the damage are returned and a frame after it raises. (decord
alone answers this at random: its decoding thread reads ahead of the wanted
frames and may or may not reach the damage before the read completes, so a
failed decord read is retried with PyAV, which stops at the last wanted frame.)
Where the damage only garbles picture data, ffmpeg conceals it (printing
"error while decoding MB ..." to stderr) and both decoders return wrong frames
from there to the next key frame without raising; decord's `fault_tol` option
does not see concealed frames either. `check_video` decodes the whole file
with PyAV's strict error detection and catches that case too, at the cost of
a full decode: run it once over a dataset, not per sample. Damage that
happens to parse as valid data (e.g. zeroed bytes in H.264 picture data) is
invisible to every decoder.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from vidjax.data import decode_decord, decode_pyav
from vidjax.data.decode_checks import (DecodeError, call_with_timeout,
                                       check_file, check_indices)

def _count(path: str) -> int:
  check_file(path)
  try:
    reader = decode_decord.open_reader(path, None, None, 1)
  except Exception:
    return decode_pyav.count_packets(path)
  try:
    return len(reader)
  finally:
    del reader


def read_frame_count(path: str, *, timeout_s: float | None = None) -> int:
  """Number of frames, as counted from the container's packets.

  An upper bound for damaged files: `read_frames` raises `DecodeError` for a
  frame that is listed but cannot be decoded.
  """
  count = call_with_timeout(path, timeout_s, _count, path)
  if count <= 0:
    raise DecodeError(path, 'no frames')
  return count


def _sampled(path: str, sample: Callable[[int], np.ndarray],
             num_frames: int) -> np.ndarray:
  """The frame indices `sample` picks for a video of `num_frames` frames."""
  if num_frames <= 0:
    raise DecodeError(path, 'no frames')
  indices = np.asarray(sample(num_frames), dtype=np.int64).reshape(-1)
  if indices.size == 0 or indices.min() < 0:
    raise ValueError(f'sample({num_frames}) gave bad indices {indices}')
  return indices


def _read(path: str, indices, height: int | None,
          width: int | None, num_threads: int) -> np.ndarray:
  """`indices`: an int64 array, None for all frames, or a callable that is
  given the frame count and returns the indices (one open of the file)."""
  check_file(path)
  scale_after = (height is not None
                 and (height, width) in decode_decord.CANNOT_SCALE)
  try:
    reader = decode_decord.open_reader(path, None if scale_after else height,
                                       None if scale_after else width,
                                       num_threads)
  except Exception:
    # AV1, cut mp4s, garbage: PyAV reads what it can and explains the rest.
    if callable(indices):
      indices = _sampled(path, indices, decode_pyav.count_packets(path))
    return decode_pyav.read(path, indices, height, width, num_threads)
  try:
    if callable(indices):
      indices = _sampled(path, indices, len(reader))
    if indices is None:
      indices = np.arange(len(reader))
    check_indices(path, indices, len(reader))
    try:
      frames = reader.get_batch(indices).asnumpy()  # [N, H, W, 3] uint8
    except Exception:
      frames = None
  finally:
    decode_decord.release(reader)
    del reader
  if frames is not None:
    return decode_pyav.resize(frames, height, width) if scale_after else frames
  if height and not scale_after:
    # Maybe decord's scaler (some sizes fail): try at full size.
    try:
      frames = decode_decord.read_batch(path, indices, None, None, num_threads)
    except Exception:
      frames = None
    if frames is not None:
      decode_decord.CANNOT_SCALE.add((height, width))
      return decode_pyav.resize(frames, height, width)
  # Damaged data. decord's decoding thread reads ahead of the wanted frames,
  # so whether damage after them fails the read depends on timing; PyAV
  # stops at the last wanted frame and gives the same answer every time.
  return decode_pyav.read(path, indices, height, width, num_threads)


def read_frames(path: str, indices: Sequence[int] | None = None, *,
                height: int | None = None, width: int | None = None,
                num_threads: int = 1,
                timeout_s: float | None = None) -> np.ndarray:
  """Returns uint8 frames [T, H, W, 3] in the order of `indices`.

  Args:
    path: a video file.
    indices: frame numbers (repeats and any order allowed); all when None.
    height, width: scale every frame to this size (both or neither).
    num_threads: decoder threads. decord's default of 0 means one per core,
      which oversubscribes a machine running one decoder per grain worker.
    timeout_s: give up after this long; see
      `decode_checks.call_with_timeout` for what happens to the abandoned
      decode.

  Raises:
    DecodeError: the file is missing, empty, not a readable video, or a wanted
      frame lies past its decodable end, or the timeout expired.
    ValueError: a bad argument (negative index, only one of height/width).
  """
  if (height is None) != (width is None):
    raise ValueError(f'give both height and width or neither, got '
                     f'height={height}, width={width}')
  if num_threads < 1:
    raise ValueError(f'num_threads must be >= 1, got {num_threads}')
  if indices is not None:
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size == 0:
      raise ValueError('indices is empty')
    if indices.min() < 0:
      raise ValueError(f'negative frame index {int(indices.min())}')
  return call_with_timeout(path, timeout_s, _read, path, indices, height,
                           width, num_threads)


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
  """(height, width) scaled so the shorter side is `short_side`, aspect kept."""
  if height <= width:
    return short_side, max(1, round(width * short_side / height))
  return max(1, round(height * short_side / width)), short_side


def _read_clip(path: str, pick: Callable[[int], np.ndarray],
               height: int | None, width: int | None, short_side: int | None,
               num_threads: int) -> np.ndarray:
  check_file(path)
  if short_side:
    height, width = short_side_size(*decode_pyav.native_size(path),
                                    short_side)
  return _read(path, pick, height, width, num_threads)


def read_clip(path: str, sample: Callable[[int], np.ndarray], *,
              height: int | None = None, width: int | None = None,
              short_side: int | None = None, num_threads: int = 1,
              timeout_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Opens a video once: counts its frames, samples indices, reads them.

  `read_frame_count` followed by `read_frames` opens the file twice (and
  decord indexes every packet on each open); this opens it once.

  Args:
    path: a video file.
    sample: called with the frame count (as `read_frame_count` gives it),
      returns int frame indices of any shape, e.g. [T] for one clip or
      [K, T] for K clips. Repeats are decoded once. It runs inside the
      timeout's thread: give it its own random generator (see
      `decode_checks.call_with_timeout`: an abandoned decode may call it late).
    height, width: scale every frame to this size (both or neither).
    short_side: instead, scale so the shorter side has this size, keeping the
      aspect ratio. The native size comes from a PyAV header probe (about as
      costly as opening the file with decord), remembered per process.
    num_threads, timeout_s: as in `read_frames`.

  Returns:
    (frames [*indices.shape, H, W, 3] uint8, indices int64).

  Raises:
    DecodeError: as `read_frames`.
  """
  if (height is None) != (width is None):
    raise ValueError(f'give both height and width or neither, got '
                     f'height={height}, width={width}')
  if short_side and height is not None:
    raise ValueError('give height and width, or short_side, not both')
  if num_threads < 1:
    raise ValueError(f'num_threads must be >= 1, got {num_threads}')
  chosen = {}

  def pick(num_frames: int) -> np.ndarray:
    wanted = np.asarray(sample(num_frames), dtype=np.int64)
    unique, inverse = np.unique(wanted, return_inverse=True)
    chosen['wanted'], chosen['inverse'] = wanted, inverse.reshape(-1)
    return unique  # Sorted: decord reads forward, never seeks back.

  frames = call_with_timeout(path, timeout_s, _read_clip, path, pick, height,
                             width, short_side, num_threads)
  wanted, inverse = chosen['wanted'], chosen['inverse']
  if len(frames) != wanted.size or np.any(inverse != np.arange(wanted.size)):
    frames = frames[inverse]
  return frames.reshape(*wanted.shape, *frames.shape[1:]), wanted


def check_video(path: str, *, timeout_s: float | None = None) -> int:
  """Decodes every frame strictly; returns the frame count or raises.

  Finds damage in the middle of the stream that `read_frames` silently
  conceals (see the module docstring). A full decode: meant for a one-off
  scan of a dataset, not for the training input path.
  """
  return call_with_timeout(path, timeout_s, decode_pyav.strict_count, path)
