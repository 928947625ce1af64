"""Converts a checkpoint into a config's model, says what happened to every parameter, saves it.

  python -m vidjax.convert SOURCE --config CONFIG --out DIR [--config.a.b=value ...]

SOURCE is a published file (.pth / .pyth / .safetensors / .npz), a vidjax
workdir or an earlier conversion; the model is CONFIG's, at its dataset's
class count (or --num_classes). It prints one line per parameter -- matched,
resampled, inflated, new (left at its initialisation) or ignored -- and
writes DIR/params.npz, DIR/conversion.txt (the same lines) and
DIR/conversion.json, which `--config.init.checkpoint=DIR` then starts a run
from. A source that cannot become the model is one line and exit 2, and DIR
is not created. Converting inside a run (`--config.init.checkpoint=SOURCE`)
does the same without the files.
"""
from __future__ import annotations

import functools
import json
import pathlib
import shutil
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from vidjax import config as config_lib
from vidjax import tasks
from vidjax.data import registry
from vidjax.errors import UserError
from vidjax.pretrained import init_from, mapping

def fresh_params(config, num_classes: int | None = None):
  """The config's model, initialised from its seed, on the host; and the class count's origin."""
  task = tasks.get(config)
  source = '--num_classes'
  if not num_classes:
    try:
      num_classes, source = registry.class_count(config.data)
    except UserError as e:
      raise UserError(f'{e}; or pass --num_classes') from None
  model = task.summary_model(num_classes)
  init = functools.partial(model.init, **task.apply_kwargs)
  key = jax.random.fold_in(jax.random.key(config.seed), 1)  # The stream a run's init uses.
  params = jax.jit(init)(key, jnp.zeros((1, *task.input_shape)))
  return jax.device_get(params), f'{num_classes} classes ({source})'


def convert(config, out: pathlib.Path, num_classes: int | None = None) -> tuple[list, str]:
  """Writes the conversion of `config.init.checkpoint` to `out`; (entries, source name)."""
  if out.exists() and any(out.iterdir()):
    raise UserError(f'--out {out} exists and is not empty; choose a new folder')
  fresh, classes = fresh_params(config, num_classes)
  params, entries, origin = init_from.initial_params(config, fresh)
  table = mapping.format_table(entries)
  out.parent.mkdir(parents=True, exist_ok=True)
  staging = pathlib.Path(tempfile.mkdtemp(prefix=f'.{out.name}.', dir=out.parent))
  try:  # Written aside, then renamed: an interrupted conversion leaves no half folder.
    np.savez(staging / init_from.CONVERTED_FILE, **init_from.flatten(params))
    (staging / 'conversion.txt').write_text(f'{origin}\n{table}\n')
    (staging / 'conversion.json').write_text(json.dumps({
        'source': origin, 'model': config.model.name, 'classes': classes,
        'config': json.loads(config.to_json()), 'counts': mapping.counts(entries),
        'entries': [dict(target=e.target, action=e.action, source=e.source, shape=list(e.shape),
                         note=e.note) for e in entries]}, indent=1))
    if out.exists():
      out.rmdir()
    staging.rename(out)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return entries, origin


def main() -> None:
  # Defined here, not at import: `convert` is also imported as a library, beside modules
  # (vidjax.summary) that define flags of the same names.
  config_flag = flags.DEFINE_string('config', None, 'Config file, optionally path.py:variant.')
  out_flag = flags.DEFINE_string('out', None, 'Folder to write params.npz and the report to (new).')
  classes_flag = flags.DEFINE_integer('num_classes', 0, "Classes of the model's head; 0 = the "
                                      "dataset's published count, else the one at data.root.")
  overrides, argv = config_lib.split_overrides(sys.argv)

  def _main(args):
    try:
      if len(args) != 2 or not config_flag.value or not out_flag.value:
        raise UserError('usage: python -m vidjax.convert SOURCE --config CONFIG --out DIR')
      config = config_lib.load(config_flag.value, [*overrides, f'init.checkpoint={args[1]}'])
      entries, origin = convert(config, pathlib.Path(out_flag.value), classes_flag.value or None)
    except UserError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)
    print(f'{origin} -> {config.model.name} ({config_flag.value})')
    print(mapping.format_table(entries))
    print(f'wrote {out_flag.value}/params.npz; train from it with '
          f'--config.init.checkpoint={out_flag.value}')

  app.run(_main, argv=argv)


if __name__ == '__main__':
  main()
