"""Does an attention recipe take off on every seed and every fresh dataset? (issue 18)

  python experiments/attention_recipe.py                      # every recipe, divided, 5 seeds x 2 caches
  python experiments/attention_recipe.py --recipes shipped --patterns joint --cache-b-seeds 1
  python experiments/attention_recipe.py --quick              # smoke test: tiny, seconds

Each run is one `python -m vidjax.main --config configs/space_time_attention.py:PATTERN`
at the reproduction tables' scale (reproduction.DEFAULT: 32x32, 3,000 steps at batch
8) on the temporal task, with a recipe's overrides (RECIPES: each step from the
configs before issue 18 to the configs as they ship). The temporal dataset is
generated from nothing into CACHES/a and CACHES/b, and the output says whether
the two are byte-identical, file by file. A recipe passes when every run's test
top-1 is within 5 points of the mean of its runs (the bar of issue 18); the
train loss at steps 500 / 1,000 / 1,500 shows when each run left chance (ln 12
= 2.48). Writes OUT/attention_recipe.{md,json}. A run is found, not rerun, when
any table in OUT holds the same config, seed and data (e.g. a table's), so an
interrupted sweep resumes; `--report` runs nothing and tabulates what is recorded.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import pathlib
import statistics
import sys
import tempfile

import reproduction as rp

CONFIG = 'configs/space_time_attention.py'
_VIT = '--config.model.space_time_attention.'
# name: (overrides on top of the pattern's config as it ships and the tables' scale, why)
RECIPES = {  # Each names all three settings, so a run's key does not move with the config.
    'before': ((f'{_VIT}stem=patch', f'{_VIT}position_init=normal', f'{_VIT}pooling=cls'),
               'the configs as they ship: a ViT patch embedding (one strided conv), learned '
               'position embeddings started as noise of std 0.02 (timm), a CLS token'),
    'sincos': ((f'{_VIT}stem=patch', f'{_VIT}position_init=sincos', f'{_VIT}pooling=cls'),
               'position embeddings started as sines and cosines of the position '
               '(models/position_init.py)'),
    'sincos_gap': ((f'{_VIT}stem=patch', f'{_VIT}position_init=sincos', f'{_VIT}pooling=mean'),
                   'and the classifier reads the mean of the output tokens (global average '
                   'pooling) instead of a CLS token, as big_vision\'s plain ViT (Beyer et al. '
                   '2022)'),
    'conv_sincos_gap': ((f'{_VIT}stem=conv', f'{_VIT}position_init=sincos', f'{_VIT}pooling=mean'),
                        'and a convolutional stem (3x3 stride-2 convs per frame, then a 1x1; '
                        'models/conv_stem.py; Xiao et al. 2021) in place of the patch embedding'),
}
LOSS_STEPS = (500, 1000, 1500)  # Train loss here says when a run took off (chance: ln 12 = 2.48).
BAR = 0.05  # Every run within 5 points of the recipe's mean.


def _tree_digest(root: pathlib.Path) -> str:
  """One sha256 over every file's relative path and bytes (the DONE record left out)."""
  digest = hashlib.sha256()
  for path in sorted(p for p in root.rglob('*') if p.is_file() and p.name != 'DONE'):
    digest.update(str(path.relative_to(root)).encode())
    digest.update(path.read_bytes())
  return digest.hexdigest()


def generate(caches: pathlib.Path, scale: rp.Scale) -> dict:
  """{cache name: root}: the temporal set generated from nothing into each cache."""
  from vidjax.data import registry
  roots = {}
  for name in ('a', 'b'):
    root = caches / name / rp.TEMPORAL.dataset
    registry.get(rp.TEMPORAL.dataset).generate(
        root, clips_per_class=scale.clips_per_class, num_processes=min(os.cpu_count() or 1, 4))
    roots[name] = root
  return roots


def _losses(workdir: pathlib.Path) -> dict:
  """{step: train loss} at LOSS_STEPS, from the run's metrics.jsonl."""
  losses = {}
  path = workdir / 'metrics.jsonl'
  for line in path.read_text().splitlines() if path.exists() else []:
    record = json.loads(line)
    if record.get('step') in LOSS_STEPS and 'train/loss' in record:
      losses[str(record['step'])] = round(record['train/loss'], 3)
  return losses


def summarise(top1: list[float]) -> dict:
  mean = statistics.mean(top1)
  return {'n': len(top1), 'mean': mean, 'std': statistics.stdev(top1) if len(top1) > 1 else 0.0,
          'min': min(top1), 'max': max(top1),
          'max_deviation': max(abs(v - mean) for v in top1),
          'passes': max(abs(v - mean) for v in top1) <= BAR}


