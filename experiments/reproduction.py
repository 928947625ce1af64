"""Small-scale reproductions of published tables: rows x tasks x seeds, through the CLI.

A table script (timesformer_table1.py, vivit_table2.py, lrcn_table.py) names
its rows -- a model: config, overrides, the paper's top-1 with the paper's
dataset named -- and the tasks to run them on, and calls `main(table)`. Each
(row, task, seed) is one `python -m vidjax.main` run in a subprocess (`run`);
from the runs' results.json it writes OUT/<table>.md and .json: test top-1 as
mean +- std over the seeds beside the paper's number, parameters, GFLOPs per
clip, train step time, the exact protocol and the hardware.

The tasks stand in for the papers' two kinds of dataset, and are always named
as what they are: a synthetic number is never printed as a Kinetics number.
  temporal    synthetic_actions: 12 classes in 6 reversal pairs, so frame order
              decides and an order-blind model is capped at 50% (SSv2's role)
  appearance  synthetic_appearance: the class is the digit and the motion is
              random, so one frame decides (Kinetics-400's and UCF-101's role)

Runs are cached by (config, overrides, seed): a run found in any OUT/*.json
(this table's or another's, e.g. joint attention on the temporal task, which
the TimeSformer and ViViT tables share) is reused, and a table's JSON is
rewritten after every run, so an interrupted table resumes where it stopped.
The cache is read again before each run, so two tables run side by side share
the runs either finishes first. `--tasks temporal` runs one task only.
`--fresh` reruns everything. XLA's compilation cache ($JAX_COMPILATION_CACHE_DIR,
by default under the temp dir) lets seeds 1 and 2 skip seed 0's compilations.

`--quick` is the smoke test that CI runs: tiny data and models, a few steps,
still 3 seeds, run in this process (one import for all runs) with XLA's
optimisations off, which halves compile times. Its numbers mean nothing; its
tables have the full form.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Sequence

REPO = pathlib.Path(__file__).resolve().parent.parent
RESULTS = REPO / 'experiments' / 'results'
if str(REPO) not in sys.path:  # `python experiments/x.py` puts experiments/ first, not the repo.
  sys.path.insert(0, str(REPO))


# ----------------------------------------------------------------------------
# What a table is made of.
# ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Row:
  """One model of a table: how to train it, and what its paper reported."""
  name: str
  config: str  # configs/FILE.py[:VARIANT], relative to the repository.
  overrides: tuple[str, ...] = ()  # '--config.KEY=VALUE', after the scale's.
  paper: dict = dataclasses.field(default_factory=dict)  # {paper dataset: top-1 %}
  paper_cost: str = ''  # The paper's cost of the row, e.g. '455.2 GFLOPs, 58.9 ms'.


@dataclasses.dataclass(frozen=True)
class Task:
  """A dataset, and the papers' datasets whose role it plays."""
  name: str
  dataset: str  # data.dataset
  description: str
  stands_for: tuple[str, ...]  # Paper datasets, in order of preference for the paper column.


TEMPORAL = Task('temporal', 'synthetic_actions',
                '12 classes in 6 reversal pairs (each class is its twin played backwards): '
                'frame order decides, an order-blind model is capped at 50%', ('SSv2', 'EK'))
APPEARANCE = Task('appearance', 'synthetic_appearance',
                  '10 classes, the digit; the motion is random and carries no class '
                  'information: one frame decides', ('K400', 'UCF-101'))


