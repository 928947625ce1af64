"""What a config's model costs, without training it or reading its videos.

  python -m vidjax.summary --config configs/space_time_attention.py:joint
  python -m vidjax.summary --config configs/default.py --num_classes 400 --depth 3

Prints the parameter count and forward GFLOPs per clip at the config's
input size (XLA's count on a fully unrolled lowering; see models/cost.py),
the class count and where it came from, then a table per layer down to
--depth (models/cost.py's `layer_costs`), whose rows sum to the total.
The task builds the model (`Task.summary_model`); the class count is
--num_classes, else the dataset's published count, else the class list of
the train split at data.root (registry.class_count).
"""
from __future__ import annotations

import functools
import math
import sys

import jax
import jax.numpy as jnp
from absl import app, flags

from vidjax import config as config_lib
from vidjax import tasks
from vidjax.data import registry
from vidjax.errors import UserError
from vidjax.models import cost

_CONFIG = flags.DEFINE_string('config', None, 'Config file, optionally path.py:variant.')
_NUM_CLASSES = flags.DEFINE_integer('num_classes', 0, "Classes of a classifier; 0 = the "
                                    "dataset's published count, else the one at data.root.")
_DEPTH = flags.DEFINE_integer('depth', 2, 'Nesting of the per-layer table (1 = top-level '
                              'layers only); 0 = no table.')


def summarize(config, num_classes: int | None = None, depth: int = 0) -> dict:
  """The model of the config's task at the task's input size; per layer when depth > 0."""
  task = tasks.get(config)
  if num_classes:
    source = '--num_classes'
  else:
    try:
      num_classes, source = registry.class_count(config.data)
    except UserError as e:  # A layout at data.root that does not read.
      raise UserError(f'{e}; or pass --num_classes') from None
  try:
    model = task.summary_model(num_classes)
  except UserError:
    if num_classes is None:  # `source` is the hint: which count is missing, what to pass.
      raise UserError(source) from None
    raise
  clip = task.input_shape
  params = jax.eval_shape(functools.partial(model.init, **task.apply_kwargs), jax.random.key(0),
                          jnp.zeros((1, *clip)))
  result = {'model': config.model.name, 'num_params': cost.count_params(params),
            'gflops_per_clip': cost.forward_flops_per_clip(model, params, clip,
                                                           **task.apply_kwargs) / 1e9,
            'clip_shape': clip, 'num_classes': num_classes, 'classes_from': source}
  if depth > 0:
    result['layers'] = cost.layer_costs(model, clip, depth, **task.apply_kwargs)
  return result


def layer_table(result: dict) -> list[str]:
  """The per-layer rows as console lines; leaves with no parameters and <0.05% of FLOPs hidden."""
  layers = result['layers']
  total = sum(r['flops'] for r in layers)
  decimals = max(1, 3 - math.floor(math.log10(max(total / 1e9, 1e-9))))  # ~4 digits of the total.
  cells = [('layer', 'module', 'output', 'parameters', 'GFLOPs', '%')]
  for r in layers:
    if r['has_children'] or r['params'] or abs(r['flops']) >= 5e-4 * total:
      name = '  ' * r['depth'] + (r['path'].rsplit('/', 1)[-1] or '(model)')
      cells.append((name + (f" x{r['calls']}" if r['calls'] > 1 else ''), r['module'],
                    'x'.join(map(str, r['output'])), f"{r['params']:,}",
                    f"{round(r['flops'] / 1e9, decimals) + 0.0:.{decimals}f}",  # No -0.00.
                    f"{round(100 * r['flops'] / total, 1) + 0.0:.1f}"))
  widths = [max(len(row[i]) for row in cells) for i in range(6)]
  lines = ['  '.join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
           for row in cells]
  whole = result['gflops_per_clip']
  lines.append(f"sum of rows: {sum(r['params'] for r in layers):,} parameters, {total / 1e9:.{decimals}f} "
               f"GFLOPs ({100 * (total / 1e9 / whole - 1):+.2f}% of the whole-model count); a "
               "layer with rows below it counts only what is not in them")
  if abs(total / 1e9 / whole - 1) > 0.02:  # Measured: within 1% on every config.
    lines.append('note: the rows run every scan step; the whole-model count differs, so one of '
                 "the model's loops is not unrolled by cost.unrolled (XLA counts its body once)")
  return lines


def main() -> None:
  overrides, argv = config_lib.split_overrides(sys.argv)

  def _main(_):
    try:
      if not _CONFIG.value:
        raise config_lib.ConfigError('--config is required, e.g. --config configs/default.py')
      config = config_lib.load(_CONFIG.value, overrides)
      result = summarize(config, num_classes=_NUM_CLASSES.value or None, depth=_DEPTH.value)
    except UserError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)
    shape = 'x'.join(map(str, result['clip_shape']))
    print(f"{_CONFIG.value}: {result['model']}, {result['num_params']:,} parameters, "
          f"{result['gflops_per_clip']:.3f} GFLOPs per {shape} clip (forward)")
    if result['num_classes'] is not None:
      print(f"{result['num_classes']} classes: {result['classes_from']}")
    if 'layers' in result:
      print('\n'.join(layer_table(result)))

  app.run(_main, argv=argv)


if __name__ == '__main__':
  main()
