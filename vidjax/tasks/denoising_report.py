"""What a denoising run tells its user: results.json, the console table, pictures, predict.

results.json and evaluation.json hold, per split and sigma, PSNR and SSIM of
the model and of the noisy input, and per sequence. `--mode predict` writes
each video's denoised frames as an mp4 and a PNG strip (noisy, denoised and,
when the noise was added here, clean).
"""
from __future__ import annotations

import functools
import pathlib

import jax
import numpy as np

from vidjax import parallel, report
from vidjax.data import decode
from vidjax.data.synthetic_actions import write_mp4
from vidjax.errors import UserError
from vidjax.metrics import restoration
from vidjax.tasks import denoising_eval
from vidjax.tasks import predict_failures as failures

PANELS = {'loss': ('train/loss', 'eval_periodic/loss'),
          'PSNR (dB)': ('train/psnr', 'eval_periodic/psnr_sigma30'),
          'learning rate': ('train/learning_rate',)}
STRIP_FRAMES = 4  # Frames of a predicted video in its PNG strip.


def split_fields(result: dict) -> dict:
  """One split's numbers, JSON-able: per sigma, the model's and the noisy input's."""
  return {'num_sequences': result['num_sequences'], 'num_failed': result['num_failed'],
          'num_shorter_than_window': result['num_short'], 'mse': result['loss'],
          'sigmas': {str(s): r for s, r in result['sigmas'].items()}}


def results_fields(results: dict, split_names: dict) -> dict:
  return {split: {'split': split_names[split], **split_fields(r)} for split, r in results.items()}


def table_rows(name: str, result: dict) -> list[tuple[str, str]]:
  """Console rows: sigma -> PSNR / SSIM of the model and of the noisy input."""
  rows = []
  for sigma, r in result['sigmas'].items():
    rows.append((f'{name} sigma {sigma}', f"PSNR {r['psnr']:6.2f} dB  SSIM {r['ssim']:.4f}   "
                 f"(noisy {r['noisy_psnr']:5.2f} dB, {r['noisy_ssim']:.4f})"))
  return rows


def summary_rows(results: dict, split_names: dict) -> list:
  rows = []
  for split, r in results.items():
    rows += table_rows(split_names[split], r)
    rows.append((f'{split_names[split]} sequences', f"{r['num_sequences']} ({r['num_failed']} "
                                                    'unreadable)'))
  return rows


