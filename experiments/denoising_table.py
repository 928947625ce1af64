"""The denoising table: three trained models and classical baselines on the embedded set.

  python experiments/denoising_table.py                      # trains all three (~20 min each)
  python experiments/denoising_table.py --reuse --workdir_root /tmp/dn --bm3d_sigmas 30
  python experiments/denoising_table.py --quick --workdir_root /tmp/q --out /tmp/q  # the test's

Each model is `python -m vidjax.main --config configs/denoising.py:<model>` in
WORKDIR_ROOT/<model> (with --reuse, a workdir whose results.json reached the
configured train.num_steps is read, not rerun). The classical baselines
(vidjax/tasks/denoising_baselines.py) are scored here on the same test
sequences, with the same seeded noise and the same per-frame, per-sequence,
then over-sequences means as the models (vidjax/tasks/denoising_eval.py);
the noisy row is checked against the models' own results.json before any
baseline runs, which proves the noise is the same. Writes OUT/denoising_table
.md and .json: PSNR / SSIM per sigma, train minutes, baseline seconds per
sequence, the issue's targets at sigma 30 with their margins, and published
DAVIS numbers (another dataset: never compared by value).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import sys
import time
from typing import Sequence

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python experiments/x.py` puts experiments/ first, not the repo.
  sys.path.insert(0, str(REPO))
os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')

from experiments import reproduction  # noqa: E402

CONFIG = 'configs/denoising.py'
NAME = 'denoising_table'
SIDECAR = 'denoising_table_run.json'  # Written in a workdir this script trained: its hardware.
MODELS = {'fastdvdnet': 'FastDVDnet-style CNN, 5 frames shifted onto the centre',
          'single_frame': 'same CNN, centre frame only',
          'vae': 'convolutional VAE, 5 frames'}
BASELINES = {'noisy': 'noisy input (unclipped)', 'nl_means': 'NLM, spatio-temporal (skimage)',
             'tv': 'TV per frame (Chambolle)', 'bm3d': 'BM3D per frame (bm3d_rgb)'}
BM3D_NOT_RUN = 'not run: pip install bm3d (free for non-commercial use only)'
TOLERANCE_DB = 1e-4  # Our noisy row against the models' noisy_psnr: the same noise, or not.
TARGET_SIGMA = 30
# (label, row, minus row, margin in dB): the targets at sigma 30.
TARGETS = (('multi-frame CNN - NLM >= 1.0 dB', 'fastdvdnet', 'nl_means', 1.0),
           ('multi-frame CNN - BM3D >= 0.5 dB', 'fastdvdnet', 'bm3d', 0.5),
           ('multi-frame CNN - single-frame >= 0.3 dB', 'fastdvdnet', 'single_frame', 0.3),
           ('VAE - noisy >= 6 dB', 'vae', 'noisy', 6.0))
# PSNR (dB) at sigma 10..50 on DAVIS-2017 test-dev, 480p, <= 85 frames (RVRT's table, as
# /work/shared/PAPERS.md has it).
PUBLISHED = (('FastDVDnet', 'Tassano et al., CVPR 2020', (38.71, 35.77, 34.04, 32.82, 31.86)),
             ('RVRT', 'Liang et al., NeurIPS 2022', (40.57, 38.05, 36.57, 35.47, 34.57)),
             ('V-BM4D (classical)', 'Maggioni et al. 2012, via DVDnet\'s README',
              (37.58, 33.88, 31.65, 30.05, 28.80)))
PUBLISHED_SIGMAS = (10, 20, 30, 40, 50)
QUICK_MODELS = ('fastdvdnet',)
QUICK_BASELINES = ('noisy', 'nl_means', 'tv')


def quick_overrides(root: pathlib.Path) -> list[str]:
  return [f'--config.data.root={root}', '--config.data.denoise_videos_per_split=(2,1,1)',
          '--config.data.denoise_frames=8', '--config.data.denoise_size=32',
          '--config.data.height=32', '--config.data.width=32', '--config.train.num_steps=4',
          '--config.data.num_workers=0', '--config.train.batch_size=4',
          '--config.eval.batch_size=4', '--config.denoise.eval_sigmas=(30,)']


def load_config(model: str, overrides: Sequence[str]):
  from vidjax import config as config_lib
  return config_lib.load(f'{REPO / CONFIG}:{model}', config_lib.split_overrides(list(overrides))[0])


# ----------------------------------------------------------------------------
# The models: trained here, or read from a finished workdir.
# ----------------------------------------------------------------------------

def finished(workdir: pathlib.Path, config) -> dict | None:
  """results.json of a denoising run that reached config.train.num_steps, else None."""
  return reproduction.finished_results(workdir, 'denoising', config.train.num_steps)


def run_model(model: str, overrides: Sequence[str], root: pathlib.Path, reuse: bool,
              machine: str, env: dict) -> dict:
  """Trains the model (or, with reuse, reads its finished workdir); returns its record."""
  config = load_config(model, overrides)
  workdir = root / model
  command = shlex.join(['python', '-m', 'vidjax.main', '--config', f'{CONFIG}:{model}',
                        '--workdir', str(workdir), *overrides])
  record = {'key': model, 'name': MODELS[model], 'command': command, 'workdir': str(workdir),
            'num_steps': config.train.num_steps}
  results = finished(workdir, config) if reuse else None
  if results is None and reuse and workdir.exists() and any(workdir.iterdir()):
    # Training would wipe it: it may be a run still going.
    return {**record, 'error': f'{workdir} has no results.json at step '
                               f'{config.train.num_steps} (still training?); wait, or remove it'}
  if results is not None:
    print(f'= {model}: reused {workdir}/results.json', file=sys.stderr, flush=True)
    sidecar = workdir / SIDECAR
    ran = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    record.update(reused=True, machine=ran.get('machine'), process_s=ran.get('process_s'))
  else:
    print(f'+ {model}: training in {workdir}', file=sys.stderr, flush=True)
    done = reproduction.run(f'{CONFIG}:{model}', list(overrides), workdir, env=env)
    if 'error' in done:
      return {**record, 'error': done['error']}
    results = json.loads((workdir / 'results.json').read_text())
    ran = {'machine': machine, 'process_s': done['process_s']}
    (workdir / SIDECAR).write_text(json.dumps(ran, indent=2) + '\n')
    record.update(reused=False, **ran)
  # train.py's wall_seconds: set-up to results, so compilation and every evaluation too.
  seconds = results.get('wall_seconds', record.get('process_s'))
  record.update(train_seconds=seconds, num_params=results.get('num_params'),
                test=results['test'])
  return record


# ----------------------------------------------------------------------------
# The baselines, scored as denoising_eval.evaluate_sequences scores a model.
# ----------------------------------------------------------------------------

def score_baselines(names: Sequence[str], records, config, sigmas: Sequence[int],
                    bm3d_sigmas: Sequence[int]) -> dict:
  """{name: {sigma: {psnr, ssim, psnr_per_sequence, ssim_per_sequence, seconds_per_sequence}}}."""
  from vidjax.data import decode
  from vidjax.metrics import restoration
  from vidjax.tasks import denoising_baselines, denoising_eval
  scores = {n: {s: {'psnr': [], 'ssim': [], 'ids': [], 'seconds': []} for s in sigmas
                if n != 'bm3d' or s in bm3d_sigmas} for n in names}
  for index, record in enumerate(records):  # The index seeds the noise: count unreadable ones.
    try:
      clean_u8 = denoising_eval.read_sequence(record, config.denoise.eval_max_frames)
    except decode.DecodeError:
      continue
    clean = clean_u8.astype(np.float32) / 255.0
    for sigma in sigmas:
      noisy = (clean + restoration.eval_noise(clean.shape, sigma, config.seed, index))
      noisy = noisy.astype(np.float32)
      for name in names:
        if sigma not in scores[name]:
          continue
        start = time.perf_counter()
        out = denoising_baselines.BASELINES[name](noisy, float(sigma))
        seconds = time.perf_counter() - start
        if name != 'noisy':  # The task scores the noisy input unclipped, outputs clipped.
          out = np.clip(out, 0.0, 1.0)
        frames = denoising_eval.frame_scores(clean, out)
        bucket = scores[name][sigma]
        bucket['psnr'].append(float(np.mean(frames['psnr'])))
        bucket['ssim'].append(float(np.mean(frames['ssim'])))
        bucket['ids'].append(record.video_id or record.path)
        bucket['seconds'].append(seconds)
      print(f'  sequence {index + 1}/{len(records)} sigma {sigma}: {", ".join(names)}',
            file=sys.stderr, flush=True)
  return {name: {sigma: {'psnr': float(np.mean(b['psnr'])), 'ssim': float(np.mean(b['ssim'])),
                         'psnr_per_sequence': dict(zip(b['ids'], b['psnr'])),
                         'ssim_per_sequence': dict(zip(b['ids'], b['ssim'])),
                         'seconds_per_sequence': float(np.mean(b['seconds']))}
                 for sigma, b in per.items()} for name, per in scores.items()}


def noisy_check(noisy: dict, models: list[dict]) -> dict:
  """Our noisy row against each model's results.json: first sequence and mean, every sigma."""
  checks = []
  for m in models:
    for sigma, ours in noisy.items():
      theirs = m['test']['sigmas'].get(str(sigma))
      if theirs is None:
        continue
      first = next(iter(ours['psnr_per_sequence']))
      for what, a, b in (
          (f'sequence {first}', ours['psnr_per_sequence'][first],
           theirs['noisy_psnr_per_sequence'].get(first)),
          ('mean over sequences', ours['psnr'], theirs['noisy_psnr'])):
        diff = None if b is None else abs(a - b)
        checks.append({'model': m['key'], 'sigma': sigma, 'what': what, 'ours': a,
                       'theirs': b, 'abs_diff_db': diff})
  passed = (all(c['abs_diff_db'] is not None and c['abs_diff_db'] <= TOLERANCE_DB
                for c in checks) if checks else None)
  return {'passed': passed, 'tolerance_db': TOLERANCE_DB, 'checks': checks}


