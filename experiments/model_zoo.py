"""Every model family trained on the embedded dataset, through the real CLI.

  python experiments/model_zoo.py [--only lrcn,convlstm] [--steps N --batch B]

Runs `python -m vidjax.main --config CONFIG` once per row, at each config's own
documented scale and budget (README, Model zoo), or at one common --steps and
--batch when given, through
`reproduction.run`, the runner the table reproductions share, reads
each run's results.json, and writes experiments/results/model_zoo.{md,json}.
The dataset is built from reversal pairs, so the order-blind rows (single
frame, space-only attention) are capped near 50% top-1; the others read
temporal order.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform

import reproduction

RESULTS = reproduction.RESULTS

ROWS = [  # (name, config, extra overrides)
    ('LRCN', 'configs/default.py', []),
    ('single frame (order-blind)', 'configs/single_frame.py', []),
    ('ConvLSTM', 'configs/convlstm.py', []),
    ('TimeSformer divided', 'configs/space_time_attention.py:divided', []),
    ('TimeSformer joint', 'configs/space_time_attention.py:joint', []),
    ('TimeSformer space-only (order-blind)', 'configs/space_time_attention.py:space_only', []),
    ('ViViT factorized encoder', 'configs/space_time_attention.py:factorized_encoder', []),
    ('ViViT factorized self-attention', 'configs/space_time_attention.py:factorized_self_attention', []),
]


def run_row(name: str, config: str, extra: list[str], args, workdir: pathlib.Path) -> dict:
  overrides = ['--config.train.progress_bar=false', *extra]
  if args.steps:
    overrides += [f'--config.train.num_steps={args.steps}', f'--config.train.eval_every={args.steps}']
  if args.batch:
    overrides += [f'--config.train.batch_size={args.batch}']
  print(f'+ {name}', flush=True)
  done = reproduction.run(config, overrides, workdir, env=reproduction.compile_cache_env())
  if 'error' in done:
    return {'name': name, 'config': config, 'error': done['error']}
  keep = ('test_top1', 'test_top5', 'eval_top1', 'num_params', 'gflops_per_clip', 'step_ms')
  return {'name': name, 'config': config, **{k: done[k] for k in keep},
          'seconds': done['process_s'], 'command': done['command']}


def markdown(rows: list[dict], args) -> str:
  own = "each config's"
  budget = (f'{args.steps or own} steps at batch {args.batch or own}' if args.steps or args.batch
            else "each config's own scale and budget")
  lines = [f'Embedded dataset, {budget}, seed 0, '
           f'{platform.processor() or platform.machine()} with {os.cpu_count()} cores.', '',
           '| model | test top-1 | test top-5 | params | GFLOPs/clip | train+eval time |',
           '|---|---|---|---|---|---|']
  for r in rows:
    if 'error' in r:
      lines.append(f"| {r['name']} | failed: {r['error']} | | | | |")
      continue
    lines.append(f"| {r['name']} | {r['test_top1']:.3f} | {r['test_top5']:.3f} | "
                 f"{r['num_params']:,} | {r['gflops_per_clip']:.3f} | {r['seconds'] / 60:.1f} min |")
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--steps', type=int, default=0, help="0: each config's own")
  parser.add_argument('--batch', type=int, default=0, help="0: each config's own")
  parser.add_argument('--only', default='', help='comma-separated substrings of row names')
  parser.add_argument('--workdir', default='/tmp/vidjax_model_zoo')
  args = parser.parse_args()
  wanted = [w.strip().lower() for w in args.only.split(',') if w.strip()]
  rows = []
  for i, (name, config, extra) in enumerate(ROWS):
    if wanted and not any(w in name.lower() for w in wanted):
      continue
    workdir = pathlib.Path(args.workdir) / f'{i}_{config.split("/")[-1].replace(":", "_")}'
    rows.append(run_row(name, config, extra, args, workdir))
    print(markdown(rows, args), flush=True)
  RESULTS.mkdir(parents=True, exist_ok=True)
  (RESULTS / 'model_zoo.json').write_text(json.dumps({'steps': args.steps, 'batch': args.batch,
                                                      'rows': rows}, indent=2))
  (RESULTS / 'model_zoo.md').write_text(markdown(rows, args) + '\n')
  print(f'wrote {RESULTS}/model_zoo.md and .json')


if __name__ == '__main__':
  main()