@dataclasses.dataclass(frozen=True)
class Scale:
  """The reduced protocol that every row of every table shares."""
  steps: int
  batch: int
  size: int  # Frames scaled to size x size while decoding (the videos are 64x64).
  num_frames: int
  frame_stride: int
  clips_per_class: tuple[int, int, int]  # train / val / test
  warmup_steps: int
  log_every: int
  models: dict  # {model family: {key: value}}, e.g. {'space_time_attention': {'hidden_size': 64}}
  extra: tuple[str, ...] = ()  # Any other '--config.KEY=VALUE'.

  def model(self, family: str) -> tuple[str, ...]:
    """The overrides that size one model family, for a Row."""
    return tuple(f'--config.model.{family}.{k}={v}' for k, v in self.models.get(family, {}).items())

  def overrides(self) -> list[str]:
    train = [f'num_steps={self.steps}', f'batch_size={self.batch}', f'log_every={self.log_every}',
             f'eval_every={self.steps}', f'checkpoint_every={self.steps}', 'progress_bar=false']
    data = [f'height={self.size}', f'width={self.size}', f'num_frames={self.num_frames}',
            f'frame_stride={self.frame_stride}']
    return ([f'--config.train.{o}' for o in train] + [f'--config.data.{o}' for o in data]
            + [f'--config.optim.warmup_steps={self.warmup_steps}', *self.extra])


# 8 frames at stride 2 as in configs/default.py, at 32x32 (a quarter of its pixels), and many
# small steps: these attention models from scratch sit at chance for ~1,000 steps before they
# learn. Divided, at batch 8 with 2 layers: temporal task 37% test top-1 after 2,000 steps, 68%
# after 3,500; appearance task 70% after 3,000. At batch 16 with 4 layers the temporal task was
# still at chance (13%) after 800 steps, and such a step costs five times one at batch 8 with 2
# layers (~30 ms on 2 cores).
_VIT = dict(patch_size=8, tubelet_size=1, hidden_size=64, num_layers=2, num_heads=4, mlp_dim=256,
            num_temporal_layers=1)
DEFAULT = Scale(steps=3000, batch=8, size=32, num_frames=8, frame_stride=2,
                clips_per_class=(250, 25, 25), warmup_steps=50, log_every=100,
                models={'space_time_attention': _VIT})
# The smoke test's: every row and table in full form, at sizes where the time is the compiles.
# 4 steps log twice, so the step time has an interval after the first (which compiles).
QUICK = Scale(steps=4, batch=8, size=32, num_frames=4, frame_stride=2, clips_per_class=(2, 1, 1),
              warmup_steps=1, log_every=2,
              models={'space_time_attention': dict(_VIT, hidden_size=16, num_layers=1, num_heads=2,
                                                   mlp_dim=32, num_temporal_layers=1),
                      'lrcn': dict(cnn_features=(8, 16), cnn_embed_dim=32, lstm_hidden_size=16),
                      'single_frame': dict(cnn_features=(8, 16), cnn_embed_dim=32)},
              extra=('--config.data.num_workers=0', '--config.mesh.data=1'))


@dataclasses.dataclass(frozen=True)
class Table:
  """A paper's table, reproduced: rows (built for a scale) x tasks."""
  name: str  # The script's stem, experiments/{name}.py, and the outputs' OUT/{name}.md, .json
  title: str
  source: str  # The paper, its setting and what it found.
  tasks: tuple[Task, ...]
  rows: Callable[[Scale], list[Row]]
  notes: tuple[str, ...] = ()  # Where the protocol departs from the paper's.
  findings: Callable[[dict], list[str]] | None = None  # {(task, row): summary} -> lines


# ----------------------------------------------------------------------------
# One run.
# ----------------------------------------------------------------------------

def compile_cache_env(quick: bool = False) -> dict:
  """Environment defaults: XLA's persistent compilation cache, and for --quick no optimisations."""
  env = {'JAX_COMPILATION_CACHE_DIR': str(pathlib.Path(tempfile.gettempdir()) / 'vidjax_jax_cache'),
         'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0'}
  if quick:
    env['JAX_DISABLE_MOST_OPTIMIZATIONS'] = '1'
  return {k: os.environ.get(k, v) for k, v in env.items()}


