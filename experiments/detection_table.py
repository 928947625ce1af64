"""The detection results table: YOLO variants on the embedded synthetic_objects set.

  python experiments/detection_table.py            # both rows, ~30 min each on 2 CPU cores
  python experiments/detection_table.py --reuse    # read rows whose workdir has finished
  python experiments/detection_table.py --reuse --rescore   # ... and score them again as now
  python experiments/detection_table.py --rows attention --override train.num_steps=100

Each row is one `python -m vidjax.main --config configs/detection.py` run (its
own overrides, then every --override) in WORKDIR_ROOT/<key>, trained through
`reproduction.run`. With --reuse, a row whose workdir holds a results.json at
the configured train.num_steps is read, not rerun; with --rescore too, its
val and test splits are scored again by `--mode evaluate` with the config as it
is now (same weights, so the same boxes; a changed tracker setting changes the
track metrics), from the workdir's evaluation.json. Writes OUT/detection_table.md
and .json and prints the markdown: test and val box metrics (pycocotools) and
track metrics (ByteTrack + trackeval), the val mAP curve of each row (so rows
of different lengths compare at equal steps), per-class test AP and AP50 (and of
every box as one class: what wrong labels cost), the issue's
targets with met / not met computed per row, and published numbers, each named
by its own dataset (not comparable: the embedded set is not COCO or MOT17).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import shlex
import subprocess
import sys
import time
from typing import Sequence

REPO = pathlib.Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python experiments/x.py` puts experiments/ first, not the repo.
  sys.path.insert(0, str(REPO))
# The parent only asks jax what the device is; the runs (subprocesses) need its memory.
os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')

from experiments import reproduction  # noqa: E402

CONFIG = 'configs/detection.py'
NAME = 'detection_table'
SIDECAR = 'detection_table_run.json'  # Written in a workdir this script trained: its hardware.
SCALARS = ('mAP', 'AP50', 'AP75', 'AR100', 'HOTA', 'MOTA', 'IDF1')
HEADERS = ('mAP@[.5:.95]', 'AP50', 'AP75', 'AR100', 'HOTA', 'MOTA', 'IDF1')


@dataclasses.dataclass(frozen=True)
class Row:
  key: str  # Its workdir's name, and what --rows picks.
  name: str
  overrides: tuple[str, ...] = ()  # '--config.KEY=VALUE', before the --override ones.


ROWS = [
    Row('single_frame', 'single frame (YOLOX-style, temporal none)'),
    # Its step runs the backbone on 4 frames, not 1 (about 5x the single frame's step when
    # measured at input_scale 2): fewer steps, so both train in about the same time.
    Row('attention', 'temporal attention over 4 frames',
        ('--config.model.yolo.temporal=attention', '--config.data.num_frames=4',
         '--config.train.num_steps=850', '--config.train.eval_every=425')),
]


@dataclasses.dataclass(frozen=True)
class Target:
  label: str
  split: str
  metric: str  # A results.json field of the split; 'minutes' is wall_seconds / 60.
  threshold: float
  at_most: bool = False


# The targets: test mAP@.5 >= 0.90 and mAP@[.5:.95] >= 0.65 within 30 min of training,
# IDF1 >= 0.80, HOTA >= 0.70.
TARGETS = (Target('test AP50 >= 0.90', 'test', 'AP50', 0.90),
           Target('test mAP@[.5:.95] >= 0.65', 'test', 'mAP', 0.65),
           Target('train+eval <= 30 min', '', 'minutes', 30.0, at_most=True),
           Target('test IDF1 >= 0.80', 'test', 'IDF1', 0.80),
           Target('test HOTA >= 0.70', 'test', 'HOTA', 0.70))

LABEL_MODE_TEXT = {
    'box': "each box its own best class, YOLOX's protocol",
    'multi': "every (box, class) pair above the score threshold, Ultralytics' validation "
             "protocol; the 'box labels' columns give each box its own best class",
    'track': "each tracked box its track's class, voted over the whole video (offline); the "
             "'box labels' columns give each box its own best class, as YOLOX scores it",
}

# (model, dataset, {metric: value}, source): other datasets, never compared by value.
REFERENCES = (
    ('YOLOv8-n', 'COCO val2017, 640 px', {'mAP': 37.3}, 'Ultralytics README'),
    ('ByteTrack (YOLOX-X, CrowdHuman + MOT17 half-train, one setting for all videos)',
     'MOT17 test', {'HOTA': 61.7, 'MOTA': 78.1, 'IDF1': 74.8},
     'MMTracking model zoo, configs/mot/bytetrack'),
    ('ByteTrack (YOLOX-X, thresholds tuned per video)', 'MOT17 test',
     {'HOTA': 63.1, 'MOTA': 80.3, 'IDF1': 77.3}, 'Zhang et al., ByteTrack (ECCV 2022)'),
)


# ----------------------------------------------------------------------------
# One row: its config, whether its workdir has finished, and what it reached.
# ----------------------------------------------------------------------------

def row_overrides(row: Row, extra: Sequence[str]) -> list[str]:
  return [*row.overrides, *extra]


def load_config(overrides: Sequence[str]):
  from vidjax import config as config_lib
  return config_lib.load(str(REPO / CONFIG), config_lib.split_overrides(list(overrides))[0])


def finished(workdir: pathlib.Path, config) -> dict | None:
  """results.json of a detection run that reached config.train.num_steps, else None."""
  return reproduction.finished_results(workdir, 'detection', config.train.num_steps)


def eval_curve(workdir: pathlib.Path) -> list[dict]:
  """The val evaluations of metrics.jsonl: [{step, mAP, AP50, HOTA, IDF1}], by step."""
  from vidjax import report
  return [{'step': r['step'], **{k: r.get(f'eval/{k}') for k in ('mAP', 'AP50', 'HOTA', 'IDF1')}}
          for r in report.read_history(workdir / 'metrics.jsonl') if 'eval/mAP' in r]


def target_checks(record: dict) -> dict:
  """{label: {value, threshold, met}}; a missing number is not met."""
  checks = {}
  for t in TARGETS:
    if t.metric == 'minutes':
      value = record['wall_seconds'] / 60 if record.get('wall_seconds') is not None else None
    else:
      value = record[t.split].get(t.metric)
    met = value is not None and (value <= t.threshold if t.at_most else value >= t.threshold)
    checks[t.label] = {'value': value, 'threshold': t.threshold, 'met': met}
  return checks


def rescore(workdir: pathlib.Path, overrides: Sequence[str]) -> dict:
  """{'eval': ..., 'test': ...} of a finished run scored again by `--mode evaluate`."""
  done = subprocess.run([sys.executable, '-m', 'vidjax.main', '--config', CONFIG, *overrides,
                         '--workdir', str(workdir), '--mode', 'evaluate'],
                        cwd=REPO, capture_output=True, text=True)
  if done.returncode:
    last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ['no output']
    raise SystemExit(f'--rescore {workdir}: {last[0]}')
  fields = json.loads((workdir / 'evaluation.json').read_text())
  return {split: fields[split] for split in ('eval', 'test')}


def run_row(row: Row, extra: Sequence[str], root: pathlib.Path, reuse: bool,
            machine: str, rescored: bool = False) -> dict:
  """Trains the row (or, with reuse, reads its finished workdir); returns its record."""
  overrides = row_overrides(row, extra)
  config = load_config(overrides)
  workdir = root / row.key
  command = shlex.join(['python', '-m', 'vidjax.main', '--config', CONFIG,
                        '--workdir', str(workdir), *overrides])
  record = {'key': row.key, 'name': row.name, 'overrides': overrides, 'command': command,
            'workdir': str(workdir), 'num_steps': config.train.num_steps,
            'batch_size': config.train.batch_size}
  results = finished(workdir, config) if reuse else None
  if results is not None:
    print(f'= {row.key}: reused {workdir}/results.json (step {results["step"]})',
          file=sys.stderr, flush=True)
    sidecar = workdir / SIDECAR
    ran = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    record.update(reused=True, machine=ran.get('machine'), process_s=ran.get('process_s'),
                  load_average=ran.get('load_average'))
    if rescored:
      print(f'  scoring {row.key} again with the config as it is now', file=sys.stderr, flush=True)
      results = {**results, **rescore(workdir, overrides)}
      record['rescored'] = True
  else:
    print(f'+ {row.key}: training in {workdir}', file=sys.stderr, flush=True)
    done = reproduction.run(CONFIG, overrides, workdir)
    if 'error' in done:
      return {**record, 'error': done['error']}
    # `run` keeps classification's fields only: the detection numbers come from the file.
    results = json.loads((workdir / 'results.json').read_text())
    ran = {'machine': machine, 'process_s': done['process_s'],
           'load_average': done['load_average']}
    (workdir / SIDECAR).write_text(json.dumps(ran, indent=2) + '\n')
    record.update(reused=False, **ran)
    print(f"  test mAP {results['test']['mAP']:.3f}, {done['process_s']:.0f} s",
          file=sys.stderr, flush=True)
  record.update({k: results.get(k) for k in ('step', 'wall_seconds', 'num_params',
                                             'gflops_per_clip')})
  record['step_ms'] = reproduction._step_ms(workdir, config.train.batch_size)
  record.update(test=results['test'], eval=results['eval'], curve=eval_curve(workdir))
  record['targets'] = target_checks(record)
  return record


# ----------------------------------------------------------------------------
# The tables.
# ----------------------------------------------------------------------------

def number(value, digits: int = 3) -> str:
  return reproduction.number(value, digits)


_table = reproduction.markdown_table


def protocol(config) -> tuple[dict, str]:
  """(fields, one line): the dataset's counts from its manifest, and how rows are scored."""
  from vidjax.data import registry
  root = registry.dataset_root(config.data)
  try:
    manifest = json.loads((root / 'manifest.json').read_text())
  except (OSError, ValueError):
    manifest = {}
  counts = manifest.get('counts', {})
  classes = manifest.get('classes', [])
  splits = ('train', 'val', 'test')
  if counts:
    per = lambda key: '/'.join(f"{counts[s][key]:,}" for s in splits)
    data = (f"train/val/test {per('videos')} videos, {per('frames')} frames, {per('boxes')} "
            f"boxes ({per('ignored')} of them crowd, ignored), {per('tracks')} tracks; "
            f"rendered at {manifest['params']['size']}x{manifest['params']['size']}")
  else:
    data = f'(no manifest.json at {root})'
  d, mode = config.data, config.detection.label_mode
  text = (f'`synthetic_objects` ({root}): {data}; {len(classes) or "?"} classes '
          f'({", ".join(classes)}). Read at {d.height}x{d.width}; a detection sees the frame it '
          f'detects (data.num_frames={d.num_frames}; a row with --config.data.num_frames=4 sees 4 '
          f'frames at stride {d.frame_stride} ending at it). Every frame of every val and test video is detected; boxes are scored '
          f'by pycocotools (COCO mAP@[.5:.95], AP50, AP75, AR100, per-class AP; classes by '
          f'detection.label_mode={mode!r}: {LABEL_MODE_TEXT[mode]}), ByteTrack tracks '
          f'by trackeval (HOTA, MOTA, IDF1). Val is scored every train.eval_every steps and at '
          f'the end, test once at the end. Batch {config.train.batch_size}, '
          f'{config.optim.name} at {config.optim.learning_rate:g}, {config.optim.warmup_steps} '
          f'warm-up steps then {config.optim.schedule}, seed {config.seed}.')
  return {'dataset_root': str(root), 'manifest': manifest}, text


