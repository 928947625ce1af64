"""Reads frames out of video files.

Every failure (missing, empty, truncated, garbage, unsupported codec, a frame
past the decodable end, a timeout) becomes a `DecodeError` carrying the path
and a short reason, so callers can skip the video and count it instead of
crashing a training run. `decord.DECORDError` is not a `RuntimeError`, hence
the broad `except Exception` around every decoder call.

`read_clip` is what the input pipeline calls: it opens a file once, counts
its frames, asks a sampling function which to read, and reads them, where
`read_frame_count` followed by `read_frames` would open it twice.

Two decoders, one result:
  * decord first: it seeks to the wanted frames and scales in ffmpeg, which is
    what makes clip sampling from long videos cheap.
  * PyAV when decord cannot open the file or fails to decode it. decord's
    bundled ffmpeg has no AV1 decoder ("cannot find video stream with wanted
    index: -1"), and it refuses mp4s whose tail is cut even when most frames
    are intact. The PyAV path decodes from the start up to the last wanted
    frame; slower for long videos, but it only serves the files decord
    rejects.

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

decord and memory: a VideoReader keeps decoding ahead after a seek, and
long-lived readers have been reported to grow without bound (dmlc/decord#157,
#208). Every reader here lives for one call only: it is rewound with `seek(0)`
(the workaround reported in those issues) and `del`-ed before returning. With
that, 120 reads of 16 frames from a 256x340 H.264 video left the resident
size flat (about 60 MiB) with or without the `seek(0)`, which costs nothing
measurable; it stays as cheap insurance for long videos.

Frame sizes: decord's own scaler fails for some output widths (with this
build, e.g. 16, 24, 48 or 72 pixels wide: "DECORDArrayCopyFromTo: The size must
exactly match"). When a scaled read fails, the frames are read at full size and
scaled with ffmpeg's swscale through PyAV instead, and the size is remembered
for the life of the process so later reads skip the failing attempt.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Sequence, TypeVar

import numpy as np

_T = TypeVar('_T')

# (height, width) pairs decord's scaler failed on in this process; see above.
_DECORD_CANNOT_SCALE: set[tuple[int, int]] = set()


class DecodeError(Exception):
  """A video that cannot be read; `reason` is one short line."""

  def __init__(self, path: str, reason: str):
    super().__init__(f'{path}: {reason}')
    self.path = path
    self.reason = reason

  def __reduce__(self):
    # Exceptions pickle as cls(*self.args); ours has two arguments, not one.
    # Needed to send a DecodeError from a grain worker back to the main process.
    return (DecodeError, (self.path, self.reason))


def _first_line(e: BaseException) -> str:
  strerror = getattr(e, 'strerror', None)  # PyAV: without errno and path.
  lines = str(strerror or e).strip().splitlines()
  return (lines[0] if lines else type(e).__name__)[:200]


def _mp4_without_moov(path: str) -> bool:
  """True for an ISO-BMFF (mp4/mov) file whose top-level boxes hold no moov.

  The usual shape of a half-downloaded mp4: the frame data (mdat) comes first
  and the index (moov) that is written last never arrived.
  """
  size = os.path.getsize(path)
  with open(path, 'rb') as f:
    head = f.read(12)
    if head[4:8] != b'ftyp':
      return False
    offset = 0
    while offset + 8 <= size:
      f.seek(offset)
      box = f.read(16)
      box_size, box_type = int.from_bytes(box[:4], 'big'), box[4:8]
      if box_type == b'moov':
        return False
      if box_size == 1:  # 64-bit size follows the type.
        box_size = int.from_bytes(box[8:16], 'big')
      if box_size < 8:  # 0 means "to the end of the file".
        break
      offset += box_size
  return True


def _check_file(path: str) -> None:
  if not os.path.exists(path):
    raise DecodeError(path, 'file not found')
  if os.path.getsize(path) == 0:
    raise DecodeError(path, 'empty file')


def _call_with_timeout(path: str, timeout_s: float | None,
                       fn: Callable[..., _T], *args) -> _T:
  """Runs `fn(*args)`, giving up waiting after `timeout_s` seconds.

  The call runs in a daemon thread and the caller stops waiting for it. A
  decoder stuck inside C code cannot be interrupted from Python (neither by a
  thread nor by `signal.alarm`, whose handler only runs between bytecodes), so
  on timeout the thread lingers until the decoder returns, holding its memory
  and one core; being a daemon, it never blocks the process from exiting. This
  works in any thread of any process, grain workers included. A worker that
  times out often should be recycled.
  """
  if timeout_s is None:
    return fn(*args)
  result = {}

  def target():
    try:
      result['value'] = fn(*args)
    except BaseException as e:  # Re-raised in the caller's thread below.
      result['error'] = e

  thread = threading.Thread(target=target, name='vidjax-decode', daemon=True)
  thread.start()
  thread.join(timeout_s)
  if thread.is_alive():
    raise DecodeError(path, f'timed out after {timeout_s:g}s')
  if 'error' in result:
    raise result['error']
  return result['value']


def _check_indices(path: str, indices: np.ndarray, num_frames: int) -> None:
  if num_frames <= 0:
    raise DecodeError(path, 'no frames')
  if indices.size and indices.max() >= num_frames:
    raise DecodeError(
        path, f'frame {int(indices.max())} past decodable end '
        f'({num_frames} frames)')


# ---------------------------------------------------------------------- decord

def _decord_open(path: str, height: int | None, width: int | None,
                 num_threads: int):
  import decord  # Imported lazily: worker processes pay for it only once used.
  return decord.VideoReader(path, width=width or -1, height=height or -1,
                            num_threads=num_threads)


def _decord_close(reader) -> None:
  try:
    reader.seek(0)  # Stops decoding ahead; see the module docstring.
  except Exception:
    pass


def _decord_batch(path: str, indices: np.ndarray, height: int | None,
                  width: int | None, num_threads: int) -> np.ndarray:
  reader = _decord_open(path, height, width, num_threads)
  try:
    _check_indices(path, indices, len(reader))
    return reader.get_batch(indices).asnumpy()  # [N, H, W, 3] uint8
  finally:
    _decord_close(reader)
    del reader


# ------------------------------------------------------------------------ PyAV

def _pyav_open(path: str):
  """Returns (container, video stream) or raises DecodeError."""
  import av
  try:
    container = av.open(path)
  except Exception as e:
    if _mp4_without_moov(path):
      raise DecodeError(path, 'truncated mp4: no moov box') from None
    raise DecodeError(path, f'cannot open: {_first_line(e)}') from None
  if not container.streams.video:
    container.close()
    raise DecodeError(path, 'no video stream')
  stream = container.streams.video[0]
  if stream.codec_context is None:
    container.close()
    raise DecodeError(path, 'unsupported codec: no decoder for this stream')
  return container, stream


def _pyav_count(path: str) -> int:
  """Counts video packets: decord's notion of length, read without decoding."""
  container, stream = _pyav_open(path)
  count = 0
  try:
    for packet in container.demux(stream):
      if packet.size:
        count += 1
  except Exception:
    pass  # A cut file ends early; the packets before the cut still count.
  finally:
    container.close()
  return count