def _train_in_process(argv: Sequence[str], workdir: pathlib.Path) -> None:
  """What `python -m vidjax.main ARGV` does in train mode, in this process."""
  from absl import flags
  from vidjax import config as config_lib
  from vidjax import train
  if not flags.FLAGS.is_parsed():  # grain reads absl flags; we are not under absl.app.run.
    flags.FLAGS.mark_as_parsed()
  overrides, rest = config_lib.split_overrides(list(argv))
  spec = rest[rest.index('--config') + 1]
  train.train_and_evaluate(config_lib.load(str(REPO / spec), overrides), str(workdir))


def _step_ms(workdir: pathlib.Path, batch: int) -> float | None:
  """Median train step time over the logged intervals, the first (with compilation) left out."""
  path = workdir / 'metrics.jsonl'
  if not path.exists():
    return None
  rates = [r['train/clips_per_second'] for r in map(json.loads, path.read_text().splitlines())
           if 'train/clips_per_second' in r]
  rates = rates[1:] or rates
  return 1000 * batch / statistics.median(rates) if rates else None


def run(config: str, overrides: Sequence[str], workdir: str | os.PathLike, *,
        in_process: bool = False, env: dict | None = None) -> dict:
  """Trains and tests one row in a fresh workdir: `python -m vidjax.main` in a subprocess.

  With `in_process`, the same training runs in this process instead (what --quick
  does, to pay for imports once); `env` is added to the subprocess's environment.

  Returns results.json's numbers plus `step_ms` (median train step), `process_s`
  (the whole command, imports and compilation included), `load_average` at the
  start and `command`; or `error`, the last line the run printed.
  """
  workdir = pathlib.Path(workdir)
  shutil.rmtree(workdir, ignore_errors=True)  # Never resume someone else's run.
  workdir.mkdir(parents=True)
  argv = ['--config', config, *overrides]
  record = {'command': shlex.join(['python', '-m', 'vidjax.main', *argv, '--workdir', 'WORKDIR']),
            'load_average': os.getloadavg()[0]}
  start = time.time()
  error = None
  if in_process:
    with open(workdir / 'console.log', 'w') as log, contextlib.redirect_stdout(log):
      try:
        _train_in_process(argv, workdir)
      except Exception as e:  # noqa: BLE001 -- one row failing must not stop the table.
        error = f'{type(e).__name__}: {e}'.splitlines()[0]
  else:
    done = subprocess.run([sys.executable, '-m', 'vidjax.main', *argv, '--workdir', str(workdir)],
                          cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {}), 'PYTHONUNBUFFERED': '1'})
    (workdir / 'console.log').write_text(done.stdout + done.stderr)
    if done.returncode:
      lines = [line for line in done.stderr.splitlines() if line.strip()] or ['(no output)']
      error = f'exit {done.returncode}: {lines[-1]}'
  record['process_s'] = time.time() - start
  if error is None and not (workdir / 'results.json').exists():
    error = f'no results.json in {workdir}'
  if error:
    print(f'  failed: {error} (log: {workdir / "console.log"})', file=sys.stderr, flush=True)
    return {**record, 'error': error}
  results = json.loads((workdir / 'results.json').read_text())
  batch = next((int(o.split('=')[1]) for o in reversed(overrides)
                if o.startswith('--config.train.batch_size=')), None)
  if batch is None:
    from vidjax import config as config_lib
    batch = config_lib.load(str(REPO / config)).train.batch_size
  keep = ('test_top1', 'test_top5', 'eval_top1', 'num_params', 'gflops_per_clip', 'step',
          'devices', 'wall_seconds')
  return {**record, **{k: results[k] for k in keep if k in results},
          'step_ms': _step_ms(workdir, batch)}


# ----------------------------------------------------------------------------
# A table.
# ----------------------------------------------------------------------------

