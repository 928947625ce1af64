"""`--mode export`: a trained workdir -> one serialized inference function that needs only jax.

  python -m vidjax.main --config configs/default.py --workdir runs/default --mode export

writes, under `workdir/export/`:

  model.jax_export   `jax.export`'s serialized StableHLO: raw uint8 clips [B, T, H, W, C]
                     -> {name: array}. The normalisation is inside and the parameters are
                     constants, so neither vidjax nor flax is needed to run it. Lowered for
                     cpu, cuda and tpu (only the platform in use when that fails); B is
                     symbolic, any batch size, or fixed at 1 when the model cannot trace
                     with a symbolic batch (model.json and the console say which).
  model.json         what a user must do to a video first (frames, sampling, stride, resize,
                     crop; mean / std are applied inside), the class names, what each output
                     is, the vidjax version, the checkpoint and the file's sha256.
  run_exported.py    the loader below, with a command line (`LOADER`), to copy anywhere.

Classification returns {'probabilities' [B, K] (softmax), 'logits' [B, K]}; detection and
frame prediction return their model's raw outputs, named by their place in the model's
output tree (model.json 'outputs'). Localization's model reads snippet features and a
mask, not a clip, and is not exported. Reading the file needs jax, numpy and flatbuffers
(jax's serialization format); the loader, in full:

  import json, pathlib
  import jax
  import numpy as np

  def run_exported(export_dir, video_uint8):
    export_dir = pathlib.Path(export_dir)
    meta = json.loads((export_dir / 'model.json').read_text())
    fn = jax.export.deserialize(bytearray((export_dir / meta['file']).read_bytes()))
    outputs = fn.call(np.asarray(video_uint8, np.uint8))
    return {name: np.asarray(value) for name, value in outputs.items()}, meta
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import pathlib
from typing import Callable

import jax
import jax.numpy as jnp

from vidjax import parallel, predict, report
from vidjax.data.clip_spec import ClipSpec
from vidjax.errors import UserError
from vidjax.metrics.frame_prediction import to_unit
from vidjax.tasks.classification import normalize

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FILE = 'model.jax_export'
PLATFORMS = ('cpu', 'cuda', 'tpu')
FIXED_BATCH = 1  # When a model cannot take a symbolic batch.
SUPPORTED_TASKS = ('classification', 'detection', 'frame_prediction')  # A model of one clip.

LOADER = '''"""Runs a vidjax export with jax and numpy only (written by vidjax's --mode export).

  python run_exported.py EXPORT_DIR CLIPS.npy [OUT.npz]

CLIPS.npy holds uint8 clips [B, T, H, W, C], made as model.json's 'preprocessing' says.
Prints each output's shape (and each clip's top class, for a classifier); OUT.npz, when
given, receives the outputs.
"""
import json
import pathlib
import sys

import jax
import numpy as np


def run_exported(export_dir, video_uint8):
  export_dir = pathlib.Path(export_dir)
  meta = json.loads((export_dir / 'model.json').read_text())
  fn = jax.export.deserialize(bytearray((export_dir / meta['file']).read_bytes()))
  outputs = fn.call(np.asarray(video_uint8, np.uint8))
  return {name: np.asarray(value) for name, value in outputs.items()}, meta


if __name__ == '__main__':
  outputs, meta = run_exported(sys.argv[1], np.load(sys.argv[2]))
  for name, value in outputs.items():
    print(name, value.shape, value.dtype)
  if 'probabilities' in outputs and meta['class_names']:
    for row in outputs['probabilities']:
      print(meta['class_names'][int(row.argmax())], f'{float(row.max()):.4f}')
  if len(sys.argv) > 3:
    np.savez(sys.argv[3], **outputs)
'''


# ----------------------------------------------------------------------------
# Pure pieces: the function, its export, its description.
# ----------------------------------------------------------------------------

def classify(params, video, *, model, mean, std) -> dict:
  """uint8 [B, T, H, W, C] -> {'probabilities', 'logits'} [B, K]; classification's eval_step."""
  logits = model.apply(params, normalize(video, mean, std), train=False)
  return {'probabilities': jax.nn.softmax(logits, axis=-1), 'logits': logits}


def raw_outputs(params, video, *, model, prepare: Callable, apply_kwargs: dict) -> dict:
  """uint8 [B, T, H, W, C] -> the model's outputs as a flat {path in the output tree: array}."""
  outputs = model.apply(params, prepare(video), train=False, **apply_kwargs)
  leaves = jax.tree_util.tree_flatten_with_path(outputs)[0]
  return {jax.tree_util.keystr(path, simple=True, separator='/') or 'output': leaf
          for path, leaf in leaves}


