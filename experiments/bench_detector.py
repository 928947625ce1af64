"""Inference speed of the video object detector, in detected frames per second.

  python experiments/bench_detector.py          # configs/detection.py; none,attention x 1,16
  python experiments/bench_detector.py --quick  # 64x64, tiny model (tests/test_bench_detector.py)
  python experiments/bench_detector.py --workdir runs/detection   # a trained checkpoint's weights
  python experiments/bench_detector.py --config.model.dtype=bfloat16   # any --config.a.b=value

Writes bench_detector.md and bench_detector.json to --out (default
experiments/results/) and prints the markdown.

What is timed is the detection task's own evaluation step, jitted as
`Detection.evaluator` jits it: `task.predict_step(model)`, i.e. normalise,
the YOLO forward, box decoding and on-device NMS (tasks/detection.py
`eval_step`), on a device-resident uint8 batch [B, T, H, W, 3] of random
pixels at the config's shape. Decoding video, the host->device copy and
fetching the outputs are not timed. Every call is waited for
(`jax.block_until_ready`; dispatch is asynchronous), as the evaluation
waits for each batch's outputs before the next.

Per temporal mode x batch size: one ahead-of-time compile (timed apart),
warm-up calls, then --repeats rounds of --iters calls. fps = detected frames
per second = B / seconds per call; the table gives the median round with
the min and max, and each mode's fps over 'none' at the same batch, both
measured in this run.

A detected frame is a clip's last frame. With temporal 'none' the model
computes only that frame; with 'mean' / 'attention' it reads
data.num_frames frames for each detected frame (the evaluation slides the
clip one frame at a time, so every input frame goes through the backbone
num_frames times).

Weights: model.init's from config.seed (--quick: N(0, 0.02) drawn on the
host, see `detector`), or with --workdir a trained run's, restored as
`--mode evaluate` restores them (vidjax/predict.py): give it the run's
--config and overrides; --temporal then defaults to the config's mode. The
network's time does not depend on the weights; NMS's can: model.init
scores anchors near YOLOX's prior (1e-4), under detection.score_threshold,
so NMS has little to suppress. The 'det / frame' column counts the boxes
that survived; --config.detection.score_threshold=0 gives NMS its worst case.
GFLOPs per frame: XLA's count of the network forward for one clip
(vidjax/models/cost.py, the number training logs); NMS not included.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from experiments.bench import machine  # noqa: E402
from vidjax import config as config_lib  # noqa: E402
from vidjax import parallel, tasks  # noqa: E402
from vidjax.errors import UserError  # noqa: E402
from vidjax.models import cost  # noqa: E402

RESULTS = REPO / 'experiments' / 'results'
# --quick: the same rows on a model and frames small enough to compile and run in a second.
QUICK_OVERRIDES = ('data.height=64', 'data.width=64', 'model.yolo.widths=(8,16,32)',
                   'model.yolo.strides=(8,16)')


def load_config(spec: str, overrides, temporal: str | None = None):
  """The validated config, with `model.yolo.temporal` set when given (and the 4-frame clips
  a temporal detector reads, as the detection table's attention row)."""
  video = [f'model.yolo.temporal={temporal}'] if temporal else []
  if temporal not in (None, 'none'):
    video.append('data.num_frames=4')
  return config_lib.load(spec, [*video, *overrides])


def detector(config, workdir: str | None, host_init: bool = False):
  """(task, model, params, mesh, weights in words): random init, or the workdir's checkpoint.

  `host_init` (--quick) draws N(0, 0.02) on the host in model.init's shapes, as
  bench_step.host_state does: model.init's jitted initialisers (one RNG
  stream per parameter) take longer to compile than the rest of a quick row.
  """
  if workdir:
    from vidjax import predict  # orbax: only when restoring.
    task, model, params, mesh, what = predict.restore_params(config, workdir)
    return task, model, params, mesh, f'{workdir} {what}'
  task = tasks.get(config)
  model = task.summary_model()  # build_box_detector with the dataset's class count.
  mesh = parallel.make_mesh(config.mesh.data, config.mesh.model)
  key = jax.random.fold_in(jax.random.key(config.seed), 1)  # Training's init stream.
  example = jnp.zeros((1, *task.input_shape), jnp.float32)
  replicated = parallel.replicated(mesh)
  if host_init:
    rng = np.random.default_rng(config.seed)
    params = jax.tree.map(
        lambda s: jax.device_put((0.02 * rng.standard_normal(s.shape)).astype(s.dtype), replicated),
        jax.eval_shape(model.init, key, example))
    return task, model, params, mesh, f'host N(0, 0.02) draws (seed {config.seed}; --quick)'
  params = jax.jit(model.init, out_shardings=replicated)(key, example)
  return task, model, params, mesh, f'model.init (seed {config.seed})'


def predict_function(task, model, mesh):
  """The evaluation's jitted step, as `Detection.evaluator` builds it for `--mode evaluate`."""
  return jax.jit(task.predict_step(model), out_shardings=parallel.batch_sharding(mesh))


def random_batch(task, mesh, batch_size: int, seed: int) -> dict:
  """{'video': uint8 [B, T, H, W, 3]} of random pixels, on the devices as evaluation puts it."""
  local = parallel.per_process_batch_size(batch_size, mesh)
  video = np.random.default_rng(seed).integers(0, 256, (local, *task.input_shape), np.uint8)
  return parallel.global_batch({'video': video}, mesh)


def time_calls(fn, args, *, iters: int, warmup: int, repeats: int):
  """(seconds per call of each round, the last outputs); every call waited for."""
  out = None
  for _ in range(warmup):
    out = jax.block_until_ready(fn(*args))
  rounds = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(iters):
      out = jax.block_until_ready(fn(*args))
    rounds.append((time.perf_counter() - start) / iters)
  return rounds, out


def measure(predict_fn, params, batch, batch_size: int, **timing) -> dict:
  """One row: compile time, then fps over the timed rounds."""
  start = time.perf_counter()
  compiled = predict_fn.lower(params, batch).compile()
  compile_s = time.perf_counter() - start
  rounds, out = time_calls(compiled, (params, batch), **timing)
  fps = [batch_size / s for s in rounds]
  median = float(np.median(fps))
  return {'compile_s': compile_s, 'call_s': rounds, 'fps_runs': fps, 'fps_median': median,
          'fps_min': min(fps), 'fps_max': max(fps), 'ms_per_frame': 1e3 / median,
          'detections_per_frame': float(np.asarray(out['valid']).sum(-1).mean())}


def run(args, overrides) -> dict:
  """Every (temporal, batch) row, in order, with what the report says about the run."""
  base = load_config(args.config, overrides)
  modes = (args.temporal.split(',') if args.temporal
           else [base.model.yolo.temporal] if args.workdir else ['none', 'attention'])
  batches = [int(b) for b in args.batch.split(',')]
  timing = dict(iters=args.iters or (2 if args.quick else 10),
                warmup=args.warmup or (1 if args.quick else 3), repeats=args.repeats)
  log = lambda *a: print(*a, file=sys.stderr, flush=True)
  log(f'{machine()}; load average {os.getloadavg()[0]:.1f}')
  rows, weights = [], ''
  for mode in modes:
    config = load_config(args.config, overrides, mode)
    task, model, params, mesh, weights = detector(config, args.workdir, args.quick)
    num_params = cost.count_params(params)
    gflops = cost.forward_flops_per_clip(model, params, task.input_shape,
                                         **task.apply_kwargs) / 1e9
    predict_fn = predict_function(task, model, mesh)
    reads = 1 if mode == 'none' else config.data.num_frames
    for b in batches:
      row = {'temporal': mode, 'batch': b, 'frames_read_per_detected': reads,
             'num_params': num_params, 'gflops_per_frame': gflops}
      try:
        row.update(measure(predict_fn, params, random_batch(task, mesh, b, config.seed), b,
                           **timing))
        log(f"  {mode:9s} batch {b:3d}: {row['fps_median']:9.1f} fps ({row['fps_min']:.1f}-"
            f"{row['fps_max']:.1f}), compile {row['compile_s']:.1f} s, "
            f"load {os.getloadavg()[0]:.1f}")
      except Exception as e:  # One failed row (e.g. out of memory) must not lose the others.
        row['error'] = f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'
        log(f'  {mode} batch {b}: failed: {row["error"]}')
      rows.append(row)
  for row in rows:  # The ratio to the single-frame detector, measured in this run.
    none = [r for r in rows if r['temporal'] == 'none' and r['batch'] == row['batch']]
    if 'error' not in row and none and 'error' not in none[0]:
      row['vs_none'] = row['fps_median'] / none[0]['fps_median']
  data = base.data
  return {'rows': rows, 'weights': weights, 'timing': timing,
          'input': f'(input frames)x{data.height}x{data.width}x3 uint8',
          'num_frames': max(r['frames_read_per_detected'] for r in rows),
          'dtype': base.model.dtype}


HEADER = ('| temporal | batch | input frames / detected | params | GFLOPs / frame | compile s '
          '| fps (median) | fps min | fps max | ms / frame | vs none | det / frame |')


def table_markdown(rows: list[dict]) -> list[str]:
  lines = [HEADER, '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
  for r in rows:
    head = f"| {r['temporal']} | {r['batch']} | {r['frames_read_per_detected']} | "
    if 'error' in r:
      lines.append(head + f"{r['num_params']:,} | {r['gflops_per_frame']:.3f} | "
                   f"error: {r['error']} | | | | | | |")
      continue
    vs_none = f"{r['vs_none']:.2f}x" if 'vs_none' in r else 'n/a'
    lines.append(head + f"{r['num_params']:,} | {r['gflops_per_frame']:.3f} | "
                 f"{r['compile_s']:.1f} | {r['fps_median']:.1f} | {r['fps_min']:.1f} | "
                 f"{r['fps_max']:.1f} | {r['ms_per_frame']:.2f} | {vs_none} | "
                 f"{r['detections_per_frame']:.1f} |")
  return lines


def report_markdown(result: dict) -> str:
  t = result['timing']
  return '\n'.join([
      f"# Detector inference: {result['machine']}", '',
      f"Command: `{result['command']}`  ",
      f"jax {result['jax']}, device {result['device']}; input {result['input']} per clip, "
      f"model dtype {result['dtype']}; weights: {result['weights']}; load average (1 min) "
      f"{result['load'][0]:.1f} before, {result['load'][1]:.1f} after; "
      f"{result['total_s']:.0f} s in all.", '',
      *table_markdown(result['rows']), '',
      f"fps: detected frames per second (batch / seconds per call) of the task's jitted "
      f"eval step (forward + box decoding + NMS), every call waited for; median, min and max "
      f"of {t['repeats']} rounds of {t['iters']} calls after {t['warmup']} warm-up calls. "
      f"With temporal != none each detected frame reads up to {result['num_frames']} input "
      "frames (the 'input frames / detected' column). GFLOPs: the network forward per clip (XLA cost "
      "analysis), NMS not included. det / frame: valid boxes after NMS (random input)."])


def main() -> None:
  overrides, argv = config_lib.split_overrides(sys.argv[1:])
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                   epilog='Config overrides: --config.a.b=value.')
  parser.add_argument('--config', default='configs/detection.py')
  parser.add_argument('--temporal', default='',
                      help="comma list of none,mean,attention (default none,attention; with "
                           "--workdir the config's mode)")
  parser.add_argument('--batch', default='1,16', help='comma list of batch sizes')
  parser.add_argument('--repeats', type=int, default=3, help='timed rounds per row')
  parser.add_argument('--iters', type=int, default=0, help='calls per round (0: 10, quick 2)')
  parser.add_argument('--warmup', type=int, default=0, help='untimed calls (0: 3, quick 1)')
  parser.add_argument('--workdir', default='', help="a trained run's weights instead of random")
  parser.add_argument('--quick', action='store_true', help='64x64 frames, tiny widths, 2 calls')
  parser.add_argument('--out', default='',
                      help='output folder (default experiments/results; --quick: its quick/)')
  args = parser.parse_args(argv)
  if args.quick and args.workdir:
    parser.error('--quick changes the model and frame size, which a checkpoint fixes')
  begin, load_before = time.perf_counter(), os.getloadavg()[0]
  try:
    result = run(args, (QUICK_OVERRIDES if args.quick else ()) + tuple(overrides))
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  device = jax.devices()[0]
  result.update(command=shlex.join(['python', 'experiments/bench_detector.py', *sys.argv[1:]]),
                machine=machine(), jax=jax.__version__, device=str(device.device_kind),
                platform=device.platform, xla_flags=os.environ.get('XLA_FLAGS', ''),
                quick=args.quick, load=[load_before, os.getloadavg()[0]],
                total_s=time.perf_counter() - begin)
  markdown = report_markdown(result)
  out_dir = pathlib.Path(args.out or (RESULTS / 'quick' if args.quick else RESULTS))
  out_dir.mkdir(parents=True, exist_ok=True)
  (out_dir / 'bench_detector.json').write_text(json.dumps(result, indent=1, default=str))
  (out_dir / 'bench_detector.md').write_text(markdown + '\n')
  print(markdown)
  print(f"wrote {out_dir / 'bench_detector.json'}, {out_dir / 'bench_detector.md'}")


if __name__ == '__main__':
  main()