def dataset_root(task: Task, scale: Scale) -> pathlib.Path:
  """Generates `task`'s dataset at `scale` once, beside the CLI's cache, never over it."""
  from vidjax.data import registry
  ensure = registry.get(task.dataset).generate
  name = task.dataset
  if scale.clips_per_class != DEFAULT.clips_per_class:  # Another size: another folder.
    name += '_' + '-'.join(map(str, scale.clips_per_class))
  root = registry.cache_dir() / name
  ensure(root, clips_per_class=scale.clips_per_class, num_processes=min(os.cpu_count() or 1, 4))
  return root


def task_overrides(task: Task, root: pathlib.Path, scale: Scale) -> list[str]:
  clips = '(' + ','.join(map(str, scale.clips_per_class)) + ')'
  return [f'--config.data.dataset={task.dataset}', f'--config.data.root={root}',
          f'--config.data.synthetic_clips_per_class={clips}']


def run_key(config: str, overrides: Sequence[str], seed: int, data_id: str = '') -> str:
  """What identifies a run: the config, its overrides in any order, the seed, and the data.

  `data_id` is the generated dataset's DONE record (format version, size, seed), so a
  dataset rendered differently is never mistaken for the cached one; data.root is left
  out, so another cache folder holding the same data reuses the runs.
  """
  kept = sorted(o for o in overrides if not o.startswith('--config.data.root='))
  return hashlib.sha1(json.dumps([config, kept, seed, data_id]).encode()).hexdigest()[:16]


def _cached_runs(out: pathlib.Path) -> dict:
  """{key: run} of every finished run recorded in OUT/*.json."""
  found = {}
  for path in sorted(out.glob('*.json')):
    try:
      runs = json.loads(path.read_text()).get('runs', [])
    except (ValueError, AttributeError):
      continue
    for r in runs:
      if isinstance(r, dict) and 'key' in r and 'error' not in r:
        found.setdefault(r['key'], {**r, 'computed_in': r.get('computed_in', path.stem)})
  return found


def _device(in_process: bool) -> dict:
  """The accelerator the runs use, asked of jax (in a subprocess, so no GPU memory is held here)."""
  code = ('import jax, json; d = jax.devices(); print(json.dumps({"jax": jax.__version__, '
          '"platform": d[0].platform, "device_kind": d[0].device_kind, "devices": len(d)}))')
  if in_process:
    import jax
    d = jax.devices()
    return {'jax': jax.__version__, 'platform': d[0].platform, 'device_kind': d[0].device_kind,
            'devices': len(d)}
  done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                        env={**os.environ, 'XLA_PYTHON_CLIENT_PREALLOCATE': 'false'})
  try:
    return json.loads(done.stdout.strip().splitlines()[-1])
  except (ValueError, IndexError):
    return {'error': done.stderr.strip()[-300:]}


def cpu_model() -> str:
  """The CPU's model name (/proc/cpuinfo), else what platform knows."""
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def hardware(runs: list[dict], device: dict) -> tuple[dict, str]:
  """(fields, one line): CPU, cores, load averages while the runs ran, jax and its device."""
  loads = [r['load_average'] for r in runs if 'load_average' in r]
  fields = {'cpu': cpu_model(), 'machine': platform.machine(), 'cores': os.cpu_count(),
            'load_average_at_run_starts': [min(loads), max(loads)] if loads else None,
            'load_average_now': list(os.getloadavg()), **device}
  line = (f"{fields['cpu']} ({fields['machine']}), {fields['cores']} cores; 1-minute load average "
          f"at the runs' starts {min(loads):.1f}-{max(loads):.1f} "
          f"({fields['cores']} = all cores busy; above it, other jobs shared them and "
          f"the times are inflated)" if loads else
          f"{fields['cpu']} ({fields['machine']}), {fields['cores']} cores")
  if 'platform' in device:
    kind = '' if device['device_kind'] == device['platform'] else f" ({device['device_kind']})"
    line += f"; jax {device['jax']} on {device['devices']} x {device['platform']}{kind}"
  return fields, line


