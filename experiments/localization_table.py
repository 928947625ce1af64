"""The embedded localization table: backbone, features, detector, baseline, each stage timed.

  python experiments/localization_table.py            # the README's table (2 CPU cores: ~25 min)
  python experiments/localization_table.py --quick    # a tiny run of the same code (the test's)

Runs, as a user would, from a fresh cache (a new $VIDJAX_CACHE, so the
dataset is generated inside the timed run) and a fresh workdir:
  1. generate    the embedded untrimmed set (synthetic_untrimmed)
  2. backbone    python -m vidjax.main --config configs/untrimmed_backbone.py ...
  3. extract     ... --mode extract: snippet features and probabilities of every video
  4. detector    python -m vidjax.main --config configs/localization.py ...
  5. baseline    the backbone's probabilities over sliding windows + NMS (its NMS picked
                 on val), scored by the same evaluator on the same test videos
Writes experiments/results/localization_table.{md,json} (--quick: under --workdir) with
the test mAP per tIoU beside ActionFormer's published THUMOS14 row (another dataset:
compared by protocol, not by value), the segmentation metrics, and each stage's time.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python experiments/x.py` puts experiments/ first, not the repo.
  sys.path.insert(0, str(REPO))
RESULTS = REPO / 'experiments' / 'results'
ACTIONFORMER_THUMOS14 = {'0.3': 82.13, '0.4': 77.80, '0.5': 70.95, '0.6': 59.40, '0.7': 43.87,
                         'mean': 66.83}
QUICK = ['--config.data.untrimmed_videos_per_split=(6,3,3)',
         '--config.data.untrimmed_mean_frames=200']
QUICK_BACKBONE = ['--config.train.num_steps=20', '--config.train.eval_every=20',
                  '--config.train.batch_size=8', '--config.eval.batch_size=8',
                  '--config.data.num_workers=0']
QUICK_DETECTOR = ['--config.train.num_steps=20', '--config.train.eval_every=20',
                  '--config.model.temporal_detector.embed_dim=32',
                  '--config.model.temporal_detector.head_dim=32']


def _run(args: list[str], env: dict, log_path: pathlib.Path) -> float:
  """Runs one stage to the end; returns its wall time. Its output goes to log_path."""
  start = time.time()
  with open(log_path, 'w') as log:
    done = subprocess.run([sys.executable, '-m', 'vidjax.main', *args], cwd=REPO, env=env,
                          stdout=log, stderr=subprocess.STDOUT)
  if done.returncode:
    tail = log_path.read_text().splitlines()[-15:]
    raise SystemExit(f'stage failed ({" ".join(args[:4])}):\n' + '\n'.join(tail))
  return time.time() - start


def _generate(env: dict, extra: list[str]) -> float:
  start = time.time()
  code = ('import sys; from vidjax import config as c; from vidjax.data import registry; '
          'cfg = c.load("configs/localization.py", sys.argv[1:]); '
          '[registry.load_split(cfg.data, s) for s in ("train", "val", "test")]')
  subprocess.run([sys.executable, '-c', code, *[a[len('--config.'):] for a in extra]],
                 cwd=REPO, env=env, check=True)
  return time.time() - start


def _baseline(config_args: list[str], workdir: pathlib.Path, env: dict) -> dict:
  """The sliding-window baseline's test result (run in this process, on the written files)."""
  os.environ.update(env)
  from vidjax import config as config_lib
  from vidjax.tasks import localization_baseline, localization_videos
  config = config_lib.load('configs/localization.py', [a[len('--config.'):] for a in config_args])
  features = pathlib.Path(config.localization.features_dir)
  index = json.loads((features / 'features.json').read_text())
  val = localization_videos.load(config, config.data.eval_split).videos
  test = localization_videos.load(config, config.data.test_split)
  return localization_baseline.evaluate(val, test.videos, features / 'probabilities',
                                        index['classifier']['class_names'], test.class_names,
                                        tuple(config.localization.tious))


