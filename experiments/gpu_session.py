"""What only an accelerator can measure, in one command with a budget it enforces.

  python experiments/gpu_session.py                 # on one GPU: 6 min of wall time at most
  python experiments/gpu_session.py --quick         # the same code on CPU, tiny sizes, f32: ~40 s

Parts, in order, each with its share of --budget_s (default 360 s):
  bench (40%)         TimeSformer-divST-B and ViViT-B factorised encoder at 8x224x224, LRCN,
                      ConvLSTM and divided attention at their bench shapes, in bf16: step time,
                      clips/s, MFU against a bf16 matmul timed in the same run, memory;
  moving_mnist (45%)  Shi et al. Table 1's ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64 at the paper's
                      protocol, trained for as long as the share allows, then its test
                      cross-entropy per sequence beside the CPU run and the paper's 3,670.85,
                      and the prediction strip;
  default (15%)       configs/default.py's train step rate against the 2-core CPU figure.
Each part runs in its own process (experiments/gpu_session_parts.py), is killed at the end of its
share, and writes its JSON after every row, so a time-out loses only the row in progress. Writes
gpu_session.md, gpu_session.json, parts/*.json and predictions_test.png to --out, or to $OUT when
set (the device tool's folder), else experiments/results/gpu_session (--quick: .../quick/).

On the lent machine (whose image has jax 0.11 with CUDA, flax, optax and orbax, but not the rest of
requirements.txt): bring wheels of ml-collections, grain, av, eva-decord, tensorboardX and
mlxtend (`pip download --only-binary=:all:` where there is a network, `pip install --no-index` there).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHARES = {'bench': 0.40, 'moving_mnist': 0.45, 'default': 0.15}


def run_part(command: list[str], deadline: float, log_file) -> dict:
  """Runs one part's process until it ends or the deadline passes (then kills its group)."""
  begin = time.time()
  proc = subprocess.Popen(command, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
                          start_new_session=True)  # Its own group: its children die with it.
  try:
    proc.wait(timeout=max(0.1, deadline - time.time()))
    status = 'done' if proc.returncode == 0 else f'failed (exit {proc.returncode})'
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    status = 'timed out at the end of its share'
  return {'status': status, 'wall_s': time.time() - begin}


def _mib(n) -> str:
  return f'{n / 2 ** 20:,.0f}' if n else 'n/a'