def protocol(scale: Scale, rows: list[Row], quick: bool) -> tuple[dict, str]:
  """(fields, text) read from the runs' own configs, so the text cannot drift from them."""
  from vidjax import config as config_lib
  configs = {row.name: config_lib.load(str(REPO / row.config), [
      o[len('--config.'):] for o in (*scale.overrides(), *row.overrides)]) for row in rows}
  c = next(iter(configs.values()))
  d, t, o = c.data, c.train, c.optim
  rates = {}
  for name, cfg in configs.items():
    rates.setdefault(f'{cfg.optim.learning_rate:g}', []).append(name)
  views = d.eval_num_clips * (3 if d.eval_crop == 'three' else 1)
  fields = {
      'num_frames': d.num_frames, 'frame_stride': d.frame_stride, 'sampling': d.sampling,
      'resolution': [d.height, d.width], 'train_crop': d.train_crop, 'flip': d.flip,
      'eval_clips': d.eval_num_clips, 'eval_crop': d.eval_crop, 'views_per_video': views,
      'metric': 'test top-1 per video (softmax averaged over the views)',
      'clips_per_class': list(scale.clips_per_class), 'steps': t.num_steps,
      'batch': t.batch_size, 'optimizer': o.name, 'schedule': o.schedule,
      'warmup_steps': o.warmup_steps, 'learning_rate': {k: v for k, v in rates.items()},
      'weight_decay': o.weight_decay, 'label_smoothing': o.label_smoothing,
      'models': {name: {'model': cfg.model.name, **cfg.model[cfg.model.name].to_dict()}
                 for name, cfg in configs.items()},
      'xla_optimisations': not quick}
  level = ('clip-level = video-level (one view)' if views == 1
           else f'video-level over {views} views')
  crop = {'none': 'the full frame', 'center': 'the centre crop', 'three': '3 crops'}[d.eval_crop]
  sizes = {}  # {family and its sizes: row names}
  for name, cfg in configs.items():
    family = cfg.model[cfg.model.name]
    size = ', '.join(f'{k} {v}' for k, v in family.items()
                     if isinstance(v, (int, tuple)) and not isinstance(v, bool) and k != 'unroll')
    sizes.setdefault(f'{cfg.model.name} ({size})', []).append(name)
  text = (f"{d.num_frames} frames at stride {d.frame_stride} ({d.sampling}: random start in "
          f"training, the centred clip in evaluation), {d.height}x{d.width} (the 64x64 videos "
          f"scaled while decoding), train crop {d.train_crop}, flip {'on' if d.flip else 'off'}; "
          f"evaluation {d.eval_num_clips} clip{'s' if d.eval_num_clips > 1 else ''} x {crop}, "
          f"{level}; test top-1 on the "
          f"test split (digit instances unseen in training); "
          f"{'/'.join(map(str, scale.clips_per_class))} train/val/test clips per class; "
          f"{t.num_steps} steps at batch {t.batch_size}, {o.name} with {o.schedule} decay after "
          f"{o.warmup_steps} warm-up steps, peak learning rate "
          + (next(iter(rates)) if len(rates) == 1 else
             '; '.join(f"{lr} ({', '.join(names)})" for lr, names in rates.items()))
          + f", weight decay {o.weight_decay:g}, label smoothing {o.label_smoothing:g}; no "
          f"pre-training; models: " + '; '.join(f"{size} for {', '.join(names)}"
                                                for size, names in sizes.items()) + '.')
  if quick:
    text += (' QUICK SMOKE TEST: tiny data, models and budget, XLA optimisations off, all runs '
             'in one process: the numbers mean nothing.')
  return fields, text