def _pyav_frames(path: str, indices: np.ndarray | None,
                 num_threads: int) -> np.ndarray:
  """Decodes from the start up to max(indices); returns [N, H, W, 3] uint8."""
  container, stream = _pyav_open(path)
  stream.codec_context.thread_count = num_threads
  wanted = None if indices is None else set(indices.tolist())
  last = None if indices is None else int(indices.max())
  got = {}
  count = 0
  failure = None
  try:
    for frame in container.decode(stream):
      if wanted is None or count in wanted:
        got[count] = frame.to_ndarray(format='rgb24')
      count += 1
      if last is not None and count > last:
        break
  except Exception as e:
    failure = _first_line(e)
  finally:
    container.close()
  if count == 0:
    raise DecodeError(path,
                      f'no decodable frames ({failure or "empty stream"})')
  if indices is None:
    if failure:
      raise DecodeError(path, f'decode failed after frame {count}: {failure}')
    indices = np.arange(count)
  elif last >= count:
    why = f' ({failure})' if failure else ''
    raise DecodeError(
        path, f'frame {last} past decodable end ({count} frames){why}')
  return np.stack([got[i] for i in indices.tolist()])


def _resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bilinear swscale resize of [N, H, W, 3] uint8 frames."""
  import av
  out = np.empty((len(frames), height, width, 3), np.uint8)
  for i, f in enumerate(frames):
    frame = av.VideoFrame.from_ndarray(f, format='rgb24')
    out[i] = frame.reformat(width=width, height=height,
                            interpolation='BILINEAR').to_ndarray()
  return out


# --------------------------------------------------------------------- reading

def _count(path: str) -> int:
  _check_file(path)
  try:
    reader = _decord_open(path, None, None, 1)
  except Exception:
    return _pyav_count(path)
  try:
    return len(reader)
  finally:
    del reader


def read_frame_count(path: str, *, timeout_s: float | None = None) -> int:
  """Number of frames, as counted from the container's packets.

  An upper bound for damaged files: `read_frames` raises `DecodeError` for a
  frame that is listed but cannot be decoded.
  """
  count = _call_with_timeout(path, timeout_s, _count, path)
  if count <= 0:
    raise DecodeError(path, 'no frames')
  return count


def _pyav_read(path: str, indices: np.ndarray | None, height: int | None,
               width: int | None, num_threads: int) -> np.ndarray:
  frames = _pyav_frames(path, indices, num_threads)
  if height and (frames.shape[1], frames.shape[2]) != (height, width):
    frames = _resize_frames(frames, height, width)
  return frames


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
  _check_file(path)
  scale_after = height is not None and (height, width) in _DECORD_CANNOT_SCALE
  try:
    reader = _decord_open(path, None if scale_after else height,
                          None if scale_after else width, num_threads)
  except Exception:
    # AV1, cut mp4s, garbage: PyAV reads what it can and explains the rest.
    if callable(indices):
      indices = _sampled(path, indices, _pyav_count(path))
    return _pyav_read(path, indices, height, width, num_threads)
  try:
    if callable(indices):
      indices = _sampled(path, indices, len(reader))
    if indices is None:
      indices = np.arange(len(reader))
    _check_indices(path, indices, len(reader))
    try:
      frames = reader.get_batch(indices).asnumpy()  # [N, H, W, 3] uint8
    except Exception:
      frames = None
  finally:
    _decord_close(reader)
    del reader
  if frames is not None:
    return _resize_frames(frames, height, width) if scale_after else frames
  if height and not scale_after:
    # Maybe decord's scaler (some sizes fail): try at full size.
    try:
      frames = _decord_batch(path, indices, None, None, num_threads)
    except Exception:
      frames = None
    if frames is not None:
      _DECORD_CANNOT_SCALE.add((height, width))
      return _resize_frames(frames, height, width)
  # Damaged data. decord's decoding thread reads ahead of the wanted frames,
  # so whether damage after them fails the read depends on timing; PyAV
  # stops at the last wanted frame and gives the same answer every time.
  return _pyav_read(path, indices, height, width, num_threads)


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
    timeout_s: give up after this long; see `_call_with_timeout` for what
      happens to the abandoned decode.

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
  return _call_with_timeout(path, timeout_s, _read, path, indices, height,
                            width, num_threads)


# Native (height, width) of the files probed in this process; see read_clip.
_NATIVE_SIZE: dict[str, tuple[int, int]] = {}
_NATIVE_SIZE_LIMIT = 1 << 16  # Entries kept before the cache is emptied.


def _native_size(path: str) -> tuple[int, int]:
  """(height, width) from the container header, read with PyAV."""
  size = _NATIVE_SIZE.get(path)
  if size is None:
    container, stream = _pyav_open(path)
    try:
      size = (stream.codec_context.height, stream.codec_context.width)
    finally:
      container.close()
    if not all(size):
      raise DecodeError(path, 'no frame size in the header')
    if len(_NATIVE_SIZE) >= _NATIVE_SIZE_LIMIT:
      _NATIVE_SIZE.clear()
    _NATIVE_SIZE[path] = size
  return size


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
  """(height, width) scaled so the shorter side is `short_side`, aspect kept."""
  if height <= width:
    return short_side, max(1, round(width * short_side / height))
  return max(1, round(height * short_side / width)), short_side


def _read_clip(path: str, pick: Callable[[int], np.ndarray],
               height: int | None, width: int | None, short_side: int | None,
               num_threads: int) -> np.ndarray:
  _check_file(path)
  if short_side:
    height, width = short_side_size(*_native_size(path), short_side)
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
      `_call_with_timeout`: an abandoned decode may call it late).
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

  frames = _call_with_timeout(path, timeout_s, _read_clip, path, pick, height,
                              width, short_side, num_threads)
  wanted, inverse = chosen['wanted'], chosen['inverse']
  if len(frames) != wanted.size or np.any(inverse != np.arange(wanted.size)):
    frames = frames[inverse]
  return frames.reshape(*wanted.shape, *frames.shape[1:]), wanted


def _check(path: str) -> int:
  import av
  _check_file(path)
  container, stream = _pyav_open(path)
  # Make the decoder raise on damage it would otherwise conceal.
  stream.codec_context.options = {'err_detect': 'crccheck+bitstream+explode'}
  count = 0
  try:
    for frame in container.decode(stream):
      if frame.is_corrupt:
        raise DecodeError(path, f'corrupt data at frame {count}')
      count += 1
  except DecodeError:
    raise
  except av.error.FFmpegError as e:
    raise DecodeError(
        path, f'corrupt data after frame {count}: {_first_line(e)}') from None
  finally:
    container.close()
  if count == 0:
    raise DecodeError(path, 'no decodable frames')
  return count


def check_video(path: str, *, timeout_s: float | None = None) -> int:
  """Decodes every frame strictly; returns the frame count or raises.

  Finds damage in the middle of the stream that `read_frames` silently
  conceals (see the module docstring). A full decode: meant for a one-off
  scan of a dataset, not for the training input path.
  """
  return _call_with_timeout(path, timeout_s, _check, path)
