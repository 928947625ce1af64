"""What a config's model costs, without training it or reading its data.

  python -m vidjax.summary --config configs/space_time_attention.py:joint
  python -m vidjax.summary --config configs/default.py --num_classes 400

Prints the parameter count and forward GFLOPs per clip at the config's
input size (XLA's count on a fully unrolled lowering; see models/cost.py).
The task builds the model (`Task.summary_model`): a classifier gets its
dataset's published class count from the registry, or --num_classes.
"""
from __future__ import annotations

import functools
import sys

import jax
import jax.numpy as jnp
from absl import app, flags

from vidjax import config as config_lib
from vidjax import tasks
from vidjax.errors import UserError
from vidjax.models import cost

_CONFIG = flags.DEFINE_string('config', None, 'Config file, optionally path.py:variant.')
_NUM_CLASSES = flags.DEFINE_integer('num_classes', 0, "Classes of a classifier; 0 = the "
                                    "dataset's published count.")


def summarize(config, num_classes: int | None = None) -> dict:
  """The model of the config's task at the task's input size."""
  task = tasks.get(config)
  model = task.summary_model(num_classes)
  clip = task.input_shape
  params = jax.eval_shape(functools.partial(model.init, **task.apply_kwargs), jax.random.key(0),
                          jnp.zeros((1, *clip)))
  return {'model': config.model.name, 'num_params': cost.count_params(params),
          'gflops_per_clip': cost.forward_flops_per_clip(model, params, clip,
                                                         **task.apply_kwargs) / 1e9,
          'clip_shape': clip}


def main() -> None:
  overrides, argv = config_lib.split_overrides(sys.argv)

  def _main(_):
    try:
      if not _CONFIG.value:
        raise config_lib.ConfigError('--config is required, e.g. --config configs/default.py')
      config = config_lib.load(_CONFIG.value, overrides)
      result = summarize(config, num_classes=_NUM_CLASSES.value or None)
    except UserError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)
    t, h, w, c = result['clip_shape']
    print(f"{_CONFIG.value}: {result['model']}, {result['num_params']:,} parameters, "
          f"{result['gflops_per_clip']:.3f} GFLOPs per {t}x{h}x{w}x{c} clip (forward)")

  app.run(_main, argv=argv)


if __name__ == '__main__':
  main()