def summarise(runs: list[dict]) -> dict:
  """One row x task: top-1 mean +- std (sample std) over the seeds that finished, costs."""
  done = [r for r in runs if 'error' not in r]
  top1 = [r['test_top1'] for r in done]
  step = [r['step_ms'] for r in done if r.get('step_ms')]
  return {
      'seeds': [r['seed'] for r in runs], 'failed_seeds': [r['seed'] for r in runs if 'error' in r],
      'test_top1': top1,
      'test_top1_mean': statistics.mean(top1) if top1 else None,
      'test_top1_std': statistics.stdev(top1) if len(top1) > 1 else (0.0 if top1 else None),
      'test_top5_mean': statistics.mean(r['test_top5'] for r in done) if done else None,
      'num_params': done[0]['num_params'] if done else None,
      'gflops_per_clip': done[0]['gflops_per_clip'] if done else None,
      'step_ms': statistics.median(step) if step else None,
      'wall_s_mean': statistics.mean(r['wall_seconds'] for r in done) if done else None,
  }


def paper_cell(row: Row, task: Task) -> str:
  """'K400 76.9': the paper's number on the dataset whose role `task` plays, named."""
  for dataset in task.stands_for:
    if dataset in row.paper:
      return f'{dataset} {row.paper[dataset]}'
  return '-'


def finished_results(workdir: pathlib.Path, task: str, num_steps: int) -> dict | None:
  """results.json of a `task` run in `workdir` that reached `num_steps`, else None."""
  try:
    results = json.loads((workdir / 'results.json').read_text())
  except (OSError, ValueError):
    return None
  if results.get('task') != task or results.get('step') != num_steps:
    return None
  return results


def number(value, digits: int = 3) -> str:
  """A table cell: '-' for a missing value."""
  return '-' if value is None else f'{value:.{digits}f}'