def markdown(records: list[dict], protocol_text: str, hardware_text: str, command: str) -> str:
  ok = [r for r in records if 'error' not in r]
  lines = ['# Object detection and tracking on the embedded synthetic_objects set', '',
           f'Command: `{command}`', '', f'**Protocol.** {protocol_text}', '',
           f'**Hardware.** {hardware_text}', '']
  for r in records:
    if 'error' in r:
      lines += [f"**{r['name']} failed:** {r['error']}", '']
  lines += ['## Test split', '']
  lines += _table(('detector', 'steps', 'train+eval time (min)', 'step (ms)', 'params',
                   'GFLOPs/clip', *(f'test {h}' for h in HEADERS), 'test mAP, box labels',
                   'test AP50, box labels'),
                  [[r['name'], str(r['step']), number(r['wall_seconds'] / 60, 1),
                    number(r['step_ms'], 0), f"{r['num_params']:,}",
                    number(r['gflops_per_clip'], 3), *(number(r['test'][k]) for k in SCALARS),
                    *(number(r['test'].get(f'box_label_{k}', r['test'][k]))
                      for k in ('mAP', 'AP50'))]
                   for r in ok])
  lines += ['', '## Val split (at the last step)', '']
  lines += _table(('detector', *(f'val {h}' for h in HEADERS)),
                  [[r['name'], *(number(r['eval'][k]) for k in SCALARS)] for r in ok])
  lines += ['', "## The issue's targets", '']
  lines += _table(('detector', *(t.label for t in TARGETS), 'all'),
                  [[r['name'], *(f"{'met' if c['met'] else 'not met'} "
                                 f"({number(c['value'], 1 if t.metric == 'minutes' else 3)})"
                                 for t, c in zip(TARGETS, r['targets'].values())),
                    'met' if all(c['met'] for c in r['targets'].values()) else 'not met']
                   for r in ok])
  steps = sorted({p['step'] for r in ok for p in r['curve']})
  lines += ['', '## Val mAP@[.5:.95] during training (rows compared at equal steps)', '']
  lines += _table(('detector', *(f'step {s}' for s in steps)),
                  [[r['name'], *(number(next((p['mAP'] for p in r['curve'] if p['step'] == s),
                                             None)) for s in steps)] for r in ok])
  classes = list(ok[0]['test']['per_class_AP']) if ok else []
  for key, label, agnostic in (('per_class_AP', 'AP@[.5:.95]', 'agnostic_mAP'),
                               ('per_class_AP50', 'AP50', 'agnostic_AP50')):
    lines += ['', f'## Per-class test {label}, and of every box as one class '
              '(- : no such object in the test split, or not scored)', '']
    lines += _table(('detector', *classes, 'any class'),
                    [[r['name'], *(number(r['test'].get(key, {}).get(c)) for c in classes),
                      number(r['test'].get(agnostic))] for r in ok])
  lines += ['', '## Published numbers (their own datasets: not comparable with the rows above)',
            '']
  lines += _table(('model', 'dataset', 'mAP@[.5:.95]', 'HOTA', 'MOTA', 'IDF1', 'source'),
                  [[model, data, *(number(v.get(k), 1) for k in ('mAP', 'HOTA', 'MOTA', 'IDF1')),
                    source] for model, data, v, source in REFERENCES])
  lines += ['', '## Notes', ''] + [f'- {n}' for n in notes(ok)]
  lines += ['', '## Commands', ''] + [f"- {r['name']}: `{r['command']}`" for r in records]
  return '\n'.join(lines) + '\n'


