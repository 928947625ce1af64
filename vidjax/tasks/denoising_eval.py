"""The denoising protocol: every frame of every sequence, fixed noise per sigma, PSNR / SSIM.

As FastDVDnet and RVRT evaluate: each sequence is read whole at its native
size; at each sigma the same seeded noise (`restoration.eval_noise`, a pure
function of (seed, sequence, sigma)) is added to every frame, unclipped;
each frame is denoised from the window of its neighbours, mirrored at the
sequence's ends as FastDVDnet does (frame -1 is frame 1), the output
clipped to [0, 1]; PSNR and SSIM are computed per frame, averaged per
sequence, then over sequences. The noisy input is scored the same way.

Frames are padded by reflection to multiples of 4 (the models downsample
twice) and the output cropped back. Every process reads every sequence and
feeds its rows of each global batch of windows, so the step's shapes are
those of one sequence (one compilation per frame size) and every process
ends with every number.
"""
from __future__ import annotations

import logging

import jax
import numpy as np
from jax.experimental import multihost_utils

from vidjax import parallel, progress
from vidjax.data import decode, decode_images
from vidjax.data.failures import DataError
from vidjax.data.records import Record
from vidjax.metrics import restoration

log = logging.getLogger(__name__)


def read_sequence(record: Record, max_frames: int = 0) -> np.ndarray:
  """uint8 [T, H, W, 3] of a video file or a record's frame files; `DecodeError` if unreadable."""
  files = record.annotation.get('frame_files')
  if files is None:
    frames = decode.read_frames(record.path)
  else:
    frames, _ = decode_images.read_clip(list(files), lambda n: np.arange(n))
  return frames[:max_frames] if max_frames else frames


def window_indices(num_frames: int, window: int) -> np.ndarray:
  """[N, window] frame indices, mirrored at the ends (-1 -> 1, N -> N - 2), clipped for
  sequences shorter than the mirror needs."""
  radius = window // 2
  idx = np.arange(num_frames)[:, None] + np.arange(-radius, radius + 1)[None, :]
  if num_frames > 1:
    idx = np.abs(idx)
    idx = np.where(idx > num_frames - 1, 2 * (num_frames - 1) - idx, idx)
  return np.clip(idx, 0, num_frames - 1)


def pad_to_multiple(frames: np.ndarray, multiple: int = 4) -> np.ndarray:
  """[..., H, W, C] reflected on the bottom and right up to multiples of `multiple`."""
  h, w = frames.shape[-3:-1]
  pad_h, pad_w = -h % multiple, -w % multiple
  if not pad_h and not pad_w:
    return frames
  pads = [(0, 0)] * (frames.ndim - 3) + [(0, pad_h), (0, pad_w), (0, 0)]
  mode = 'reflect' if pad_h < h and pad_w < w else 'edge'
  return np.pad(frames, pads, mode=mode)


def denoise_sequence(step, params, noisy: np.ndarray, sigma: float, *, window: int, blind: bool,
                     mesh, batch_size: int) -> np.ndarray:
  """float32 [N, H, W, 3] denoised frames of a noisy sequence (every process: all of them).

  Windows go `batch_size` (global) at a time, the last batch filled with repeats, so the
  step sees one shape per frame size."""
  n, h, w, _ = noisy.shape
  padded = pad_to_multiple(noisy)
  idx = window_indices(n, window)
  local = parallel.per_process_batch_size(batch_size, mesh)
  rows = local * jax.process_count()
  level = 0.0 if blind else sigma / 255.0
  noise_map = np.full((local, *padded.shape[1:3], 1), level, np.float32)
  out = []
  for start in range(0, n, rows):
    mine = start + jax.process_index() * local + np.arange(local)
    take = idx[np.minimum(mine, n - 1)]  # [L, window]; rows past the end repeat the last.
    batch = parallel.global_batch({'noisy': padded[take], 'map': noise_map}, mesh)
    denoised = step(params, batch['noisy'], batch['map'])
    out.append(np.asarray(multihost_utils.process_allgather(denoised, tiled=True)))
  return np.concatenate(out)[:n, :h, :w]


