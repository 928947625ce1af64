"""The README's main job, end to end, timed as a new user runs it: each run from a fresh cache.

  python experiments/bench_main_job.py                  # 3 runs of the main job as it ships
  python experiments/bench_main_job.py --variant 'no frame cache=--config.data.decoded_cache_mb=0' --variant-runs 1

Each run is `python -m vidjax.main --config configs/default.py --workdir W` in
a fresh process with an empty dataset cache (so generation is included) and
an empty XLA compilation cache. Variants (`--variant 'NAME=--config.KEY=V ...'`)
run interleaved with the job as it ships, so a ratio comes from one session.
Per run: wall time, test top-1, the loop's own split of its time
(results.json `time_seconds`), user and system CPU and minor page faults of
the process tree. Writes OUT/bench_main_job.{md,json}: median (min-max) per
variant.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / 'experiments'))
import reproduction as rp  # noqa: E402

COMMAND = ['python', '-m', 'vidjax.main', '--config', 'configs/default.py']


def one_run(overrides: list[str], scratch: pathlib.Path) -> dict:
  """One fresh-cache run of the main job (plus `overrides`); its numbers."""
  run = scratch / f'run_{time.time_ns()}'
  env = {**os.environ, 'VIDJAX_CACHE': str(run / 'cache'),
         'JAX_COMPILATION_CACHE_DIR': str(run / 'jax_cache')}
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  done = subprocess.run([sys.executable, *COMMAND[1:], *overrides, '--workdir', str(run / 'w')],
                        cwd=REPO, env=env, capture_output=True, text=True)
  wall = time.perf_counter() - start
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  if done.returncode:
    raise SystemExit(f'the main job failed: {done.stderr.strip().splitlines()[-1]}')
  results = json.loads((run / 'w' / 'results.json').read_text())
  return {'wall_s': wall, 'test_top1': results['test_top1'],
          'time_seconds': results.get('time_seconds', {}),
          'user_s': after.ru_utime - before.ru_utime, 'system_s': after.ru_stime - before.ru_stime,
          'minor_faults': after.ru_minflt - before.ru_minflt,
          'load_average': os.getloadavg()[0]}


def _cell(values: list[float], digits: int = 1) -> str:
  if len(values) == 1:
    return f'{values[0]:.{digits}f}'
  return (f'{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-'
          f'{max(values):.{digits}f})')


def markdown(variants: dict, command: str, hardware: str) -> str:
  names = list(variants)
  parts = sorted({k for runs in variants.values() for r in runs for k in r['time_seconds']})
  rows = [(f'{part} (s)', [[r['time_seconds'].get(part, 0.0) for r in variants[n]] for n in names],
           1) for part in parts]
  rows += [('**wall time (s)**', [[r['wall_s'] for r in variants[n]] for n in names], 1),
           ('test top-1', [[r['test_top1'] for r in variants[n]] for n in names], 3),
           ('user CPU (s)', [[r['user_s'] for r in variants[n]] for n in names], 0),
           ('system CPU (s)', [[r['system_s'] for r in variants[n]] for n in names], 0),
           ('minor page faults (M)', [[r['minor_faults'] / 1e6 for r in variants[n]]
                                      for n in names], 2)]
  lines = ['# The main job, end to end, from a fresh cache', '', f'`{command}`', '',
           'Each cell: the median of the runs (min-max); each run is `'
           + shlex.join(COMMAND) + ' [variant] --workdir W` in a fresh process with empty '
           'dataset and XLA caches. Variants ran interleaved with the job as it ships.', '',
           '| part | ' + ' | '.join(f'{n} ({len(variants[n])} runs)' for n in names) + ' |',
           '|---|' + '---:|' * len(names)]
  lines += [f'| {label} | ' + ' | '.join(_cell(v, digits) for v in cells) + ' |'
            for label, cells, digits in rows]
  return '\n'.join(lines + ['', f'Hardware: {hardware}.', ''])


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--runs', type=int, default=3)
  parser.add_argument('--variant', action='append', default=[],
                      help="'NAME=--config.KEY=VALUE ...': also run this, interleaved")
  parser.add_argument('--variant-runs', type=int, default=None,
                      help='runs of each variant (default: --runs), in the first rounds')
  parser.add_argument('--out', type=pathlib.Path, default=rp.RESULTS)
  parser.add_argument('--scratch', type=pathlib.Path,
                      default=pathlib.Path(tempfile.gettempdir()) / 'vidjax_bench_main_job')
  args = parser.parse_args(argv)
  if args.variant_runs is None:
    args.variant_runs = args.runs
  variants = {'as shipped': []}
  overrides = {'as shipped': []}
  for spec in args.variant:
    name, _, flags = spec.partition('=')
    variants[name], overrides[name] = [], shlex.split(flags)
  for i in range(args.runs):
    for name in variants:
      if name != 'as shipped' and i >= args.variant_runs:
        continue
      print(f'run {i + 1}/{args.runs}: {name}', flush=True)
      variants[name].append(one_run(overrides[name], args.scratch))
      print(f"  {variants[name][-1]['wall_s']:.1f} s, test top-1 "
            f"{variants[name][-1]['test_top1']:.3f}", flush=True)
  command = 'python experiments/bench_main_job.py ' + shlex.join(argv or sys.argv[1:])
  loads = [r['load_average'] for runs in variants.values() for r in runs]
  hardware = (f'{rp.cpu_model()}, {os.cpu_count()} cores, 1-minute load average after the runs '
              f'{min(loads):.1f}-{max(loads):.1f}')
  args.out.mkdir(parents=True, exist_ok=True)
  text = markdown(variants, command.strip(), hardware)
  (args.out / 'bench_main_job.md').write_text(text)
  (args.out / 'bench_main_job.json').write_text(json.dumps(
      {'command': command.strip(), 'hardware': hardware, 'variants': variants,
       'overrides': overrides}, indent=1))
  print(text)
  return 0


if __name__ == '__main__':
  sys.exit(main())