def inference_function(task, model, params) -> Callable:
  """The task's uint8 clips -> {name: array}, with `params` closed over (constants)."""
  params = jax.device_get(params)  # Host arrays: baked in, whatever the mesh was.
  data = task.config.data
  if task.name == 'classification':
    return functools.partial(classify, params, model=model, mean=tuple(data.mean),
                             std=tuple(data.std))
  if task.name == 'detection':
    prepare = functools.partial(normalize, mean=tuple(data.mean), std=tuple(data.std))
  else:  # frame_prediction: observed frames in [0, 1], as its loss and eval step feed them.
    prepare = to_unit
  return functools.partial(raw_outputs, params, model=model, prepare=prepare,
                           apply_kwargs=dict(task.apply_kwargs))


def export_function(fn: Callable, example_shape: tuple[int, ...]
                    ) -> tuple[jax.export.Exported, str]:
  """(jax.export of `fn` on uint8 [B, *example_shape], note): B symbolic when it traces."""
  (batch,) = jax.export.symbolic_shape('b')
  failures = []
  for b in (batch, FIXED_BATCH):
    for platforms in (PLATFORMS, None):
      spec = jax.ShapeDtypeStruct((b, *example_shape), jnp.uint8)
      try:
        exported = jax.export.export(jax.jit(fn), platforms=platforms)(spec)
      except Exception as e:  # Shape polymorphism or a platform's lowering; try the next.
        failures.append(f'{type(e).__name__}: {str(e).splitlines()[0][:200]}')
        continue
      if b is batch:
        return exported, 'symbolic: any batch size'
      note = (f'fixed at {FIXED_BATCH}: the model does not trace with a symbolic batch '
              f'({failures[0]})')
      log.warning('export: batch %s', note)
      return exported, note
  raise RuntimeError('jax.export failed: ' + ' | '.join(failures))


def _dims(shape) -> list:
  """A shape with symbolic dimensions as their names, for JSON."""
  return [d if isinstance(d, int) else str(d) for d in shape]


def clip_preprocessing(data) -> dict:
  """How `--mode predict` makes a clip from a video file (data/clips.py
  `read_clip_for_prediction`): the centre view of the evaluation protocol."""
  spec = ClipSpec.from_config(data)
  if spec.sampling == 'segments':
    frames = (f'TSN: the video cut into {spec.num_frames} equal segments, the centre frame '
              'of each: frame floor((k + 0.5) * N / T) of N frames')
  else:
    frames = (f'{spec.num_frames} frames {spec.frame_stride} apart from the centre start '
              f'floor((max(N - {(spec.num_frames - 1) * spec.frame_stride + 1}, 0) + 1) / 2) '
              f'of a video of N frames; past its end the clip '
              + ('loops to frame 0' if spec.short_videos == 'loop' else 'repeats the last frame'))
  if spec.eval_crop == 'none':
    resize = f'whole frames scaled to {spec.height}x{spec.width} while decoding, aspect not kept'
  else:
    side = (f'the short side scaled to {spec.eval_short_side}' if spec.eval_short_side
            else 'native size')
    resize = (f'{side} (aspect kept, scaled up if smaller than the crop), then the central '
              f'{spec.height}x{spec.width}')
  return {'frames': spec.num_frames, 'sampling': spec.sampling,
          'frame_stride': spec.frame_stride if spec.sampling == 'dense' else None,
          'short_videos': spec.short_videos, 'clip': frames,
          'crop': spec.eval_crop, 'short_side': spec.eval_short_side,
          'height': spec.height, 'width': spec.width, 'resize': resize, 'channels': 'RGB',
          'mean': list(data.mean), 'std': list(data.std),
          'normalization': 'inside the function: (uint8 / 255 - mean) / std per channel; '
                           'pass the raw uint8 frames'}


def preprocessing(task) -> dict:
  """What to do to a video before the function, per task."""
  if task.name != 'frame_prediction':
    return clip_preprocessing(task.config.data)
  t, h, w, c = task.input_shape
  return {'frames': t, 'sampling': f'the first {t} frames of a sequence (Moving MNIST)',
          'height': h, 'width': w, 'channels': 'grayscale' if c == 1 else f'{c} channels',
          'resize': 'none', 'normalization': 'inside the function: uint8 / 255'}


