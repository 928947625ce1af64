"""`--mode extract`: a trained video classifier -> snippet features of untrimmed videos.

  python -m vidjax.main --config configs/untrimmed_backbone.py --workdir runs/backbone \
      --mode extract --config.extract.out_dir=runs/features

Every video of `extract.dataset`'s splits (or each `--video`) is cut into
snippets: snippet i is the classifier's clip (data.num_frames frames,
data.frame_stride apart) starting at frame i * extract.stride, so it covers
a window of num_frames * frame_stride frames. Its feature is what the
classifier's `head` layer reads (the pooled representation any family
builds before its logits); its class probabilities are kept too, for the
sliding-window baseline. Written, per video, as in ActionFormer's layout:

  OUT/<video_id>.npy                float32 [T, C]
  OUT/probabilities/<video_id>.npy  float32 [T, K] the classifier's softmax
  OUT/features.json                 stride, window, the classifier's classes and
                                    checkpoint, each video's fps / frames / snippets

Snippets are batched and sharded over this process's devices on the `data`
axis, like the train step; with many processes each takes every P-th video
(inference needs no collective), and process 0 merges their indexes. A video already written is skipped, so a stopped
extraction goes on where it stopped. A video that cannot be decoded, or is
shorter than one snippet, is one line in the log and in features.json's
'skipped', never a stop.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import pathlib

import flax.linen as nn
import jax
import numpy as np

from vidjax import parallel, predict, progress
from vidjax.data import decode, registry
from vidjax.errors import UserError
from vidjax.tasks.classification import normalize

log = logging.getLogger(__name__)


def features_and_probabilities(params, video, *, model, mean, std):
  """uint8 [B, T, H, W, C] -> (the head's input [B, D], softmax [B, K]); pure."""
  captured = {}

  def grab(next_fn, args, kwargs, context):
    if context.module.name == 'head' and context.method_name == '__call__':
      captured['features'] = args[0]
    return next_fn(*args, **kwargs)

  with nn.intercept_methods(grab):
    logits = model.apply(params, normalize(video, mean, std), train=False)
  features = captured['features']
  b = video.shape[0]
  if features.shape[0] != b:  # Per-frame heads (single_frame): average the frames.
    features = features.reshape(b, -1, features.shape[-1]).mean(axis=1)
  return features.astype(np.float32), jax.nn.softmax(logits, axis=-1)


def snippet_starts(num_frames: int, stride: int, window: int) -> np.ndarray:
  """First frame of each snippet that fits wholly in the video."""
  if num_frames < window:
    return np.zeros((0,), np.int64)
  return np.arange(0, num_frames - window + 1, stride)


def _videos(config, paths) -> list[tuple[str, str, float | None]]:
  """(video_id, path, fps from the annotations) of every video to extract."""
  ex = config.extract
  if paths:
    for path in paths:
      if not os.path.isfile(path):
        raise UserError(f"--video '{path}' does not exist")
    return [(pathlib.Path(p).stem, p, None) for p in paths]
  data = config.data.copy_and_resolve_references()
  data.dataset = ex.dataset or data.dataset
  found = {}
  for split in ex.splits:
    for record in registry.load_split(data, split, config.seed).records:
      if record.path:
        found.setdefault(record.video_id, (record.video_id, record.path,
                                           record.annotation.get('fps')))
  if not found:
    raise UserError(f"extract.dataset '{data.dataset}' lists no video files in splits "
                    f"{list(ex.splits)}; set extract.dataset or pass --video")
  return sorted(found.values())


def video_fps(path: str, fallback: float | None = None) -> float:
  if fallback:
    return float(fallback)
  import av  # The container's own rate; decord's is the same for constant-rate files.
  with av.open(path) as container:
    return float(container.streams.video[0].average_rate or 30.0)


class Extractor:
  """A restored classifier that turns one video into (features [T, D], probabilities [T, K]).

  Used by `extract` over a dataset and by the localization task's
  `--mode predict` on a new video. Runs on this process's devices only.
  """

  def __init__(self, config, workdir: str):
    self.config = config
    data = config.data
    self.task, model, params, _, self.what = predict.restore_params(config, workdir)
    self.mesh = jax.sharding.Mesh(np.asarray(jax.local_devices()), (parallel.DATA_AXIS,))
    replicated = jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec())
    self.params = jax.device_put(
        jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), params), replicated)
    self.window = data.num_frames * data.frame_stride
    self.stride = config.extract.stride
    self.batch = config.extract.batch_size
    if self.batch % self.mesh.size:
      raise UserError(f'extract.batch_size {self.batch} is not a multiple of the '
                      f'{self.mesh.size} local devices')
    self.step = jax.jit(functools.partial(features_and_probabilities, model=model,
                                          mean=tuple(data.mean), std=tuple(data.std)))

  def __call__(self, path: str, num_frames: int | None = None):
    """Raises DecodeError, or ValueError for a video shorter than one snippet."""
    data = self.config.data
    num_frames = num_frames or decode.read_frame_count(path)
    starts = snippet_starts(num_frames, self.stride, self.window)
    if not len(starts):
      raise ValueError(f'{num_frames} frames, shorter than one snippet ({self.window} frames)')
    frames = decode.read_frames(path, height=data.height, width=data.width)
    offsets = np.arange(data.num_frames) * data.frame_stride
    feats, probs = [], []
    for first in range(0, len(starts), self.batch):
      chunk = starts[first:first + self.batch]
      clips = frames[np.minimum(chunk[:, None] + offsets[None], len(frames) - 1)]
      padded = np.zeros((self.batch, *clips.shape[1:]), np.uint8)
      padded[:len(clips)] = clips
      f, p = self.step(self.params, jax.device_put(padded, parallel.batch_sharding(self.mesh)))
      feats.append(np.asarray(f)[:len(chunk)])
      probs.append(np.asarray(p)[:len(chunk)])
    return np.concatenate(feats), np.concatenate(probs)


