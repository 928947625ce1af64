"""`config.init.checkpoint`: the parameters a run starts from instead of a random draw.

Initialisation order (train.py): resume from the workdir's own checkpoint if
it has one; else start from `init.checkpoint` if set; else from scratch. The
checkpoint may be
- a vidjax workdir (the newest step that restores; any task or model: the
  parameters are matched by path and shape, so a single-frame image model's
  `cnn` initialises LRCN's `cnn`, and what the source lacks stays fresh);
- a folder written by `python -m vidjax.convert` (its `params.npz`), matched
  the same way;
- a published file (.pth, .pyth, .safetensors, .npz, or a flax / scenic
  `checkpoint_<step>` msgpack file), converted on the fly by the converter of
  the model family (vidjax/pretrained/converters.py).
The head is the exception to "what the source lacks stays fresh": a head the
checkpoint cannot fill (another class count, or none) is an error unless
`init.reinit_head` says to start a new one, so a class-count mix-up never
silently trains from a random head.
"""
from __future__ import annotations

import logging
import pathlib
from typing import Any

import jax
import numpy as np

from vidjax.errors import UserError
from vidjax.pretrained import checkpoint_files, mapping
# flatten: {'cnn/conv_0/kernel': leaf} of a variables tree (its 'params/' dropped).
from vidjax.pretrained.fine_tune import flatten_names as flatten
from vidjax.pretrained.fine_tune import is_head, path_name

log = logging.getLogger(__name__)

CONVERTED_FILE = 'params.npz'
PUBLISHED_SUFFIXES = ('.pth', '.pt', '.pyth', '.bin', '.safetensors', '.npz')


def unflatten_like(flat: dict[str, Any], like: Any) -> Any:
  """`flat`'s leaves arranged as the tree `like` (same paths)."""
  paths, treedef = jax.tree_util.tree_flatten_with_path(like)
  return jax.tree_util.tree_unflatten(treedef, [flat[path_name(p)] for p, _ in paths])