def describe_outputs(task, exported: jax.export.Exported) -> dict:
  """{name: shape, dtype, meaning} of the exported function's outputs."""
  where = jax.tree_util.tree_unflatten(exported.out_tree, range(len(exported.out_avals)))
  meaning = {'probabilities': 'softmax over class_names', 'logits': 'before the softmax'}
  raw = {'detection': "the detector's raw output (before vidjax/tasks/detection.py "
                      'postprocess: box decoding and NMS)',
         'frame_prediction': 'logits of the next frames (sigmoid: pixel probabilities)'}
  return {name: {'shape': _dims(aval.shape), 'dtype': str(aval.dtype),
                 'meaning': meaning.get(name) if task.name == 'classification' else raw[task.name]}
          for name, aval in ((n, exported.out_avals[i]) for n, i in where.items())}


def model_config(model) -> dict:
  """config.model's shared keys and the chosen family's block (not the other families')."""
  fields = json.loads(model.to_json())
  return {k: v for k, v in fields.items() if not isinstance(v, dict) or k == model.name}


def vidjax_version() -> str:
  try:
    return importlib.metadata.version('vidjax')
  except importlib.metadata.PackageNotFoundError:
    return 'unknown (not installed)'


def snippet(export_dir: pathlib.Path) -> str:
  """The lines a user pastes to run the export (jax and numpy only)."""
  return '\n'.join([
      'import json, jax, numpy as np',
      f"d = '{export_dir}'",
      "meta = json.load(open(f'{d}/model.json'))",
      "fn = jax.export.deserialize(bytearray(open(f\"{d}/{meta['file']}\", 'rb').read()))",
      "clips = np.zeros([2, *meta['input']['shape'][1:]], np.uint8)  # see meta['preprocessing']",
      'outputs = fn.call(clips)  # {name: array}, see meta[\'outputs\']',
      "print({name: value.shape for name, value in outputs.items()})",
      f"# or: python {export_dir / 'run_exported.py'} {export_dir} CLIPS.npy",
  ])


# ----------------------------------------------------------------------------
# The mode.
# ----------------------------------------------------------------------------

def export(config, workdir: str) -> dict:
  """`--mode export`: writes workdir/export/{model.jax_export, model.json, run_exported.py}
  and prints where; returns model.json's fields."""
  if config.task not in SUPPORTED_TASKS:
    raise UserError(f"--mode export supports tasks whose model reads one video clip "
                    f"({', '.join(SUPPORTED_TASKS)}); task '{config.task}' does not")
  if importlib.util.find_spec('flatbuffers') is None:  # jax.export's serialization format.
    raise UserError('--mode export needs flatbuffers, which jax serializes with: '
                    'pip install flatbuffers')
  task, model, params, _, what = predict.restore_params(config, workdir)
  exported, batch_note = export_function(inference_function(task, model, params),
                                         tuple(task.input_shape))
  blob = bytes(exported.serialize())
  out = pathlib.Path(workdir) / 'export'
  fields = {
      'format': 'vidjax-export', 'format_version': FORMAT_VERSION, 'file': FILE,
      'vidjax_version': vidjax_version(), 'jax_version': jax.__version__,
      'sha256': hashlib.sha256(blob).hexdigest(), 'checkpoint': what,
      'task': task.name, 'model': config.model.name,
      'model_config': model_config(config.model),
      'platforms': list(exported.platforms),
      'input': {'shape': _dims(exported.in_avals[0].shape), 'dtype': 'uint8',
                'layout': 'batch, time, height, width, channels', 'batch': batch_note},
      'preprocessing': preprocessing(task),
      'class_names': getattr(task, 'class_names', None),
      'outputs': describe_outputs(task, exported),
  }
  if parallel.is_main_process():
    out.mkdir(parents=True, exist_ok=True)
    (out / FILE).write_bytes(blob)
    (out / 'model.json').write_text(json.dumps(fields, indent=2))
    (out / 'run_exported.py').write_text(LOADER)
    print(report.summary([
        ('checkpoint', f'{workdir} {what}'),
        ('function', f"{out / FILE} ({len(blob) / 1e6:.2f} MB, {', '.join(exported.platforms)})"),
        ('input', f"uint8 {fields['input']['shape']}, batch {batch_note}"),
        ('outputs', ', '.join(f"{k} {v['shape']}" for k, v in fields['outputs'].items())),
        ('description', str(out / 'model.json')), ('loader', str(out / 'run_exported.py'))]))
    print('Run it with jax and numpy only:\n' + snippet(out), flush=True)
  return fields