def plot_examples(final: dict, path: pathlib.Path, title: str) -> None:
  """Noisy | denoised | clean crops of the test split's middle frame, one row per sigma."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  examples = final['test']['examples']
  fig, axes = plt.subplots(len(examples), 3, figsize=(7.5, 2.6 * len(examples)), squeeze=False)
  for row, (sigma, ex) in zip(axes, examples.items()):
    scores = {k: float(restoration.psnr(ex['clean'], np.clip(ex[k], 0, 1))) for k in
              ('noisy', 'denoised')}
    for ax, key in zip(row, ('noisy', 'denoised', 'clean')):
      ax.imshow(np.clip(ex[key], 0, 1))
      ax.set_xticks([])
      ax.set_yticks([])
      label = key if key == 'clean' else f'{key} {scores[key]:.2f} dB'
      ax.set_title(f'sigma {sigma}: {label}', fontsize=8)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def write_report(workdir: pathlib.Path, final: dict, config, history_path, train_failed: int):
  """(results.json fields, console rows, {name: path})."""
  files = {'curves': workdir / 'training_curves.png', 'examples': workdir / 'examples_test.png'}
  report.plot_curves(report.read_history(history_path), files['curves'], PANELS)
  plot_examples(final, files['examples'], f'{config.model.name}: test, middle frame of '
                                          f"{next(iter(final['test']['examples'].values()))['video_id']}")
  results = {'train_failed_videos': train_failed,
             **{split: split_fields(r) for split, r in final.items()}}
  rows = table_rows('test', final['test'])
  rows.append(('unreadable sequences', f'train {train_failed}, eval {final["eval"]["num_failed"]}, '
                                       f'test {final["test"]["num_failed"]}'))
  return results, rows, files


# ----------------------------------------------------------------------------
# --mode predict.
# ----------------------------------------------------------------------------

def input_sigma(config) -> float:
  """The noise level the model is told (non-blind); a one-line error when unknown or untrained."""
  d = config.denoise
  sigma = d.predict_sigma or d.add_noise_sigma
  if d.blind:
    return 0.0
  if not sigma:
    raise UserError('a non-blind denoiser needs the noise level: set '
                    '--config.denoise.predict_sigma=SIGMA (0-255) for a noisy video, or '
                    '--config.denoise.add_noise_sigma=SIGMA to add noise to a clean one')
  low, high = d.train_sigma
  if not low <= sigma <= high:
    raise UserError(f'sigma {sigma:g} is outside the range this model was trained on '
                    f'({low:g}-{high:g}); a non-blind model is not reliable there: retrain '
                    'with --config.denoise.train_sigma, or use a blind model')
  return float(sigma)


def _strip(path: pathlib.Path, rows: dict, title: str) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  frames = np.linspace(0, len(next(iter(rows.values()))) - 1, STRIP_FRAMES).astype(int)
  fig, axes = plt.subplots(len(rows), len(frames), figsize=(2.2 * len(frames), 2.3 * len(rows)),
                           squeeze=False)
  for axes_row, (name, video) in zip(axes, rows.items()):
    for ax, t in zip(axes_row, frames):
      ax.imshow(np.clip(video[t], 0, 1))
      ax.set_xticks([])
      ax.set_yticks([])
      ax.set_title(f'{name}, frame {t}', fontsize=7)
  fig.suptitle(title, fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def predict(paths: list[str], restore, workdir: pathlib.Path, config, denoise_step) -> list:
  """Denoises each readable video; writes predictions/<name>_denoised.mp4 and _strip.png."""
  sigma = input_sigma(config)  # Before any work: a wrong setting fails at once.
  add = float(config.denoise.add_noise_sigma)
  out_dir = workdir / 'predictions'
  skipped = failures.Skipped(paths)
  existing = skipped.existing(paths)
  if not existing:
    raise skipped.nothing_read(out_dir)
  model, params, what = restore()
  params = jax.device_put(params, jax.devices()[0])
  step = jax.jit(functools.partial(denoise_step, model=model))
  mesh = parallel.make_mesh(1, 1, devices=jax.devices()[:1])
  out_dir.mkdir(parents=True, exist_ok=True)
  written = []
  for index, path in enumerate(existing):
    try:
      frames = decode.read_frames(path).astype(np.float32) / 255.0
    except decode.DecodeError as e:
      skipped.add(path, f'cannot be decoded: {e.reason}')
      continue
    clean = None
    if add:
      clean, frames = frames, frames + restoration.eval_noise(frames.shape, add, config.seed, index)
    if len(frames) < config.data.num_frames:
      print(f'{path}: {len(frames)} frames, fewer than the {config.data.num_frames}-frame window: '
            'mirrored at the edges')
    denoised = denoising_eval.denoise_sequence(
        step, params, frames.astype(np.float32), sigma, window=config.data.num_frames,
        blind=config.denoise.blind, mesh=mesh, batch_size=config.eval.batch_size)
    stem = pathlib.Path(path).stem
    video_path, strip_path = out_dir / f'{stem}_denoised.mp4', out_dir / f'{stem}_strip.png'
    write_mp4(video_path, (np.clip(denoised, 0, 1) * 255 + 0.5).astype(np.uint8))
    rows = {'noisy': frames, 'denoised': denoised, **({'clean': clean} if clean is not None else {})}
    line = f'{path}: {len(frames)} frames'
    if clean is not None:
      gain = (float(np.mean(restoration.psnr(clean, denoised))),
              float(np.mean(restoration.psnr(clean, frames))))
      line += f', PSNR {gain[0]:.2f} dB (noisy {gain[1]:.2f} dB at sigma {add:g})'
    _strip(strip_path, rows, f'{config.model.name}, {what}: {pathlib.Path(path).name}')
    print(f'{line}\n  written: {video_path}, {strip_path}', flush=True)
    written.append(video_path)
  skipped.finish(out_dir, f'{workdir} {what}')
  return written