def _newest_workdir_params(workdir: pathlib.Path) -> tuple[dict[str, np.ndarray], str]:
  import orbax.checkpoint as ocp
  directory = workdir / 'checkpoints'
  steps = sorted((int(p.name) for p in directory.iterdir() if p.name.isdigit()), reverse=True)
  if not steps:
    raise UserError(f'init.checkpoint {workdir} has no checkpoint in {directory}; train it first '
                    'or point init.checkpoint at another run')
  for step in steps:
    handler = ocp.StandardCheckpointHandler()
    reader = ocp.PyTreeCheckpointer()
    try:
      tree = handler.metadata(directory / str(step) / 'state').tree['params']
      target = {'params': jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), tree)}
      restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), target)
      restored = reader.restore(directory / str(step) / 'state', args=ocp.args.PyTreeRestore(
          item=target, restore_args=restore_args, partial_restore=True))
    except Exception as e:  # A broken step: try the one before, as a resume would.
      log.warning('init.checkpoint: step %d of %s does not restore (%s); trying the one before',
                  step, workdir, str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
      continue
    finally:
      handler.close()
      reader.close()
    return flatten(restored['params']), f'{workdir} (step {step})'
  raise UserError(f'init.checkpoint {workdir}: no step of {directory} restores; every one is '
                  'broken, so train it again or use another checkpoint')


def read_npz(path: pathlib.Path) -> dict[str, np.ndarray]:
  try:
    with np.load(path, allow_pickle=False) as arrays:
      return {k: arrays[k] for k in arrays.files}
  except Exception as e:
    raise UserError(f'init.checkpoint {path} is not a readable .npz ({type(e).__name__}); '
                    'convert the source again with python -m vidjax.convert') from None


def read_vidjax(path: pathlib.Path) -> tuple[dict[str, np.ndarray], str] | None:
  """A vidjax workdir's or converted folder's flat params and what they are; None for a file."""
  if path.is_dir():
    if (path / CONVERTED_FILE).is_file():
      return read_npz(path / CONVERTED_FILE), str(path / CONVERTED_FILE)
    if (path / 'checkpoints').is_dir():
      return _newest_workdir_params(path)
    raise UserError(f'init.checkpoint {path} is a folder with neither checkpoints/ (a vidjax '
                    f'workdir) nor {CONVERTED_FILE} (python -m vidjax.convert); point it at one')
  if path.name == CONVERTED_FILE and (path.parent / 'conversion.json').is_file():
    return read_npz(path), str(path)
  if not path.exists():
    raise UserError(f'init.checkpoint {path} does not exist; give a vidjax workdir, a folder '
                    'from python -m vidjax.convert, or a .pth/.pyth/.safetensors/.npz file')
  if path.suffix not in PUBLISHED_SUFFIXES and not checkpoint_files.is_flax_checkpoint_name(path):
    raise UserError(f"init.checkpoint {path}: unknown kind of file '{path.suffix}'; use "
                    f"{', '.join(PUBLISHED_SUFFIXES)}, a scenic checkpoint_<step> file, a vidjax "
                    'workdir or a converted folder')
  return None


def match_by_path(source: dict[str, np.ndarray], fresh: Any, origin: str
                  ) -> tuple[dict[str, np.ndarray], list[mapping.Entry]]:
  """Target leaves taken from `source` where path and shape agree, the rest fresh.

  A path both have with different shapes is an error, except for the head
  (left fresh here and judged by `check_head`): a silent skip would hide a
  config that differs from the checkpoint's.
  """
  target = flatten(fresh)
  params, entries = {}, []
  for name, leaf in target.items():
    array = source.get(name)
    if array is None:
      params[name] = np.asarray(leaf)
      entries.append(mapping.Entry(name, 'new', shape=tuple(leaf.shape)))
    elif tuple(array.shape) != tuple(leaf.shape):
      if not is_head(name):
        raise mapping.MappingError(
            f'{name} is {tuple(array.shape)} in {origin} but {tuple(leaf.shape)} in this model; '
            'use a config with the same model settings as the checkpoint')
      params[name] = np.asarray(leaf)
      entries.append(mapping.Entry(name, 'new', shape=tuple(leaf.shape),
                                   note=f'checkpoint has {tuple(array.shape)}'))
    else:
      params[name] = array.astype(leaf.dtype)
      entries.append(mapping.Entry(name, 'matched', name, tuple(leaf.shape)))
  entries += [mapping.Entry('', 'ignored', name, tuple(array.shape))
              for name, array in source.items() if name not in target]
  if not any(e.action == 'matched' for e in entries):
    raise mapping.MappingError(f'no parameter of {origin} fits this model (another architecture?); '
                               'use a checkpoint of the same model family')
  return params, entries


def check_head(entries: list[mapping.Entry], reinit_head: bool, origin: str) -> None:
  """A head left fresh needs `init.reinit_head` (see module doc)."""
  fresh_head = [e for e in entries if e.action == 'new' and is_head(e.target)]
  if fresh_head and not reinit_head:
    why = fresh_head[0].note or 'the checkpoint has no head for it'
    raise UserError(f'the head {fresh_head[0].target} {fresh_head[0].shape} cannot come from '
                    f'{origin} ({why}); set --config.init.reinit_head=true to start a new head')


def _inflates_an_image_transformer(source: dict, fresh: Any, config) -> bool:
  """A vidjax space-only / joint transformer into another pattern: the ViT converter's job."""
  from vidjax.pretrained import vit_vidjax
  if config.model.name != 'space_time_attention' or not vit_vidjax.is_image_transformer(source):
    return False
  return any(name not in source for name in flatten(fresh) if not is_head(name))


def initial_params(config, fresh: Any) -> tuple[Any, list[mapping.Entry], str]:
  """(params as numpy, shaped as `fresh`; the per-parameter entries; the source's name)."""
  path = pathlib.Path(config.init.checkpoint).expanduser()
  found = read_vidjax(path)
  if found is not None:
    source, origin = found
    if _inflates_an_image_transformer(source, fresh, config):
      from vidjax.pretrained import converters
      flat, entries = converters.convert_arrays(source, fresh, config, vidjax_image=True)
    else:
      flat, entries = match_by_path(source, fresh, origin)
  else:
    from vidjax.pretrained import converters
    origin = str(path)
    flat, entries = converters.convert_file(path, fresh, config)
  check_head(entries, config.init.reinit_head, origin)
  return unflatten_like(flat, fresh), entries, origin


def load_into(config, params: Any, abstract_params: Any) -> tuple[Any, list[mapping.Entry], str]:
  """`initial_params` for a run's freshly initialised (sharded) `params`: (the checkpoint's
  parameters placed in `abstract_params`' shardings, the entries, the source's name)."""
  from jax.experimental import multihost_utils
  fresh = multihost_utils.process_allgather(params, tiled=True)  # Whole, on every host.
  loaded, entries, origin = initial_params(config, fresh)
  return place(loaded, abstract_params), entries, origin


def place(params: Any, abstract_params: Any) -> Any:
  """Host arrays (the same on every process) as global arrays in `abstract_params`' shardings."""
  return jax.tree.map(
      lambda array, spec: jax.make_array_from_callback(
          spec.shape, spec.sharding, lambda index: np.asarray(array, spec.dtype)[index]),
      params, abstract_params)