# ----------------------------------------------------------------------------
# The tables.
# ----------------------------------------------------------------------------

def number(value, digits: int = 2) -> str:
  return reproduction.number(value, digits)


_table = reproduction.markdown_table


def rows_by_key(models: list[dict], baselines: dict) -> dict:
  """{key: {sigma (int): {psnr, ssim}}} of every row that has numbers."""
  rows = {m['key']: {int(s): v for s, v in m['test']['sigmas'].items()} for m in models
          if 'error' not in m}
  return rows | {name: dict(per) for name, per in baselines.items()}


def target_checks(rows: dict, bm3d_note: str) -> list[dict]:
  checks = []
  for label, a, b, margin in TARGETS:
    pa, pb = (rows.get(k, {}).get(TARGET_SIGMA, {}).get('psnr') for k in (a, b))
    if pa is None or pb is None:
      missing = a if pa is None else b
      why = bm3d_note if missing == 'bm3d' else f'no {missing} row in this table'
      checks.append({'target': label, 'margin_db': None, 'threshold_db': margin,
                     'status': 'not run', 'why': why})
    else:
      checks.append({'target': label, 'margin_db': pa - pb, 'threshold_db': margin,
                     'status': 'met' if pa - pb >= margin else 'not met', 'why': ''})
  return checks


