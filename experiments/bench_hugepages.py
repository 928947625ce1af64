"""Huge pages for XLA:CPU's per-step buffers (vidjax/allocator.py): the demo step with and without.

  python experiments/bench_hugepages.py            # writes experiments/results/bench_hugepages.md
  python experiments/bench_hugepages.py --quick    # 1 repeat of a few steps, to check it runs

Each repeat runs the loop's own train step (experiments/bench_step.py: the
demo LRCN config, batch 32, device-resident synthetic batches) in a fresh
process, once with glibc's default allocator and once with
GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (the order alternating between repeats),
and counts the steps per second and the minor page faults per step over
`--steps` steps after 5 warm-up steps. The speed-up is the ratio within a
repeat; the table gives the median of the repeats with min and max.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))

from experiments import reproduction  # noqa: E402
from vidjax import allocator  # noqa: E402

_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from experiments import bench_step
step = bench_step.build(bench_step.Case('demo', 'configs/default.py', (), batch_size=32)).compile()
temp = step.compiled.memory_analysis().temp_size_in_bytes
for _ in range(5):
  step.run()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
f0, t0 = faults(), time.perf_counter()
for _ in range({steps}):
  step.run()  # Blocks on the result: completed steps, not dispatches.
seconds = time.perf_counter() - t0
print(json.dumps({{'steps_per_second': {steps} / seconds, 'faults_per_step': (faults() - f0) / {steps},
                  'temp_mb': temp / 2**20}}))
"""


def _measure(huge: bool, steps: int) -> dict:
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'VIDJAX_HUGEPAGES': '0'}
  tunables = [t for t in env.get('GLIBC_TUNABLES', '').split(':')
              if t and not t.startswith('glibc.malloc.hugetlb')]
  env['GLIBC_TUNABLES'] = ':'.join(tunables + ([allocator.TUNABLE] if huge else []))
  out = subprocess.run([sys.executable, '-c', _CHILD.format(repo=str(REPO), steps=steps)],
                       env=env, capture_output=True, text=True, timeout=900, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


def _spread(values) -> str:
  return f'{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})'


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--steps', type=int, default=40)
  args = parser.parse_args(argv)
  repeats, steps = (1, 5) if args.quick else (args.repeats, args.steps)
  if allocator.environment_with_huge_pages({}) is None:
    print('this machine cannot use the tunable (not glibc >= 2.35 on Linux with transparent '
          'huge pages); nothing to measure')
    return 0
  runs = []
  for i in range(repeats):
    order = (False, True) if i % 2 == 0 else (True, False)
    run = {huge: _measure(huge, steps) for huge in order}
    runs.append({'default': run[False], 'huge_pages': run[True],
                 'speedup': run[True]['steps_per_second'] / run[False]['steps_per_second']})
    print(json.dumps(runs[-1]), flush=True)
  load = os.getloadavg()[0]
  lines = ['# The demo train step with and without huge pages for its buffers', '',
           '`python experiments/bench_hugepages.py`', '',
           f'{reproduction.cpu_model()}, {os.cpu_count()} cores, load average {load:.2f} after; '
           f'demo LRCN (configs/default.py, batch 32), {steps} steps per measurement after 5 '
           f'warm-up, each in a fresh process; median (min-max) of {repeats} repeats. XLA '
           f"temporaries: {runs[0]['default']['temp_mb']:.0f} MB per step.", '',
           '| allocator | steps/s | minor page faults per step |', '|---|---:|---:|',
           f"| glibc default | {_spread([r['default']['steps_per_second'] for r in runs])} "
           f"| {statistics.median(r['default']['faults_per_step'] for r in runs):,.0f} |",
           f"| glibc.malloc.hugetlb=1 | {_spread([r['huge_pages']['steps_per_second'] for r in runs])} "
           f"| {statistics.median(r['huge_pages']['faults_per_step'] for r in runs):,.0f} |", '',
           f"Speed-up, paired within a repeat: **{_spread([r['speedup'] for r in runs])}x**."]
  if not args.quick:
    out = REPO / 'experiments' / 'results'
    (out / 'bench_hugepages.json').write_text(json.dumps({'runs': runs, 'steps': steps}, indent=1))
    (out / 'bench_hugepages.md').write_text('\n'.join(lines) + '\n')
  print('\n'.join(lines))
  return 0


if __name__ == '__main__':
  sys.exit(main())
