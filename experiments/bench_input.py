"""Input throughput: raw decord decode versus the grain pipeline, same clips.

One run, on one set of generated videos (200 H.264 files of 64 frames at
128x170 by default), measures clips/s of:
  - raw decord, one thread, one clip after another: VideoReader(width, height)
    + get_batch of a random 16-frame clip at stride 2, scaled to 112x112;
  - `pipeline.train_dataset` reading the same clips with 0, 1 and N worker
    processes (one clip at a time per worker, `data.read_threads=1`), then with
    the default `read_threads`, then with training augmentation (random
    resized crop from the native size, flip, colour jitter);
and the ratio of each to raw decode, in wall-clock clips/s and in CPU time
per clip (all threads of the main process plus its workers, from /proc),
which load from other programs disturbs less. The measurements run in rounds
(raw, then each pipeline) and the table shows medians over rounds; a ratio
is the median of the per-round ratios.

Then memory: 10,000 clips through the pipeline with 1 worker (small videos,
so it takes about a minute), sampling the resident size (VmRSS) of the main
process and of its worker processes; growth is the peak of the last 1,000
clips over the peak of the first 1,000.

  python experiments/bench_input.py    # writes experiments/results/bench_input.json
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from vidjax import config as config_lib  # noqa: E402
from vidjax.data import pipeline, sampling, testing  # noqa: E402
from vidjax.data.records import Record  # noqa: E402
from vidjax.tasks.classification import LabelTargets  # noqa: E402

COMMAND = 'python experiments/bench_input.py'
RESULTS = pathlib.Path(__file__).resolve().parent / 'results' / 'bench_input.json'


def make_videos(root: pathlib.Path, count: int, frames: int, height: int, width: int) -> list[str]:
  """`count` distinct H.264 videos with moving texture (real P-frames to decode)."""
  paths = []
  for i in range(count):
    clip = testing.fake_frames(frames, height, width, noise_seed=i)
    paths.append(testing.write_video(str(root / f'v{i:04d}.mp4'), clip, fps=25))
  return paths


def data_config(size: int, num_frames: int, stride: int, workers: int, read_threads: int,
                **overrides):
  data = config_lib.load_defaults().data
  data.num_frames, data.frame_stride = num_frames, stride
  data.height = data.width = size
  data.num_workers, data.read_threads, data.decode_threads = workers, read_threads, 1
  data.max_failed_fraction = 0.0
  for key, value in overrides.items():
    data[key] = value
  return data


def _cpu_seconds(pid: int) -> float:
  """User + system CPU time of a process, all its threads, from /proc."""
  try:
    fields = pathlib.Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
  except OSError:
    return 0.0
  return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def _rss_kib(pid: int) -> int:
  try:
    for line in pathlib.Path(f'/proc/{pid}/status').read_text().splitlines():
      if line.startswith('VmRSS:'):
        return int(line.split()[1])
  except OSError:
    pass
  return 0


def _children(pid: int) -> list[int]:
  found = []
  for task in pathlib.Path(f'/proc/{pid}/task').glob('*'):
    try:
      found += [int(c) for c in (task / 'children').read_text().split()]
    except OSError:
      pass
  return found + [g for c in found for g in _children(c)]


def raw_decode(paths: list[str], clips: int, size: int, num_frames: int,
               stride: int) -> tuple[float, float]:
  """(clips/s, CPU ms per clip) of plain decord, one thread, no pipeline."""
  import decord
  rng = np.random.default_rng(0)
  order = rng.permutation(np.resize(np.arange(len(paths)), clips))
  cpu, begin = time.process_time(), time.perf_counter()
  for i in order:
    reader = decord.VideoReader(paths[i], width=size, height=size, num_threads=1)
    indices = sampling.dense_indices(len(reader), num_frames, stride, rng=rng)
    frames = reader.get_batch(indices).asnumpy()  # [T, size, size, 3]
    assert frames.shape == (num_frames, size, size, 3)
    del reader
  wall, cpu = time.perf_counter() - begin, time.process_time() - cpu
  return clips / wall, 1000 * cpu / clips


def pipeline_run(paths: list[str], data, clips: int,
                 batch_size: int = 8) -> tuple[float, float, float]:
  """(clips/s, main CPU ms per clip, workers' CPU ms per clip) of train_dataset.

  Timed from its second batch on, once the workers have started.
  """
  records = [Record(p, {'label': 0}) for p in paths]
  failures = pipeline.FailureCounter('bench', 0.0)
  it = iter(pipeline.train_dataset(records, data, batch_size=batch_size, seed=0,
                                   failures=failures, targets=LabelTargets()))
  next(it)
  workers = _children(os.getpid())
  cpu_workers = sum(_cpu_seconds(w) for w in workers)
  cpu, begin = time.process_time(), time.perf_counter()
  seen = 0
  while seen < clips:
    seen += len(next(it)['label'])
  wall, cpu = time.perf_counter() - begin, time.process_time() - cpu
  cpu_workers = sum(_cpu_seconds(w) for w in workers) - cpu_workers
  it.close()
  return seen / wall, 1000 * cpu / seen, 1000 * cpu_workers / seen


def memory_run(paths: list[str], data, clips: int, window: int, batch_size: int = 10) -> dict:
  """Peak RSS (MiB) of the main process and its workers, first vs last `window` clips."""
  records = [Record(p, {'label': 0}) for p in paths]
  failures = pipeline.FailureCounter('bench', 0.0)
  it = iter(pipeline.train_dataset(records, data, batch_size=batch_size, seed=0,
                                   failures=failures, targets=LabelTargets()))
  main_pid = os.getpid()
  samples = []  # (clips read, main KiB, workers KiB)
  seen = 0
  begin = time.perf_counter()
  while seen < clips:
    seen += len(next(it)['label'])
    if seen % 100 == 0:
      workers = sum(_rss_kib(c) for c in _children(main_pid))
      samples.append((seen, _rss_kib(main_pid), workers))
  seconds = time.perf_counter() - begin
  it.close()
  samples = np.asarray(samples, np.float64)
  first = samples[samples[:, 0] <= window]
  last = samples[samples[:, 0] > clips - window]
  result = {'clips': clips, 'seconds': seconds, 'window': window}
  for col, name in ((1, 'main'), (2, 'workers')):
    a, b = float(first[:, col].max() / 1024), float(last[:, col].max() / 1024)
    result[name] = {'first_peak_mib': a, 'last_peak_mib': b,
                    'growth': (b - a) / a if a else float('nan')}
  return result


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--videos', type=int, default=200)
  parser.add_argument('--clips', type=int, default=200, help='clips per throughput measurement')
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--size', type=int, default=112)
  parser.add_argument('--workers', default='', help='comma list; default 0,1,cores')
  parser.add_argument('--memory_clips', type=int, default=10_000)
  parser.add_argument('--out', default=str(RESULTS))
  args = parser.parse_args()
  from absl import flags
  flags.FLAGS.mark_as_parsed()  # grain's worker processes read absl flags.
  cores = len(os.sched_getaffinity(0))
  workers = [int(w) for w in args.workers.split(',')] if args.workers else sorted({0, 1, cores})
  T, STRIDE = 16, 2
  load_before = os.getloadavg()

  with tempfile.TemporaryDirectory(prefix='bench_input_') as tmp:
    tmp = pathlib.Path(tmp)
    t0 = time.perf_counter()
    paths = make_videos(tmp / 'big', args.videos, 64, 128, 170)
    small = make_videos(tmp / 'small', 50, 32, 64, 64)
    print(f'generated {len(paths)} + {len(small)} videos in {time.perf_counter() - t0:.0f} s',
          flush=True)

    default_threads = config_lib.load_defaults().data.read_threads
    runs = [(f'pipeline, {w} worker{"s" if w != 1 else ""}',
             data_config(args.size, T, STRIDE, w, 1)) for w in workers]
    runs.append((f'pipeline, 1 worker, read_threads={default_threads} (the default)',
                 data_config(args.size, T, STRIDE, 1, default_threads)))
    runs.append(('pipeline, 1 worker, + random resized crop from 128x170, flip, colour jitter',
                 data_config(args.size, T, STRIDE, 1, 1, train_crop='random_resized',
                             crop_scale=(0.25, 1.0), flip=True, flip_label_map=False,
                             color_jitter=(0.4, 0.4, 0.4))))
    # Rounds of raw, then every pipeline, so load from other programs falls on all alike.
    raw, runs_out = [], {name: [] for name, _ in runs}
    for r in range(args.rounds):
      raw.append(raw_decode(paths, args.clips, args.size, T, STRIDE))
      print(f'round {r}: raw decord {raw[-1][0]:.1f} clips/s, {raw[-1][1]:.2f} CPU ms/clip',
            flush=True)
      for name, data in runs:
        runs_out[name].append(pipeline_run(paths, data, args.clips))
        rate, main_ms, worker_ms = runs_out[name][-1]
        print(f'round {r}: {name}: {rate:.1f} clips/s, CPU ms/clip {main_ms:.2f} main + '
              f'{worker_ms:.2f} workers', flush=True)
    raw_rate, raw_cpu = (float(np.median(x)) for x in zip(*raw))
    rows = []  # name, clips/s, ratio, main CPU ms, workers CPU ms, CPU ratio
    for name, out in runs_out.items():
      rates, mains, workers_ms = (np.asarray(x) for x in zip(*out))
      cpu = mains + workers_ms
      rows.append((name, float(np.median(rates)),
                   float(np.median(rates / np.asarray([x[0] for x in raw]))),
                   float(np.median(mains)), float(np.median(workers_ms)),
                   float(np.median(np.asarray([x[1] for x in raw]) / cpu))))

    memory = memory_run(small, data_config(64, 8, 2, 1, 1), args.memory_clips, 1000)
    print(f'memory: {memory}', flush=True)

  load_after = os.getloadavg()
  machine = (f'{platform.processor() or platform.machine()}, {cores} cores, '
             f'load average {load_before[0]:.1f} before / {load_after[0]:.1f} after')
  table = ['| reader: 16 frames at stride 2 scaled to 112x112, of 64-frame 128x170 H.264 '
           '| clips/s | ratio to raw | CPU ms/clip main + workers | CPU ratio to raw |',
           '|---|---:|---:|---:|---:|',
           f'| raw decord, 1 thread | {raw_rate:.1f} | 1.00 | {raw_cpu:.2f} | 1.00 |']
  table += [f'| {name} | {rate:.1f} | {ratio:.2f} | {main_ms:.2f} + {worker_ms:.2f} | '
            f'{cpu_ratio:.2f} |' for name, rate, ratio, main_ms, worker_ms, cpu_ratio in rows]
  mem = (f"{memory['clips']:,} clips with 1 worker in {memory['seconds']:.0f} s; peak RSS, first "
         f"vs last {memory['window']:,} clips: worker {memory['workers']['first_peak_mib']:.0f} -> "
         f"{memory['workers']['last_peak_mib']:.0f} MiB ({memory['workers']['growth']:+.1%}), "
         f"main {memory['main']['first_peak_mib']:.0f} -> "
         f"{memory['main']['last_peak_mib']:.0f} MiB ({memory['main']['growth']:+.1%})")
  print()
  print('\n'.join(table))
  print()
  print(mem)
  print(f'machine: {machine}')
  print(f'command: {COMMAND}')
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps({
      'command': COMMAND, 'machine': machine, 'size': args.size, 'clip': [T, STRIDE],
      'videos': args.videos, 'clips_per_measurement': args.clips,
      'rounds': args.rounds,
      'raw': {'clips_per_s': [x[0] for x in raw], 'cpu_ms_per_clip': [x[1] for x in raw],
              'clips_per_s_median': raw_rate, 'cpu_ms_per_clip_median': raw_cpu},
      'pipeline': [{'name': n, 'clips_per_s_median': r, 'ratio_median': q,
                    'main_cpu_ms_per_clip_median': m, 'worker_cpu_ms_per_clip_median': w,
                    'cpu_ratio_median': c,
                    'runs': [dict(zip(('clips_per_s', 'main_cpu_ms_per_clip',
                                       'worker_cpu_ms_per_clip'), x)) for x in runs_out[n]]}
                   for n, r, q, m, w, c in rows],
      'memory': memory, 'table': table,
  }, indent=2))
  print(f'wrote {out}')


if __name__ == '__main__':
  main()
