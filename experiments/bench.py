"""How close each model's train step is to the machine's limit: one command.

  python experiments/bench.py             # 2 shared CPU cores: 557 s at load average 3.8
  python experiments/bench.py --quick     # tiny shapes, under a minute (tests/test_bench.py)

Writes experiments/results/bench.json, bench.md and scaling.png and prints the
markdown. Sections, in order (--sections picks some):

  table          every model family at a fixed, named input shape: compile time,
                 train-step time (median of steps after warm-up), clips/s, FLOPs
                 per step from XLA's cost analysis (and its ratio to the forward),
                 achieved FLOP/s, MFU against a matmul measured in the same run on
                 the same device, and memory (bench_step.py says how each is got);
  profile        per-op time of the rows with an MFU target (bench_profile.py);
  scaling        step time and memory vs frames and resolution for space_only,
                 joint and divided attention (bench_scaling.py), plotted;
  input          real pipeline + step vs the step alone (bench_input_vs_compute.py);
  optimizations  before / after of each optimization (bench_optimizations.py).

Shapes. 'demo': each family's shipped config (configs/*.py: 8 frames of 64x64,
the sizes the embedded demos train at), batch 8. 'bench': the shapes the MFU
targets are stated at, representative of real use rather than of the tiny
demo:
  divided   the issue's: 4 blocks, width 192, 3 heads, MLP 768, 8x112x112,
            patch 16 (8 x 49 tokens), batch 8;
  convlstm  Shi et al.'s layer size: two 5x5 ConvLSTM layers of 64 channels on
            16x16 states (8x64x64 frames, stride-4 stem of 64), batch 8;
  lrcn      a per-frame CNN of real width: stages of 64, 128, 256, 256 on
            8x112x112 frames, embedding and LSTM of 512, batch 8.

The scaling section and the optimizations' variants compile two at a time
(nothing is timed meanwhile); the table compiles one row at a time, so its
compile column is what a training run waits for. Every step starts from a
host-made state (bench_step.host_state), which saves one compile per row.

dtype: --dtype auto is float32 on CPU and bfloat16 (f32 params) on GPU/TPU;
the peak matmul always uses the step's dtype. On GPU/TPU the table adds
TimeSformer-divST-B and ViViT-B factorised-encoder rows at 8x224x224.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from experiments import bench_profile, bench_scaling, bench_step  # noqa: E402
from experiments.bench_step import Case  # noqa: E402

RESULTS = REPO / 'experiments' / 'results'
STA = 'model.space_time_attention.'
ATTENTION = 'configs/space_time_attention.py'
DEMO = '8x64x64 (demo config)'
# The MFU each bench-shape row must reach on the CPU in float32, each run against the peak
# matmul timed beside it (issue 22; issue 8 asked 0.50 / 0.50 / 0.35).
TARGETS = {'divided_bench': 0.75, 'convlstm_bench': 0.70, 'lrcn_bench': 0.45}  # Issue 22's.
GPU_TARGETS = {'timesformer_divst_b': 0.40}  # bf16, on a GPU.
SECTIONS = ('table', 'profile', 'scaling', 'input', 'optimizations')


def cases(batch: int = 8) -> dict[str, Case]:
  """Every table row, by key; keys ending in _bench have an MFU target."""
  divided = (f'{STA}hidden_size=192', f'{STA}num_layers=4', f'{STA}num_heads=3',
             f'{STA}mlp_dim=768', f'{STA}patch_size=16', 'data.height=112', 'data.width=112',
             f'{STA}stem=patch')  # The papers' patch embedding, not the small configs' conv stem.
  return {
      'lrcn': Case('lrcn', 'configs/default.py', batch_size=batch, shape=DEMO),
      'single_frame': Case('single_frame', 'configs/single_frame.py', batch_size=batch, shape=DEMO),
      'convlstm': Case('convlstm', 'configs/convlstm.py', batch_size=batch, shape=DEMO),
      **{p: Case(f'attention/{p}', f'{ATTENTION}:{p}', batch_size=batch,
                 shape=DEMO + (', 2-frame tubelets' if p == 'joint' else ''))
         for p in ('divided', 'joint', 'space_only', 'factorized_encoder')},
      'divided_bench': Case('attention/divided', f'{ATTENTION}:divided', divided,
                            batch_size=batch, shape='8x112x112, patch 16, width 192, 4 blocks'),
      'convlstm_bench': Case('convlstm', 'configs/convlstm.py', (
          'model.convlstm.stem_features=64', 'model.convlstm.hidden_sizes=(64,64)',
          'model.convlstm.input_kernel_size=5', 'model.convlstm.state_kernel_size=5'),
          batch_size=batch, shape='8x64x64, 2 x 5x5 ConvLSTM of 64 on 16x16'),
      'lrcn_bench': Case('lrcn', 'configs/default.py', (
          'data.height=112', 'data.width=112', 'model.lrcn.cnn_features=(64,128,256,256)',
          'model.lrcn.cnn_embed_dim=512', 'model.lrcn.lstm_hidden_size=512'),
          batch_size=batch, shape='8x112x112, CNN 64-128-256-256, LSTM 512'),
  }


def paper_cases(batch: int = 8) -> dict[str, Case]:
  """Paper-size transformers, for accelerators only (hours per step on a CPU)."""
  base = (f'{STA}hidden_size=768', f'{STA}num_layers=12', f'{STA}num_heads=12',
          f'{STA}mlp_dim=3072', f'{STA}patch_size=16', 'data.height=224', 'data.width=224',
          f'{STA}stem=patch')
  return {
      'timesformer_divst_b': Case('TimeSformer-divST-B', f'{ATTENTION}:divided', base,
                                  batch_size=batch, shape='8x224x224, patch 16, ViT-B'),
      'vivit_fe_b': Case('ViViT-B factorised encoder', f'{ATTENTION}:factorized_encoder',
                         base + (f'{STA}num_temporal_layers=4',), batch_size=batch,
                         shape='8x224x224, patch 16, ViT-B, 4 temporal layers'),
  }


# --quick: the same rows at sizes that compile and run in a second or two.
QUICK_OVERRIDES = (
    'data.num_frames=4', 'data.height=32', 'data.width=32',
    'model.lrcn.cnn_features=(8,16)', 'model.lrcn.cnn_embed_dim=16',
    'model.lrcn.lstm_hidden_size=16', 'model.single_frame.cnn_features=(8,16)',
    'model.single_frame.cnn_embed_dim=16', 'model.convlstm.stem_features=8',
    'model.convlstm.hidden_sizes=(8,8)', f'{STA}hidden_size=16', f'{STA}num_layers=1',
    f'{STA}num_temporal_layers=1', f'{STA}num_heads=2', f'{STA}mlp_dim=32', f'{STA}patch_size=16')


def quick(c: Case) -> Case:
  kept = tuple(o for o in c.overrides if o.split('=')[0] not in
               {q.split('=')[0] for q in QUICK_OVERRIDES})
  return Case(c.name, c.config, kept + QUICK_OVERRIDES, batch_size=2, shape='4x32x32 (quick)')


def machine() -> str:
  device = jax.devices()[0]
  cpu = platform.processor() or platform.machine()
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        cpu = line.split(':', 1)[1].strip()
        break
  except OSError:
    pass
  cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
  if device.platform == 'cpu':
    return f'{cpu}, {cores} cores (XLA:CPU), jax {jax.__version__}'
  return f'{device.device_kind} ({device.platform}), host {cpu}, jax {jax.__version__}'


def _mib(n) -> str:
  return f'{n / 2 ** 20:,.0f}' if n else 'n/a'


def table_markdown(rows: list[dict]) -> list[str]:
  lines = ['| model | shape | batch | params | compile s | step ms | clips/s | '
           'GFLOP/step (train / fwd) | achieved GFLOP/s | MFU | memory MiB |',
           '|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|']
  for r in rows:
    if 'error' in r:
      lines.append(f"| {r['name']} | {r['shape']} | {r['batch_size']} | error: {r['error']} "
                   '| | | | | | | |')
      continue
    lines.append(
        f"| {r['name']} | {r['shape']} | {r['batch_size']} | {r['num_params']:,} | "
        f"{r['compile_s']:.1f} | {r['step_s'] * 1e3:,.1f} | {r['clips_per_s']:,.1f} | "
        f"{r['train_flops'] / 1e9:,.2f} ({r['train_over_forward']:.2f}x fwd) | "
        f"{r['achieved_flops_per_s'] / 1e9:,.1f} | {r['mfu']:.2f} | "
        f"{_mib(r['memory']['peak_bytes'])} |")
  return lines


def report_markdown(result: dict) -> str:
  out = [f"# Benchmark: {result['machine']}", '',
         f"Command: `{result['command']}`  ",
         f"Device: {result['device']}; dtype {result['dtype']}; load average (1 min) "
         f"{result['load'][0]:.1f} before, {result['load'][1]:.1f} after; "
         f"{result['total_s']:.0f} s in all (" + ', '.join(
             f'{k} {v:.0f} s' for k, v in result['section_s'].items()) + ').', '']
  if 'peak' in result:
    p = result['peak']
    out += [f"Peak: {p['n']}^2 {p['dtype']} matmul, median {p['median'] / 1e9:,.1f} GFLOP/s over "
            f"{p['samples']} samples taken between the steps (range {p['min'] / 1e9:,.0f}-"
            f"{p['max'] / 1e9:,.0f}). MFU is the median over steps of (model FLOPs / step time) "
            '/ (the matmul timed right after that step).', '']
  if result.get('table'):
    mem = result['table'][0].get('memory', {}).get('source', '')
    out += table_markdown(result['table'])
    out += ['', f'Memory: {mem}. FLOPs: XLA cost analysis of the jitted train step '
            '(scans unrolled for counting); "x fwd" is train / forward FLOPs.', '']
  if result.get('targets'):
    out += ['MFU targets (issue 22):', '']
    for t in result['targets']:
      out.append(f"- {t['name']} ({t['shape']}, {t['dtype']}): MFU {t['mfu']:.2f}, target "
                 f"{t['target']:.2f}: "
                 f"{'met' if t['met'] else 'NOT met'}")
    out.append('')
  if result.get('profiles'):
    out += ['Where the time goes (share of op time in a profile of 3 steps):', '']
    for name, prof in result['profiles'].items():
      out.append(f'- {name}: {bench_profile.describe(prof)}')
    out.append('')
  if result.get('scaling'):
    s = result['scaling']
    out += [f"Scaling (plot: {s['plot']}), train step ms at batch {s['batch']}:", '',
            '| ' + ' | '.join(['pattern', *(f'T={t}' for t in s['frames']),
                               *(f'{z}px' for z in s['sizes'][1:]),
                               'growth T=%d->%d' % tuple(s['growth_frames'])]) + ' |',
            '|---|' + '---:|' * (len(s['frames']) + len(s['sizes'])) ]
    for pattern in bench_scaling.PATTERNS:
      cells = []
      for t in s['frames']:
        cells.append(_cell(s['points'], pattern, t, s['sizes'][0]))
      for z in s['sizes'][1:]:
        cells.append(_cell(s['points'], pattern, s['frames'][0], z))
      out.append(f"| {pattern} | " + ' | '.join(cells) + f" | {s['growth'][pattern]:.1f}x |")
    out += ['', s['summary'], '']
  if result.get('input_vs_compute'):
    r = result['input_vs_compute']
    b = r['best_steps_per_s']
    out += [f"Input vs compute ({r['name']}, batch {r['batch_size']}, real pipeline over the "
            f"embedded action set, {r['num_workers']} decode worker(s)): step alone "
            f"{b['step_alone']:.2f} steps/s, pipeline alone {b['pipeline_alone']:.2f} batches/s, "
            f"end to end {b['end_to_end']:.2f} steps/s: input-bound fraction "
            f"{r['input_bound_fraction']:.0%}.", '']
  if result.get('optimizations'):
    out += ['| optimization | before | after | speedup (before / after time) | memory after / '
            'before | verdict |', '|---|---|---|---:|---:|---|']
    for o in result['optimizations']:
      if 'error' in o:
        out.append(f"| {o['optimization']} | | | | | failed: {o['error']} |")
        continue
      res = o['results']
      b, a = res[o['before']], res[o['after']]
      mem = f"{o['memory_ratio']:.2f}" if o.get('memory_ratio') else 'n/a'
      out.append(f"| {o['optimization']} | {o['before']}: {b['step_s'] * 1e3:,.1f} ms | "
                 f"{o['after']}: {a['step_s'] * 1e3:,.1f} ms | {o['speedup']:.2f}x | {mem} | "
                 f"{o['verdict']} |")
    out.append('')
  return '\n'.join(out)


def _cell(points, pattern, frames, size) -> str:
  for p in points:
    if p['pattern'] == pattern and p['frames'] == frames and p['size'] == size:
      return f"{p['step_s'] * 1e3:,.0f}" if 'step_s' in p else 'skipped'
  return ''


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='tiny shapes, few steps (smoke test)')
  parser.add_argument('--sections', default='',
                      help='comma list of table,profile,scaling,input,optimizations; default all '
                           '(with --quick: all but optimizations, and input only with --data_root)')
  parser.add_argument('--dtype', default='auto', choices=('auto', 'float32', 'bfloat16'))
  parser.add_argument('--steps', type=int, default=0, help='timed steps per row (0: 10, quick 3)')
  parser.add_argument('--row_budget_s', type=float, default=20.0,
                      help='time the table spends on one row\'s timed steps at most')
  parser.add_argument('--point_budget_s', type=float, default=12.0,
                      help='the same for one scaling point')
  parser.add_argument('--scaling_budget_s', type=float, default=300.0,
                      help='after this long, the remaining (largest) scaling points are skipped')
  parser.add_argument('--data_root', default='', help='the embedded dataset (input section)')
  parser.add_argument('--out', default='', help='output folder (default experiments/results)')
  args = parser.parse_args()
  from absl import flags
  flags.FLAGS.mark_as_parsed()  # grain's worker processes read absl flags.

  begin = time.perf_counter()
  sections = set(filter(None, args.sections.split(','))) or set(SECTIONS)
  if args.quick and not args.sections:
    sections -= {'optimizations'} | ({'input'} if not args.data_root else set())
  out_dir = pathlib.Path(args.out or (RESULTS / 'quick' if args.quick else RESULTS))
  out_dir.mkdir(parents=True, exist_ok=True)
  device = jax.devices()[0]
  dtype = args.dtype if args.dtype != 'auto' else (
      'float32' if device.platform == 'cpu' else 'bfloat16')
  steps = args.steps or (3 if args.quick else 10)
  command = 'python experiments/bench.py' + ''.join(f' {a}' for a in sys.argv[1:])
  load_before = os.getloadavg()[0]
  log = lambda *a: print(*a, file=sys.stderr, flush=True)
  log(f'{machine()}; load average {load_before:.1f}; dtype {dtype}')

  all_cases = cases()
  if device.platform != 'cpu' and not args.quick:
    all_cases.update(paper_cases())
  targets_for = TARGETS if device.platform == 'cpu' else GPU_TARGETS
  profiled = set(TARGETS) if device.platform == 'cpu' else set()  # Op names match on CPU only.
  if args.quick:  # The demo rows only, tiny; the profile on one of them.
    all_cases = {k: quick(c) for k, c in all_cases.items() if k not in TARGETS}
    profiled = {'divided'}
  all_cases = {k: c.with_overrides(f'model.dtype={dtype}') for k, c in all_cases.items()}
  # --quick: a 256^2 matmul, as gpu_session.py's --quick: each timed step samples the peak, and
  # at 2048^2 those samples cost more than the tiny rows they rate.
  peak_n = 256 if args.quick else 2048
  peaks = {dtype: bench_step.Peak(dtype, n=peak_n)}
  if 'optimizations' in sections:  # The bf16 comparison needs both.
    for other in ('float32', 'bfloat16'):
      peaks.setdefault(other, bench_step.Peak(other, n=peak_n))
  peak = peaks[dtype]
  result = {'command': command, 'machine': machine(), 'device': str(device.device_kind),
            'xla_flags': os.environ.get('XLA_FLAGS', ''),
            'platform': device.platform, 'dtype': dtype, 'quick': args.quick, 'steps': steps}

  built: dict[str, bench_step.Step] = {}
  flops: dict[str, float] = {}
  if 'table' in sections or 'optimizations' in sections or 'profile' in sections:
    rows, profiles, targets = [], {}, []
    for key, case in all_cases.items():
      try:
        step = bench_step.build(case)
        row = bench_step.measure(step, peak, steps=steps, budget_s=args.row_budget_s)
        row['key'], row['load'] = key, os.getloadavg()[0]
        built[key], flops[key] = step, row['train_flops']
        log(f"  {case.name:28s} {case.shape:45s} {row['step_s'] * 1e3:9.1f} ms "
            f"compile {row['compile_s']:5.1f} s  MFU {row['mfu']:.2f}  load {row['load']:.1f}")
        if key in profiled and 'profile' in sections:
          profiles[f'{case.name} ({case.shape})'] = bench_profile.op_breakdown(
              step.run, step.compiled.as_text(), steps=3)
        if key in targets_for:
          targets.append({'key': key, 'name': case.name, 'shape': case.shape, 'mfu': row['mfu'],
                          'dtype': dtype, 'target': targets_for[key],
                          'met': row['mfu'] >= targets_for[key]})
      except Exception as e:  # One broken row must not lose the others.
        row = {'key': key, 'name': case.name, 'shape': case.shape, 'batch_size': case.batch_size,
               'error': f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'}
        log(f'  {case.name}: failed: {row["error"]}')
      rows.append(row)
    result['table'] = rows
    if targets and (device.platform != 'cpu' or dtype == 'float32'):
      result['targets'] = targets
    if profiles:
      result['profiles'] = profiles

  section_s = {'table': time.perf_counter() - begin} if 'table' in result else {}
  if 'scaling' in sections:
    mark = time.perf_counter()
    log('scaling:')
    kwargs = dict(steps=max(3, steps // 2), budget_s=args.point_budget_s,
                  section_budget_s=args.scaling_budget_s, log=log)
    if args.quick:
      kwargs.update(frames=(2, 4), sizes=(32,), batch=1, steps=2,
                    model=bench_scaling.base_overrides(width=16, layers=1, heads=2))
    points = bench_scaling.run(peak, **kwargs)
    plot_path = out_dir / 'scaling.png'
    bench_scaling.plot(points, plot_path, f'Train step vs frames and resolution '
                       f'({machine()}, {dtype})')
    frames = sorted({p['frames'] for p in points})
    sizes = sorted({p['size'] for p in points})
    span = bench_scaling.common_frames(points, sizes[0])
    growth = {p: bench_scaling.growth(points, p, sizes[0], span) for p in bench_scaling.PATTERNS}
    summary = (f"From T={span[0]} to T={span[1]} at {sizes[0]}x{sizes[0]} the step time grows "
               f"{growth['joint']:.1f}x for joint, {growth['divided']:.1f}x for divided and "
               f"{growth['space_only']:.1f}x for space_only: joint grows "
               f"{'faster' if growth['joint'] > growth['divided'] else 'NOT faster'} than divided.")
    log('  ' + summary)
    result['scaling'] = {'points': points, 'plot': str(plot_path.relative_to(REPO))
                         if plot_path.is_relative_to(REPO) else str(plot_path),
                         'frames': frames, 'sizes': sizes, 'batch': points[0]['batch'],
                         'growth': growth, 'growth_frames': span, 'summary': summary}
    section_s['scaling'] = time.perf_counter() - mark

  if 'input' in sections:
    mark = time.perf_counter()
    from experiments import bench_input_vs_compute
    log('input vs compute:')
    case = Case('lrcn (demo config, train batch size)', 'configs/default.py', batch_size=32,
                shape=DEMO)
    extra = (f'data.root={args.data_root}',) if args.data_root else ()
    if args.quick:
      case = quick(case)
      extra += ('data.synthetic_clips_per_class=(3,1,1)', 'data.num_workers=0')
    case = case.with_overrides(*extra, f'model.dtype={dtype}')
    try:
      result['input_vs_compute'] = bench_input_vs_compute.run(
          case, steps=3 if args.quick else 20, rounds=1 if args.quick else 2, log=log)
    except Exception as e:
      result['input_vs_compute_error'] = f'{type(e).__name__}: {e}'[:300]
      log(f'  failed: {e}')
    section_s['input'] = time.perf_counter() - mark

  if 'optimizations' in sections:
    mark = time.perf_counter()
    from experiments import bench_optimizations
    log('optimizations:')
    for key in TARGETS:  # --quick has no bench-shape rows: compare at the demo rows' shapes.
      demo = key.removesuffix('_bench')
      if key not in all_cases and demo in built:
        all_cases[key], built[key], flops[key] = all_cases[demo], built[demo], flops[demo]
    result['optimizations'] = bench_optimizations.run(
        all_cases, built, peaks, flops, steps=2 if args.quick else 8, log=log)
    section_s['optimizations'] = time.perf_counter() - mark

  if peak.samples:
    samples = np.asarray(peak.samples)
    result['peak'] = {'n': peak.n, 'dtype': str(peak.dtype), 'median': float(np.median(samples)),
                      'min': float(samples.min()), 'max': float(samples.max()),
                      'samples': len(samples)}
  result['load'] = [load_before, os.getloadavg()[0]]
  result['total_s'] = time.perf_counter() - begin
  result['section_s'] = section_s
  markdown = report_markdown(result)
  (out_dir / 'bench.json').write_text(json.dumps(result, indent=1, default=str))
  (out_dir / 'bench.md').write_text(markdown + '\n')
  print(markdown)
  print(f'wrote {out_dir / "bench.json"}, {out_dir / "bench.md"}')


if __name__ == '__main__':
  main()