def markdown_table(header: Sequence[str], rows: list[list[str]]) -> list[str]:
  return (['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
          + ['| ' + ' | '.join(cells) + ' |' for cells in rows])


def plural(count: int, noun: str) -> str:
  return f'{count} {noun}' + ('s' if count != 1 else '')


def _minutes(seconds: float | None) -> str:
  if seconds is None:
    return '-'
  return f'{seconds:.0f} s' if seconds < 90 else f'{seconds / 60:.1f} min'


def _overrides_of(run_record: dict) -> list[str]:
  """A run's '--config.KEY=VALUE' arguments, the seed left out."""
  return [a for a in shlex.split(run_record['command'])
          if a.startswith('--config.') and not a.startswith('--config.seed=')]


def markdown(table: Table, rows: list[Row], summary: dict, runs: list[dict], protocol_text: str,
             hardware_text: str, command: str, findings: list[str], seeds: Sequence[int]) -> str:
  common = [a for a in _overrides_of(runs[0]) if all(a in _overrides_of(r) for r in runs)]
  has_cost = any(r.paper_cost for r in rows)
  lines = [f'# {table.title}', '', table.source, '', f'Command: `{command}`', '',
           f'**Protocol.** {protocol_text}', '', f'**Hardware.** {hardware_text}', '']
  if table.notes:
    lines += ['**Departures from the paper.** ' + ' '.join(table.notes), '']
  for task in table.tasks:
    roles = [d for d in task.stands_for if any(d in row.paper for row in rows)]
    role = (f'in the role of {" / ".join(roles)}' if roles
            else 'which the paper has no counterpart of')
    lines += [f'## {task.name.capitalize()} task: `{task.dataset}`, {role}', '',
              f'{task.description}.', '',
              f'| model | test top-1 %, mean ± std ({plural(len(seeds), "seed")}) | per seed '
              f'| paper top-1 % '
              f'(paper dataset) |' + (' paper cost |' if has_cost else '')
              + ' params | GFLOPs/clip | train step | train+eval time/run |',
              '|---|---|---|---|' + ('---|' if has_cost else '') + '---|---|---|---|']
    for row in rows:
      s = summary[(task.name, row.name)]
      if s['test_top1_mean'] is None:
        ours, per_seed = 'failed', ''
      else:
        ours = f"{100 * s['test_top1_mean']:.1f} ± {100 * s['test_top1_std']:.1f}"
        per_seed = ', '.join(f'{100 * v:.1f}' for v in s['test_top1'])
      if s['failed_seeds']:
        per_seed += f" (seeds {s['failed_seeds']} failed)"
      cells = [row.name, ours, per_seed, paper_cell(row, task)]
      if has_cost:
        cells.append(row.paper_cost or '-')
      cells += [f"{s['num_params']:,}" if s['num_params'] is not None else '-',
                f"{s['gflops_per_clip']:.3g}" if s['gflops_per_clip'] is not None else '-',
                f"{s['step_ms']:.0f} ms" if s['step_ms'] else '-', _minutes(s['wall_s_mean'])]
      lines.append('| ' + ' | '.join(cells) + ' |')
    lines.append('')
  if findings:
    lines += ['## What it shows', ''] + [f'- {f}' for f in findings] + ['']
  reused = sum(1 for r in runs if r.get('computed_in') != table.name)
  lines += ['## Runs', '',
            f'{len(runs)} runs ({len(rows)} models x {len(table.tasks)} tasks x '
            f'{plural(len(seeds), "seed")}), '
            f'{reused} reused from earlier tables; every run is in `{table.name}.json`. '
            'Top-1 is per video on the test split; std is the sample std over seeds; train step is '
            'the median over logged intervals after the first (which holds the compilation); '
            'train+eval time is the mean of results.json `wall_seconds`. Paper numbers are the '
            'cited table\'s, on the paper\'s own data and models: compare orderings and gaps, '
            'not values.', '',
            f'Each run is `python -m vidjax.main --config CONFIG COMMON ROW --config.seed=SEED '
            f'--workdir WORKDIR`, SEED in {", ".join(map(str, seeds))}, with COMMON:', '',
            f'    {shlex.join(common)}', '', 'and CONFIG ROW:', '']
  for task in table.tasks:
    for row in rows:
      first = next(r for r in runs if r['task'] == task.name and r['row'] == row.name)
      own = [a for a in _overrides_of(first) if a not in common]
      lines.append(f"- {row.name}, {task.name}: `{shlex.join([first['config'], *own])}`")
  return '\n'.join(lines) + '\n'


def _parse(argv: Sequence[str] | None, table: Table) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=table.title)
  parser.add_argument('--quick', action='store_true',
                      help='tiny data and models, a few steps, 3 seeds: a smoke test of the table')
  parser.add_argument('--seeds', type=int, default=3, help='seeds 0..N-1 per row and task')
  parser.add_argument('--steps', type=int, default=0, help='override the scale\'s training steps')
  parser.add_argument('--out', type=pathlib.Path, default=None,
                      help='where {name}.md/.json go (default experiments/results, '
                           'or a temp dir with --quick)')
  parser.add_argument('--workdir', type=pathlib.Path,
                      default=pathlib.Path(tempfile.gettempdir()) / 'vidjax_reproductions',
                      help='where the runs\' workdirs go')
  parser.add_argument('--fresh', action='store_true', help='rerun runs already in OUT/*.json')
  parser.add_argument('--tasks', nargs='+', choices=[t.name for t in table.tasks],
                      default=[t.name for t in table.tasks],
                      help='run only these tasks (the table then holds only them, no findings)')
  parser.add_argument('--in_process', action='store_true',
                      help='run in this process, not a subprocess per run (implied by --quick)')
  return parser.parse_args(argv)