def frame_scores(clean: np.ndarray, restored: np.ndarray) -> dict[str, np.ndarray]:
  """{'psnr', 'ssim', 'mse'} [N] per frame; frames in [0, 1]."""
  return {'psnr': np.asarray(restoration.psnr(clean, restored)),
          'ssim': np.asarray(restoration.ssim(clean, restored)),
          'mse': np.mean((clean - restored) ** 2, axis=(1, 2, 3))}


def evaluate_sequences(step, params, records, config, mesh, *, sigmas, split: str) -> dict:
  """{'sigmas': {sigma: {psnr, ssim, noisy_psnr, noisy_ssim, per_sequence}}, 'loss',
  'num_sequences', 'num_failed', 'examples'}."""
  window, blind = config.data.num_frames, config.denoise.blind
  per_sigma = {s: {'model': [], 'noisy': [], 'ids': []} for s in sigmas}
  failed, short, examples = [], [], {}
  bar = progress.bar(len(records) * len(sigmas), f'evaluate {split}', config.train.progress_bar,
                     unit='sequence x sigma', leave=False)
  for index, record in enumerate(records):
    try:
      clean_u8 = read_sequence(record, config.denoise.eval_max_frames)
    except decode.DecodeError as e:
      failed.append(f'{record.path}: {e.reason}')
      bar.update(len(sigmas))
      continue
    if len(clean_u8) < window:
      short.append(record.video_id or record.path)
    clean = clean_u8.astype(np.float32) / 255.0
    for sigma in sigmas:
      noisy = clean + restoration.eval_noise(clean.shape, sigma, config.seed, index)
      denoised = denoise_sequence(step, params, noisy.astype(np.float32), float(sigma),
                                  window=window, blind=blind, mesh=mesh,
                                  batch_size=config.eval.batch_size)
      bucket = per_sigma[sigma]
      bucket['model'].append(frame_scores(clean, denoised))
      bucket['noisy'].append(frame_scores(clean, noisy))
      bucket['ids'].append(record.video_id or record.path)
      if sigma not in examples:
        middle = len(clean) // 2
        examples[sigma] = {'clean': clean[middle], 'noisy': noisy[middle],
                           'denoised': denoised[middle], 'video_id': bucket['ids'][-1]}
      bar.update(1)
  bar.close()
  if failed:
    log.warning('%s: %d unreadable sequence(s) left out, e.g. %s', split, len(failed), failed[0])
  if short:
    log.warning('%s: %d sequence(s) shorter than the %d-frame window, mirrored at the edges: '
                '%s', split, len(short), window, ', '.join(short[:3]))
  if not per_sigma[sigmas[0]]['ids']:
    raise DataError(f"no sequence of the '{split}' split could be read, e.g. "
                    f"{failed[0] if failed else 'none listed'}")
  result = {'sigmas': {}, 'num_sequences': len(per_sigma[sigmas[0]]['ids']),
            'num_failed': len(failed), 'num_short': len(short), 'examples': examples}
  losses = []
  for sigma, bucket in per_sigma.items():
    summary = {}
    for who, prefix in (('model', ''), ('noisy', 'noisy_')):
      for metric in ('psnr', 'ssim'):
        values = [s[metric] for s in bucket[who]]
        per_sequence = [float(np.mean(v)) for v in values]
        summary[prefix + metric] = float(np.mean(per_sequence))
        summary[f'{prefix}{metric}_per_sequence'] = dict(zip(bucket['ids'], per_sequence))
    losses.append(float(np.mean([np.mean(s['mse']) for s in bucket['model']])))
    result['sigmas'][int(sigma) if float(sigma).is_integer() else float(sigma)] = summary
  result['loss'] = float(np.mean(losses))  # Per-pixel MSE, the training unit: lower is better.
  return result