def markdown(doc: dict) -> str:
  sigmas, models, baselines = doc['sigmas'], doc['models'], doc['baselines']
  lines = ['# Video denoising on the embedded synthetic_denoise set', '',
           f"Command: `{doc['command']}`", '', f"**Protocol.** {doc['protocol']}", '',
           f"**Hardware.** {doc['hardware']}", '']
  for m in models:
    if 'error' in m:
      lines += [f"**{m['name']} ({m['key']}) failed:** {m['error']}", '']
  cells = lambda per: [f"{number(per[s]['psnr'])} / {number(per[s]['ssim'], 4)}" if s in per
                       else '-' for s in sigmas]
  rows = []
  for m in models:
    if 'error' not in m:
      per = {int(s): v for s, v in m['test']['sigmas'].items()}
      rows.append([f"{m['key']}: {m['name']}", *cells(per), number(m['train_seconds'] / 60, 1)
                   if m.get('train_seconds') is not None else '-'])
  for name, per in baselines.items():
    rows.append([f'{name}: {BASELINES[name]}', *cells(per), '-'])
  if doc['bm3d'] != 'run':
    rows.append([f"bm3d: {BASELINES['bm3d']}: {doc['bm3d']}", *(['-'] * len(sigmas)), '-'])
  lines += ['## Test split: PSNR (dB) / SSIM', '']
  lines += _table(('row', *(f'sigma {s}' for s in sigmas), 'train minutes'), rows)
  lines += ['', '## Baseline time per sequence (s)', '']
  lines += _table(('baseline', *(f'sigma {s}' for s in sigmas)),
                  [[name, *(number(per[s]['seconds_per_sequence'], 2) if s in per else '-'
                            for s in sigmas)] for name, per in baselines.items()])
  check = doc['noisy_check']
  verdict = {True: 'passed', False: 'FAILED', None: 'not run (no model results)'}[check['passed']]
  worst = max((c['abs_diff_db'] for c in check['checks'] if c['abs_diff_db'] is not None),
              default=None)
  said = (f"{verdict}: our noisy PSNR equals each model's results.json noisy_psnr (first "
          f"sequence and mean, every sigma) within {TOLERANCE_DB:g} dB; largest difference "
          f"{number(worst, 6)} dB over {len(check['checks'])} comparisons" if check['checks']
          else verdict)
  lines += ['', f'**Same noise as the models:** {said}.']
  lines += ['', f"## The issue's targets at sigma {TARGET_SIGMA} (PSNR margins)", '']
  lines += _table(('target', 'margin (dB)', 'status', 'why not run'),
                  [[t['target'], number(t['margin_db']), t['status'], t['why']]
                   for t in doc['targets']])
  lines += ['', '## Published PSNR (dB), DAVIS-2017 test-dev 480p: another dataset, '
                'not comparable with the rows above', '']
  lines += _table(('method', 'source', *(f'sigma {s}' for s in PUBLISHED_SIGMAS)),
                  [[m, src, *(number(v) for v in vals)] for m, src, vals in PUBLISHED])
  lines += ['', '## Notes', ''] + [f'- {n}' for n in doc['notes']]
  lines += ['', '## Commands', ''] + [f"- {m['key']}: `{m['command']}`" for m in models]
  return '\n'.join(lines) + '\n'