def main(table: Table, argv: Sequence[str] | None = None) -> int:
  """Runs (or reuses) every row x task x seed of `table`; writes OUT/{name}.md and .json."""
  args = _parse(argv, table)
  scale = QUICK if args.quick else DEFAULT
  if args.steps:
    scale = dataclasses.replace(scale, steps=args.steps)
  in_process = args.quick or args.in_process
  out = args.out or (pathlib.Path(tempfile.gettempdir()) / 'vidjax_reproductions_quick'
                     if args.quick else RESULTS)
  out.mkdir(parents=True, exist_ok=True)
  env = compile_cache_env(quick=args.quick)
  if in_process and 'jax' not in sys.modules:  # Read by jax when it is imported.
    os.environ.update({k: v for k, v in env.items() if k not in os.environ})
  seeds = list(range(args.seeds))
  if len(args.tasks) < len(table.tasks):  # The findings compare tasks: none for a part.
    table = dataclasses.replace(table, tasks=tuple(t for t in table.tasks if t.name in args.tasks),
                                findings=None)
  rows = table.rows(scale)
  command = shlex.join(['python', f'experiments/{table.name}.py',
                        *(sys.argv[1:] if argv is None else argv)])
  protocol_fields, protocol_text = protocol(scale, rows, args.quick)
  cached = {} if args.fresh else _cached_runs(out)

  runs: list[dict] = []
  device: dict = {}

  def write() -> tuple[dict, str]:
    summary = {}
    for task in table.tasks:
      for row in rows:
        mine = [r for r in runs if r['task'] == task.name and r['row'] == row.name]
        if mine:
          summary[(task.name, row.name)] = summarise(mine)
    complete = len(summary) == len(rows) * len(table.tasks)
    findings = table.findings(summary) if table.findings and complete else []
    hardware_fields, hardware_text = hardware(runs, device)
    every_run = len(runs) == len(rows) * len(table.tasks) * len(seeds)
    doc = {'table': table.name, 'title': table.title, 'source': table.source, 'command': command,
           'quick': args.quick, 'seeds': seeds, 'complete': complete and every_run,
           'protocol': protocol_text, 'protocol_fields': protocol_fields,
           'hardware': hardware_text, 'hardware_fields': hardware_fields,
           'notes': list(table.notes), 'findings': findings,
           'tasks': [dataclasses.asdict(t) for t in table.tasks],
           'rows': [{'name': row.name, 'task': task.name, 'config': row.config,
                     'overrides': list(row.overrides), 'paper': row.paper,
                     'paper_top1': paper_cell(row, task), 'paper_cost': row.paper_cost,
                     **summary[(task.name, row.name)]}
                    for task in table.tasks for row in rows if (task.name, row.name) in summary],
           'runs': runs}
    (out / f'{table.name}.json').write_text(json.dumps(doc, indent=2) + '\n')
    text = ''
    if complete:
      text = markdown(table, rows, summary, runs, protocol_text, hardware_text, command, findings,
                      seeds)
      (out / f'{table.name}.md').write_text(text)
    return doc, text

  for task in table.tasks:
    root = dataset_root(task, scale)
    data_id = (root / 'DONE').read_text().strip()
    for row in rows:
      for seed in seeds:
        overrides = [*scale.overrides(), *task_overrides(task, root, scale), *row.overrides,
                     f'--config.seed={seed}']
        key = run_key(row.config, overrides, seed, data_id)
        label = f'{row.name} / {task.name} / seed {seed}'
        if not args.fresh:  # Read again: a table running beside this one may have made it.
          cached.update(_cached_runs(out))
        if key in cached:
          record = cached[key]
          print(f'= {label}: reused from {record["computed_in"]}.json', flush=True)
        else:
          print(f'+ {label}', flush=True)
          record = run(row.config, overrides, args.workdir / key, in_process=in_process, env=env)
          record['computed_in'] = table.name
          if 'error' not in record:
            print(f"  top-1 {record['test_top1']:.3f}, {record['process_s']:.0f} s", flush=True)
        runs.append({**record, 'key': key, 'row': row.name, 'task': task.name, 'seed': seed,
                     'config': row.config})
        if not device:
          device = _device(in_process)
        write()
  doc, text = write()
  print(text)
  print(f'wrote {out / table.name}.md and .json', flush=True)
  return 1 if any('error' in r for r in runs) else 0