def notes(records: list[dict]) -> list[str]:
  found = ['Train+eval time is results.json `wall_seconds`: from the run\'s set-up to its '
           'results, so it holds compilation, the periodic val evaluations and the final val and '
           'test evaluations as well as the training steps. Step is the median train step over '
           'the logged intervals after the first (which holds the compilation).',
           'Temporal attention runs the backbone on 4 frames for each detected one, so its row '
           'trains for fewer steps within about the same 30-minute budget; the val curve '
           'compares the rows at equal steps.']
  by_key = {r['key']: r for r in records}
  single, attention = by_key.get('single_frame'), by_key.get('attention')
  if single and attention:
    found.append(f"Steps: {attention['num_steps']:,} for attention, {single['num_steps']:,} for "
                 'the single frame.')
  if single and attention and single['step_ms'] and attention['step_ms']:
    ratio = attention['step_ms'] / single['step_ms']
    found.append(f'Measured here: an attention step takes {ratio:.1f}x a single-frame step.')
  rescored = [r['name'] for r in records if r.get('rescored')]
  if rescored:
    found.append('Scored again (--rescore) by `--mode evaluate` with the config as it is now, '
                 'so the val and test numbers are the shipped settings\' (the val curve is the '
                 'training run\'s own): ' + ', '.join(rescored) + '.')
  reused = [r['name'] for r in records if r.get('reused')]
  if reused:
    found.append('Read from earlier runs\' workdirs (--reuse), not rerun: ' + ', '.join(reused)
                 + '.')
  return found