def extract(config, workdir: str, videos: list[str] | None = None) -> pathlib.Path:
  """Writes the features of every video (see the module docstring); returns the folder."""
  ex, data = config.extract, config.data
  if not ex.out_dir:
    raise UserError('set --config.extract.out_dir=DIR, where the features go')
  out = pathlib.Path(ex.out_dir)
  (out / 'probabilities').mkdir(parents=True, exist_ok=True)
  extractor = Extractor(config, workdir)
  index_path = out / 'features.json'
  index = json.loads(index_path.read_text()) if index_path.exists() else {}
  written, skipped = index.get('videos', {}), dict(index.get('skipped', {}))
  todo = [v for v in _videos(config, videos) if not (out / f'{v[0]}.npy').exists()]
  mine = todo[jax.process_index()::jax.process_count()]
  # Counts a video once its body ends: the extractor's results are on the host by then.
  for video_id, path, fps in progress.track(mine, 'extract', config.train.progress_bar):
    try:
      num_frames = decode.read_frame_count(path)
      features, probabilities = extractor(path, num_frames)
    except decode.DecodeError as e:
      skipped[video_id] = f'cannot be decoded: {e.reason}'
    except ValueError as e:
      skipped[video_id] = str(e)
    if video_id in skipped:
      log.warning('%s: %s; skipped', path, skipped[video_id])
      continue
    _save(out / f'{video_id}.npy', features)
    _save(out / 'probabilities' / f'{video_id}.npy', probabilities)
    written[video_id] = {'fps': video_fps(path, fps), 'num_frames': int(num_frames),
                         'num_snippets': int(len(features))}
  part = out / f'features.part{jax.process_index()}.json'
  part.write_text(json.dumps({'videos': written, 'skipped': skipped}))
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices('vidjax extract: parts written')
  if parallel.is_main_process():
    for p in sorted(out.glob('features.part*.json')):
      found = json.loads(p.read_text())
      written.update(found['videos'])
      skipped.update(found['skipped'])
      p.unlink()
    for video_id in written:
      skipped.pop(video_id, None)
    index_path.write_text(json.dumps({
        'stride': ex.stride, 'window': extractor.window, 'layout': 'TC',
        'classifier': {'model': config.model.name, 'workdir': str(workdir),
                       'checkpoint': extractor.what,
                       'class_names': list(extractor.task.class_names),
                       'num_frames': data.num_frames, 'frame_stride': data.frame_stride},
        'videos': written, 'skipped': skipped}, indent=1))
    print(f'features of {len(written)} videos in {out} ({len(skipped)} skipped)', flush=True)
  if skipped:
    log.warning('%d videos skipped (see %s)', len(skipped), index_path)
  return out


def _save(path: pathlib.Path, array: np.ndarray) -> None:
  """Whole or not at all: a stopped extraction never leaves a half-written file to skip."""
  tmp = path.with_suffix('.tmp.npy')
  np.save(tmp, array)
  os.replace(tmp, path)