def _table(results: dict) -> str:
  tious = ['0.3', '0.4', '0.5', '0.6', '0.7']
  pct = lambda x: f'{100 * x:.1f}'
  det, base = results['detector']['test'], results['baseline']
  lines = [
      '| method | data | mAP@' + ' / '.join(tious) + ' | mean | F1@10 / 25 / 50 | edit | frame acc |',
      '|---|---|---|---|---|---|---|',
  ]
  for name, r in (('vidjax temporal_detector on ConvLSTM features', det),
                  ('sliding-window ConvLSTM + NMS (baseline)', base)):
    seg = r['segmentation']
    lines.append(f"| {name} | embedded untrimmed test ({r['num_videos']} videos) | "
                 + ' / '.join(pct(r['map'][t]) for t in tious)
                 + f" | **{pct(r['average_map'])}** | {pct(seg['f1@10'])} / {pct(seg['f1@25'])} / "
                 f"{pct(seg['f1@50'])} | {pct(seg['edit'])} | {pct(seg['accuracy'])} |")
  a = ACTIONFORMER_THUMOS14
  lines.append('| ActionFormer, published (another dataset: THUMOS14 test, I3D features) | '
               'THUMOS14 | ' + ' / '.join(f'{a[t]:.1f}' for t in tious)
               + f" | {a['mean']:.1f} | - | - | - |")
  times = results['stage_seconds']
  lines += ['', 'Stage times (s): ' + ', '.join(f'{k} {v:.0f}' for k, v in times.items())
            + f", total {sum(times.values()):.0f} ({sum(times.values()) / 60:.1f} min)"]
  lines.append(f"Baseline NMS chosen on val: {base['nms']}")
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='a tiny run of the same code')
  parser.add_argument('--workdir', default='', help='runs go here (default: a temp dir)')
  parser.add_argument('--cache', default='', help='$VIDJAX_CACHE (default: a fresh temp dir)')
  parser.add_argument('--seed', type=int, default=0, help='config.seed of both trainings')
  parser.add_argument('--backbone', action='append', default=[], metavar='--config.KEY=VALUE',
                      help='an override of the backbone stage, to try a recipe (repeatable)')
  parser.add_argument('--out', default='', help='where the table goes (default: experiments/'
                      'results, or the workdir with --quick)')
  args = parser.parse_args()
  workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix='vidjax_localization_'))
  workdir.mkdir(parents=True, exist_ok=True)
  env = dict(os.environ, VIDJAX_CACHE=args.cache or str(workdir / 'cache'))
  data = QUICK if args.quick else []
  features = workdir / 'features'
  common = [*data, f'--config.extract.out_dir={features}', f'--config.seed={args.seed}',
            '--config.train.progress_bar=false']
  backbone = ['--config', 'configs/untrimmed_backbone.py', '--workdir', str(workdir / 'backbone'),
              *common, *(QUICK_BACKBONE if args.quick else []), *args.backbone]
  detector_flags = [*data, f'--config.localization.features_dir={features}',
                    f'--config.seed={args.seed}',
                    f"--config.localization.backbone_workdir={workdir / 'backbone'}",
                    *(QUICK_DETECTOR if args.quick else [])]
  times = {}
  times['generate'] = _generate(env, data)
  times['backbone'] = _run(backbone, env, workdir / 'backbone.log')
  times['extract'] = _run([*backbone, '--mode', 'extract'], env, workdir / 'extract.log')
  times['detector'] = _run(['--config', 'configs/localization.py', '--workdir',
                            str(workdir / 'detector'), '--config.train.progress_bar=false',
                            *detector_flags], env, workdir / 'detector.log')
  start = time.time()
  baseline = _baseline(detector_flags, workdir, env)
  times['baseline'] = time.time() - start
  detector = json.loads((workdir / 'detector' / 'results.json').read_text())
  backbone_results = json.loads((workdir / 'backbone' / 'results.json').read_text())
  results = {
      'command': 'python experiments/localization_table.py' + (' --quick' if args.quick else '')
                 + (f' --seed {args.seed}' if args.seed else '')
                 + ''.join(f' --backbone={flag}' for flag in args.backbone),
      'seed': args.seed,
      'hardware': f'{os.cpu_count()} CPU cores',
      'detector': {'test': {**detector['test'], 'tious': detector['tious']},
                   'eval': detector['eval']},
      'baseline': {'map': {f'{t:g}': m for t, m in zip(baseline['tious'], baseline['map'])},
                   'average_map': baseline['average_map'],
                   'per_class_ap': baseline['per_class_ap'],
                   'segmentation': baseline['segmentation'], 'nms': baseline['nms'],
                   'num_videos': baseline['num_videos']},
      'backbone_clip_test_top1': backbone_results['test_top1'],
      'gain_over_baseline': detector['test']['average_map'] - baseline['average_map'],
      'stage_seconds': times,
      'actionformer_thumos14_published': ACTIONFORMER_THUMOS14,
  }
  out = pathlib.Path(args.out) if args.out else (workdir if args.quick else RESULTS)
  table = _table(results)
  stem = 'localization_table' + (f'_seed{args.seed}' if args.seed else '')
  (out / f'{stem}.json').write_text(json.dumps(results, indent=2))
  (out / f'{stem}.md').write_text(
      f"# Temporal localization on the embedded untrimmed set\n\n`{results['command']}` on "
      f"{results['hardware']}; backbone clip top-1 (test clips) "
      f"{results['backbone_clip_test_top1']:.3f}.\n\n{table}\n")
  print(table)


if __name__ == '__main__':
  main()