def protocol_text(config, num_sequences: int, bm3d_sigmas) -> str:
  d = config.data
  return (f"`synthetic_denoise` test split, {num_sequences} sequence(s) of "
          f"{d.denoise_frames} frames at {d.denoise_size}x{d.denoise_size} "
          f"({', '.join(map(str, d.denoise_videos_per_split))} train/val/test videos). AWGN of "
          f"std sigma/255, unclipped, from `restoration.eval_noise(seed {config.seed}, sequence "
          f"index, sigma)`; PSNR / SSIM per frame, averaged per sequence, then over sequences. "
          f"Models see {d.num_frames}-frame windows mirrored at the ends, are told sigma, and "
          f"their output is clipped to [0, 1]; baselines are told sigma and clipped alike; the "
          f"noisy input is scored unclipped. BM3D sigmas: {list(bm3d_sigmas) or 'none'}.")


def notes(models: list[dict]) -> list[str]:
  found = ["Train minutes are results.json `wall_seconds`: from the run's set-up to its results, "
           'so they hold compilation and every evaluation as well as training.',
           'Published numbers: /work/shared/PAPERS.md (RVRT\'s table). V-BM4D matches DVDnet\'s '
           'README; FastDVDnet\'s and RVRT\'s READMEs give no numbers (RVRT\'s are an image), '
           'so those two are as PAPERS.md gives them, not checked against a README.']
  reused = [m['key'] for m in models if m.get('reused')]
  if reused:
    found.append('Read from earlier runs\' workdirs (--reuse), not rerun: ' + ', '.join(reused)
                 + '.')
  return found


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workdir_root', type=pathlib.Path,
                      default=pathlib.Path('/tmp/vidjax_denoising_table'),
                      help='each model trains in WORKDIR_ROOT/<model>')
  parser.add_argument('--out', type=pathlib.Path, default=reproduction.RESULTS,
                      help='where denoising_table.md and .json go')
  parser.add_argument('--reuse', action='store_true',
                      help='read a model whose workdir finished its num_steps instead of training')
  parser.add_argument('--models', default='', help=f'comma-separated, of {list(MODELS)}')
  parser.add_argument('--bm3d_sigmas', default='',
                      help='comma-separated sigmas for BM3D (default: every eval sigma; ~60 s '
                           'per 32-frame 96x96 sequence per sigma on 2 cores); "none" skips it')
  parser.add_argument('--quick', action='store_true',
                      help='a tiny set, one model, NLM and TV at sigma 30 (the test\'s)')
  parser.add_argument('--override', action='append', default=[], metavar='KEY=VALUE',
                      help='a config override added to every model (repeatable)')
  args = parser.parse_args(argv)
  models = [k for k in args.models.split(',') if k] or list(QUICK_MODELS if args.quick else MODELS)
  if set(models) - set(MODELS):
    parser.error(f'--models: unknown {sorted(set(models) - set(MODELS))}; choose from '
                 f'{list(MODELS)}')
  overrides = [*(quick_overrides(args.workdir_root / 'data') if args.quick else []),
               *('--config.' + o.removeprefix('--config.') for o in args.override)]
  command = shlex.join(['python', f'experiments/{NAME}.py',
                        *(sys.argv[1:] if argv is None else argv)])
  print(f'command: {command}', file=sys.stderr, flush=True)
  from experiments import bench  # jax, and only to name the device.
  machine = bench.machine()
  print(f'hardware: {machine}', file=sys.stderr, flush=True)
  start = time.time()
  env = reproduction.compile_cache_env(args.quick)
  records = [run_model(m, overrides, args.workdir_root, args.reuse, machine, env)
             for m in models]

  from vidjax.data import registry
  from vidjax.tasks import denoising_baselines
  config = load_config(models[0], overrides)
  sigmas = [int(s) for s in config.denoise.eval_sigmas]
  try:
    denoising_baselines._import_bm3d()
    bm3d = 'run'
  except ImportError:
    bm3d = BM3D_NOT_RUN
  if args.bm3d_sigmas == 'none' or args.quick or bm3d != 'run':
    bm3d_sigmas = []
  else:
    bm3d_sigmas = [int(s) for s in args.bm3d_sigmas.split(',') if s] or sigmas
  if bm3d == 'run' and not bm3d_sigmas:
    bm3d = 'not run: --quick or --bm3d_sigmas none'
  test = registry.load_split(config.data, config.data.test_split, config.seed).records
  ok = [r for r in records if 'error' not in r]
  noisy = score_baselines(['noisy'], test, config, sigmas, [])
  check = noisy_check(noisy['noisy'], ok)
  if check['passed'] is False:  # Before the slow baselines: their noise would not be the models'.
    bad = [c for c in check['checks']
           if c['abs_diff_db'] is None or c['abs_diff_db'] > TOLERANCE_DB]
    raise SystemExit(f'noisy row differs from the models\' results.json: {bad[:3]}')
  names = [n for n in (QUICK_BASELINES if args.quick else BASELINES)
           if n != 'noisy' and (n != 'bm3d' or bm3d_sigmas)]
  baselines = {**noisy, **score_baselines(names, test, config, sigmas, bm3d_sigmas)}

  hardware = machine + ''.join(f"; {m['key']} was trained on {m['machine']}" for m in ok
                               if m.get('machine') and m['machine'] != machine) + '.'
  bm3d_note = (bm3d.removeprefix('not run: ') if bm3d != 'run'
               else f'--bm3d_sigmas {",".join(map(str, bm3d_sigmas))} leaves it out')
  doc = {'table': NAME, 'command': command, 'config': CONFIG, 'machine': machine,
         'hardware': hardware, 'protocol': protocol_text(config, len(test), bm3d_sigmas),
         'sigmas': sigmas, 'bm3d': bm3d, 'bm3d_sigmas': bm3d_sigmas, 'models': records,
         'baselines': baselines, 'noisy_check': check,
         'targets': target_checks(rows_by_key(records, baselines), bm3d_note),
         'published': [{'method': m, 'source': s, 'dataset': 'DAVIS-2017 test-dev, 480p',
                        'psnr': dict(zip(PUBLISHED_SIGMAS, v))} for m, s, v in PUBLISHED],
         'notes': notes(records)}
  text = markdown(doc)
  doc['seconds'] = time.time() - start
  args.out.mkdir(parents=True, exist_ok=True)
  (args.out / f'{NAME}.json').write_text(json.dumps(doc, indent=2) + '\n')
  (args.out / f'{NAME}.md').write_text(text)
  print(text, end='', flush=True)
  print(f'wrote {args.out / NAME}.md and .json', file=sys.stderr, flush=True)
  return 1 if any('error' in r for r in records) else 0


if __name__ == '__main__':
  sys.exit(main())