def markdown(result: dict) -> str:
  out = [f"# GPU session: {result['machine']}", '',
         f"Command: `{result['command']}`  ",
         f"Budget {result['budget_s']:.0f} s, used {result['wall_s']:.0f} s: " + '; '.join(
             f"{name} {p['status']} in {p['wall_s']:.0f} s (share {p['share_s']:.0f} s)"
             for name, p in result['parts'].items()) + '.', '']
  if result['quick']:
    out += ['**--quick: tiny shapes on this machine, a rehearsal of the code; no figure here means '
            'anything.**', '']
  b = result.get('bench')
  if b:
    pk = b.get('peak', {})
    out += ['## Train step at full size', '',
            f"dtype {b['dtype']}; peak: {pk.get('n')}^2 {pk.get('dtype')} matmul, median "
            f"{pk.get('median', float('nan')) / 1e9:,.1f} GFLOP/s, timed after every step in the "
            'same run. Memory: the device\'s peak so far in this process (rows run in order).', '',
            '| model | shape | batch | step ms | clips/s | GFLOP/step | MFU | memory MiB | '
            'CPU step ms (f32, MFU) |', '|---|---|---:|---:|---:|---:|---:|---:|---|']
    for r in b['rows']:
      cpu = r.get('cpu')
      cpu_cell = f"{cpu['step_s'] * 1e3:,.0f} ({cpu['mfu']:.2f})" if cpu else ''
      if 'step_s' not in r:
        out.append(f"| {r['name']} | {r['shape']} | {r['batch_size']} | "
                   f"{r.get('error') or r.get('skipped')} | | | | | {cpu_cell} |")
        continue
      out.append(f"| {r['name']} | {r['shape']} | {r['batch_size']} | {r['step_s'] * 1e3:,.1f} | "
                 f"{r['clips_per_s']:,.1f} | {r['train_flops'] / 1e9:,.1f} | {r['mfu']:.2f} | "
                 f"{_mib(r['memory'].get('peak_bytes'))} | {cpu_cell} |")
    out.append('')
  m = result.get('moving_mnist')
  if m:
    out += ['## Moving MNIST, Shi et al. Table 1 at the paper\'s size', '',
            f"Command: `{m['command']}`, stopped by SIGTERM when its share ran out, then "
            'evaluated by the same command with `--config.train.num_steps` at the saved step.', '']
    if 'test_bce_per_sequence' in m:
      cpu = m.get('cpu', {})
      out += ['| run | steps | test BCE / sequence | 3 digits | mean frame | paper |',
              '|---|---:|---:|---:|---:|---:|',
              f"| {m['row']}, {m['dtype']}, this device | {m['steps']:,} | "
              f"**{m['test_bce_per_sequence']:,.0f}** | {m['test_3digits_bce_per_sequence']:,.0f} | "
              f"{m['baselines'].get('mean_frame', float('nan')):,.0f} | {m['paper']:,.2f} |"]
      if cpu:
        out.append(f"| {cpu['row_name']}, the CPU run (README) | {cpu['step']:,} | "
                   f"{cpu['test_bce_per_sequence']:,.0f} | "
                   f"{cpu['test_3digits_bce_per_sequence']:,.0f} | | |")
      out += ['', f"Trained {m['train_wall_s']:.0f} s; strip: {m.get('strip', 'none')}.", '']
    else:
      out += [f"Not measured: {m.get('error', 'the part ended before its evaluation')}.", '']
  d = result.get('default')
  if d:
    cpu = d.get('cpu', {})
    out += ['## The main job\'s train step (configs/default.py)', '',
            '| dtype | batch | steps/s | CPU steps/s (2 cores, f32) | speed-up |',
            '|---|---:|---:|---:|---:|']
    for r in d['rows']:
      if 'steps_per_s' not in r:
        out.append(f"| {r['dtype']} | | {r.get('skipped')} | | |")
        continue
      ratio = f"{r['steps_per_s'] / cpu['steps_per_s']:.1f}x" if cpu.get('steps_per_s') else ''
      out.append(f"| {r['dtype']} | {r['batch_size']} | {r['steps_per_s']:,.1f} | "
                 f"{cpu.get('steps_per_s') or float('nan'):.2f} | {ratio} |")
    out.append('')
  return '\n'.join(out)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='tiny sizes on CPU (a rehearsal)')
  parser.add_argument('--budget_s', type=float, default=0, help='default 360 (quick: 100)')
  parser.add_argument('--parts', default=','.join(SHARES), help='comma list of ' + ','.join(SHARES))
  parser.add_argument('--out', default='')
  parser.add_argument('--workdir', default='', help='the training run (default: a temp folder)')
  parser.add_argument('--dtype', default='', choices=('', 'bfloat16', 'float32'),
                      help='default bfloat16; float32 with --quick (bf16 compiles slowly on CPU)')
  parser.add_argument('--part', default='', help=argparse.SUPPRESS)  # Internal: run one part.
  parser.add_argument('--deadline', type=float, default=0, help=argparse.SUPPRESS)
  args = parser.parse_args()
  args.dtype = args.dtype or ('float32' if args.quick else 'bfloat16')
  out = pathlib.Path(args.out or os.environ.get('OUT') or (
      REPO / 'experiments' / 'results' / ('quick' if args.quick else '') / 'gpu_session'))
  work = pathlib.Path(args.workdir or
                      pathlib.Path(tempfile.gettempdir()) / 'vidjax_gpu_session')
  if args.part:
    return _one_part(args, out, work)

  budget = args.budget_s or (100.0 if args.quick else 360.0)
  begin = time.time()
  out.mkdir(parents=True, exist_ok=True)
  (out / 'parts').mkdir(exist_ok=True)
  for old in (out / 'parts').glob('*.json'):
    old.unlink()
  import jax  # Only for the machine's name: parts import their own.
  from experiments import bench
  command = 'python experiments/gpu_session.py' + ''.join(f' {a}' for a in sys.argv[1:])
  result = {'command': command, 'machine': bench.machine(), 'device': jax.devices()[0].device_kind,
            'budget_s': budget, 'quick': args.quick, 'parts': {}}
  names = [p for p in args.parts.split(',') if p]
  unknown = sorted(set(names) - set(SHARES))
  if unknown:
    sys.exit(f"error: unknown part {unknown[0]}; choose from {','.join(SHARES)}")
  total = sum(SHARES[n] for n in names)
  with open(out / 'log.txt', 'w') as log:
    for name in names:
      share = budget * SHARES[name] / total
      deadline = min(time.time() + share, begin + budget)
      print(f'{name}: share {share:.0f} s', file=sys.stderr, flush=True)
      part = [sys.executable, __file__, '--part', name, '--deadline', str(deadline),
              '--out', str(out), '--workdir', str(work), '--dtype', args.dtype]
      status = run_part(part + (['--quick'] if args.quick else []), deadline, log)
      result['parts'][name] = {**status, 'share_s': share}
      path = out / 'parts' / f'{name}.json'
      if path.exists():
        result[name] = json.loads(path.read_text())
      result['wall_s'] = time.time() - begin
      (out / 'gpu_session.json').write_text(json.dumps(result, indent=1, default=str))
      (out / 'gpu_session.md').write_text(markdown(result) + '\n')
  print(markdown(result))
  print(f"wrote {out / 'gpu_session.md'}, {out / 'gpu_session.json'}")


def _one_part(args, out: pathlib.Path, work: pathlib.Path) -> None:
  from absl import flags
  flags.FLAGS.mark_as_parsed()
  from experiments import gpu_session_parts as parts
  if args.part == 'bench':
    parts.run_bench(out, args.deadline, args.quick, args.dtype)
  elif args.part == 'default':
    parts.run_default(out, args.deadline, args.quick)
  else:
    parts.run_moving_mnist(out, args.deadline, args.quick, work, args.dtype)


if __name__ == '__main__':
  main()
