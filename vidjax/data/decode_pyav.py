"""PyAV: the fallback decoder, the header probe and the strict check.

decode.py turns to PyAV when decord cannot open a file or fails to decode it.
decord's bundled ffmpeg has no AV1 decoder ("cannot find video stream with
wanted index: -1"), and it refuses mp4s whose tail is cut even when most
frames are intact. PyAV decodes from the start up to the last wanted frame:
slower for long videos, but it only serves the files decord rejects, and it
stops at the last wanted frame, so damage after it never fails the read.

PyAV also probes the native frame size (for `read_clip(short_side=...)`) and
runs `check_video`'s strict full decode.
"""
from __future__ import annotations

import numpy as np

from vidjax.data.decode_checks import (DecodeError, check_file, first_line,
                                       mp4_without_moov)


def open_stream(path: str):
  """Returns (container, video stream) or raises DecodeError."""
  import av
  try:
    container = av.open(path)
  except Exception as e:
    if mp4_without_moov(path):
      raise DecodeError(path, 'truncated mp4: no moov box') from None
    raise DecodeError(path, f'cannot open: {first_line(e)}') from None
  if not container.streams.video:
    container.close()
    raise DecodeError(path, 'no video stream')
  stream = container.streams.video[0]
  if stream.codec_context is None:
    container.close()
    raise DecodeError(path, 'unsupported codec: no decoder for this stream')
  return container, stream


def count_packets(path: str) -> int:
  """Counts video packets: decord's notion of length, read without decoding."""
  container, stream = open_stream(path)
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


def read_upto(path: str, indices: np.ndarray | None,
              num_threads: int) -> np.ndarray:
  """Decodes from the start up to max(indices); returns [N, H, W, 3] uint8."""
  container, stream = open_stream(path)
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
    failure = first_line(e)
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


def resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bilinear swscale resize of [N, H, W, 3] uint8 frames."""
  import av
  out = np.empty((len(frames), height, width, 3), np.uint8)
  for i, f in enumerate(frames):
    frame = av.VideoFrame.from_ndarray(f, format='rgb24')
    out[i] = frame.reformat(width=width, height=height,
                            interpolation='BILINEAR').to_ndarray()
  return out


def read(path: str, indices: np.ndarray | None, height: int | None,
         width: int | None, num_threads: int) -> np.ndarray:
  """`read_upto`, scaled to (height, width) when given: [N, H, W, 3] uint8."""
  frames = read_upto(path, indices, num_threads)
  if height and (frames.shape[1], frames.shape[2]) != (height, width):
    frames = resize(frames, height, width)
  return frames


# Native (height, width) of the files probed in this process; see native_size.
_NATIVE_SIZE: dict[str, tuple[int, int]] = {}
_NATIVE_SIZE_LIMIT = 1 << 16  # Entries kept before the cache is emptied.


def native_size(path: str) -> tuple[int, int]:
  """(height, width) from the container header, remembered per process."""
  size = _NATIVE_SIZE.get(path)
  if size is None:
    container, stream = open_stream(path)
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


def strict_count(path: str) -> int:
  """Decodes every frame, raising on damage ffmpeg would otherwise conceal."""
  import av
  check_file(path)
  container, stream = open_stream(path)
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
        path, f'corrupt data after frame {count}: {first_line(e)}') from None
  finally:
    container.close()
  if count == 0:
    raise DecodeError(path, 'no decodable frames')
  return count