def hardware(records: list[dict], machine: str) -> str:
  """This machine, and any other that trained a reused row; load averages at the rows' starts."""
  parts = [machine]
  for r in records:
    if r.get('machine') and r['machine'] != machine:
      parts.append(f"{r['name']} was trained on {r['machine']}")
  loads = [f"{r['name']} {r['load_average']:.1f}" for r in records
           if r.get('load_average') is not None]
  if loads:
    parts.append('1-minute load average at the start of each run: ' + ', '.join(loads))
  return '; '.join(parts) + '.'


def main(argv: Sequence[str] | None = None) -> int:
  keys = [r.key for r in ROWS]
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--rows', default=','.join(keys), help=f'comma-separated, of {keys}')
  parser.add_argument('--workdir_root', type=pathlib.Path,
                      default=pathlib.Path('/tmp/vidjax_detection_table'),
                      help='each row trains in WORKDIR_ROOT/<key>')
  parser.add_argument('--out', type=pathlib.Path, default=reproduction.RESULTS,
                      help='where detection_table.md and .json go')
  parser.add_argument('--reuse', action='store_true',
                      help='read a row whose workdir finished its num_steps instead of rerunning')
  parser.add_argument('--rescore', action='store_true',
                      help='with --reuse: score reused rows again with the config as it is now')
  parser.add_argument('--override', action='append', default=[], metavar='KEY=VALUE',
                      help='a config override added to every row (repeatable)')
  args = parser.parse_args(argv)
  wanted = [k for k in args.rows.split(',') if k]
  unknown = sorted(set(wanted) - set(keys))
  if unknown or not wanted:
    parser.error(f'--rows: unknown {unknown}; choose from {keys}')
  if args.rescore and not args.reuse:
    parser.error('--rescore scores reused rows again: give --reuse too')
  extra = ['--config.' + o.removeprefix('--config.') for o in args.override]
  command = shlex.join(['python', f'experiments/{NAME}.py',
                        *(sys.argv[1:] if argv is None else argv)])
  from experiments import bench  # jax, and only to name the device.
  machine = bench.machine()

  start = time.time()
  records = [run_row(row, extra, args.workdir_root, args.reuse, machine, args.rescore)
             for row in ROWS if row.key in wanted]
  first = next(r for r in ROWS if r.key in wanted)
  protocol_fields, protocol_text = protocol(load_config(row_overrides(first, extra)))
  hardware_text = hardware(records, machine)
  text = markdown(records, protocol_text, hardware_text, command)
  doc = {'table': NAME, 'command': command, 'config': CONFIG, 'protocol': protocol_text,
         'protocol_fields': protocol_fields, 'hardware': hardware_text, 'machine': machine,
         'targets': [dataclasses.asdict(t) for t in TARGETS],
         'references': [{'model': m, 'dataset': d, 'numbers': v, 'source': s}
                        for m, d, v, s in REFERENCES],
         'notes': notes([r for r in records if 'error' not in r]), 'rows': records,
         'seconds': time.time() - start}
  args.out.mkdir(parents=True, exist_ok=True)
  (args.out / f'{NAME}.json').write_text(json.dumps(doc, indent=2) + '\n')
  (args.out / f'{NAME}.md').write_text(text)
  print(text, end='', flush=True)
  print(f'wrote {args.out / NAME}.md and .json', file=sys.stderr, flush=True)
  return 1 if any('error' in r for r in records) else 0


if __name__ == '__main__':
  sys.exit(main())