def markdown(results: dict, digests: dict, command: str, hardware: str, scale: rp.Scale) -> str:
  same = len(set(digests.values())) == 1
  lines = [
      '# Attention recipes: does every seed on every fresh dataset take off?', '',
      f'`{command}`', '',
      'Temporal task (synthetic_actions, 12 classes in 6 reversal pairs, order-blind ceiling '
      '50%), generated from nothing into two caches: '
      + ('**byte-identical** (sha256 of every file: ' + next(iter(digests.values()))[:16] + ').'
         if same else 'they DIFFER: ' + ', '.join(f'{k} {v[:16]}' for k, v in digests.items())),
      f'Scale: {scale.size}x{scale.size}, {scale.num_frames} frames, {scale.steps} steps at batch '
      f'{scale.batch}. A recipe passes when every run is within {100 * BAR:.0f} points of its mean.',
      '', '| recipe | pattern | runs | test top-1 %, mean ± std | min-max | largest distance '
      'from the mean | passes (5+ runs) | train step (median) | per run (seed/cache) | train loss at steps '
      + ' / '.join(map(str, LOSS_STEPS)) + ', per run |', '|---|---|---|---|---|---|---|---|---|---|']
  for (recipe, pattern), r in results.items():
    s = r['summary']
    per_run = ', '.join(f"{100 * run['test_top1']:.1f} ({run['seed']}{run['cache']})"
                        for run in r['runs'])
    steps = [run['step_ms'] for run in r['runs'] if run.get('step_ms')]
    step = f'{statistics.median(steps):.0f} ms' if steps else '-'
    losses = '; '.join('/'.join(f"{run['loss_at'].get(str(step), float('nan')):.2f}"
                                for step in LOSS_STEPS) for run in r['runs'])
    lines.append(f"| {recipe} | {pattern} | {s['n']} | {100 * s['mean']:.1f} ± {100 * s['std']:.1f}"
                 f" | {100 * s['min']:.1f}-{100 * s['max']:.1f} | {100 * s['max_deviation']:.1f} | "
                 f"{('yes' if s['passes'] else 'no') if s['n'] >= 5 else 'no' if not s['passes'] else '-'} | {step} | {per_run} | {losses} |")
  lines += ['', 'Recipes:', ''] + [f'- `{name}`: {why}; overrides `{" ".join(o) or "(none)"}`'
                                   for name, (o, why) in RECIPES.items()]
  lines += ['', f'Hardware: {hardware}.', '']
  return '\n'.join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--recipes', nargs='+', default=list(RECIPES), choices=list(RECIPES))
  parser.add_argument('--patterns', nargs='+', default=['divided'])
  parser.add_argument('--seeds', type=int, default=5)
  parser.add_argument('--cache-b-seeds', type=int, default=None,
                      help='seeds 0..N-1 on the second cache (default: --seeds)')
  parser.add_argument('--caches', type=pathlib.Path,
                      default=pathlib.Path(tempfile.gettempdir()) / 'vidjax_recipe_caches')
  parser.add_argument('--out', type=pathlib.Path, default=None)
  parser.add_argument('--workdir', type=pathlib.Path,
                      default=pathlib.Path(tempfile.gettempdir()) / 'vidjax_recipe_runs')
  parser.add_argument('--quick', action='store_true', help='tiny data, models and steps')
  parser.add_argument('--report', action='store_true',
                      help='run nothing: write the tables of the runs already recorded')
  args = parser.parse_args(argv)
  scale = rp.QUICK if args.quick else rp.DEFAULT
  out = args.out or (args.workdir / 'quick' if args.quick else rp.RESULTS)
  out.mkdir(parents=True, exist_ok=True)
  roots = generate(args.caches, scale)
  digests = {name: _tree_digest(root) for name, root in roots.items()}
  record_path = out / 'attention_recipe.json'
  mine = json.loads(record_path.read_text()).get('runs', []) if record_path.exists() else []
  cache_b_seeds = args.seeds if args.cache_b_seeds is None else args.cache_b_seeds
  env = rp.compile_cache_env(quick=args.quick)
  data_ids = {name: (root / 'DONE').read_text().strip() + ('' if name == 'a' else ':b')
              for name, root in roots.items()}  # Cache a's runs are the tables' own runs.
  results = {}
  for recipe in args.recipes:
    for pattern in args.patterns:
      runs = []
      for cache, seeds in (('a', args.seeds), ('b', cache_b_seeds)):
        for seed in range(seeds):
          overrides = [*scale.overrides(), *rp.task_overrides(rp.TEMPORAL, roots[cache], scale),
                       *scale.model('space_time_attention'), *RECIPES[recipe][0],
                       f'--config.seed={seed}']
          config = f'{CONFIG}:{pattern}'
          key = rp.run_key(config, overrides, seed, data_ids[cache])
          found = rp._cached_runs(out)  # Any table's run of the same config, seed and data.
          if key in found:
            record = found[key]
          elif args.report:
            continue
          else:
            print(f'{recipe} / {pattern} / seed {seed} / cache {cache}', flush=True)
            record = {**rp.run(config, overrides, args.workdir / key, in_process=args.quick,
                               env=env), 'key': key, 'seed': seed, 'config': config,
                      'row': f'{recipe} {pattern}', 'task': rp.TEMPORAL.name,
                      'computed_in': 'attention_recipe'}
            if 'error' not in record:
              record['loss_at'] = _losses(args.workdir / key)
            mine.append(record)
            record_path.write_text(json.dumps({'runs': mine}, indent=1))
          if 'error' in record:
            continue
          losses = record.get('loss_at') or _losses(args.workdir / key) or _losses(
              pathlib.Path(tempfile.gettempdir()) / 'vidjax_reproductions' / key)
          runs.append({'seed': seed, 'cache': cache, 'test_top1': record['test_top1'],
                       'loss_at': losses, 'step_ms': record.get('step_ms'),
                       'computed_in': record.get('computed_in')})
      if runs:
        results[(recipe, pattern)] = {'runs': runs, 'summary': summarise(
            [r['test_top1'] for r in runs])}
  command = 'python experiments/attention_recipe.py ' + ' '.join(argv or sys.argv[1:])
  hardware = rp.hardware([r for r in mine if r.get('load_average') is not None], {})[1]
  text = markdown(results, digests, command.strip(), hardware, scale)
  (out / 'attention_recipe.md').write_text(text)
  record_path.write_text(json.dumps({
      'runs': mine, 'digests': digests, 'scale': dataclasses.asdict(scale),
      'results': [{'recipe': k[0], 'pattern': k[1], **v} for k, v in results.items()]}, indent=1))
  print(text)
  return 0


if __name__ == '__main__':
  sys.exit(main())
