"""The converter table: each published format, converted, against the outputs its own code computed.

  python experiments/converter_table.py    # writes experiments/results/converter_table.{md,json}
  python experiments/converter_table.py --fixtures /tmp/full_fixtures   # converter_table_full.*

Every source is a small random-weight model of the source implementation
(torchvision-named timm ResNets with randomised batch-norm statistics in eval
mode, a timm ViT, big_vision's flax ViT, the official TimeSformer, scenic's
ViViT factorised and unfactorised), saved with
its reference logits by tests/fixtures/pretrained/make_*_fixtures.py (which
need PyTorch; vidjax does not). Here each file is read without PyTorch,
converted, run at XLA's highest matmul precision, and compared with the
reference: the largest absolute logit difference. The architectures are the
named ones at reduced width and depth (see the fixtures' scripts), so the
file sizes stay small; the full-size parameter names and shapes are checked
by tests/test_resnet.py and tests/test_vit_import.py.

`--fixtures DIR` reads instead the full-size files that the same scripts write
with `--full DIR` (torchvision resnet18/50, timm vit_small_patch16_224,
big_vision ViT-S/16, TimeSformer ViT-B/16 on 8 frames; see FULL_COMMANDS),
converted into the vidjax models at full size.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import jax
import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))

from experiments import reproduction  # noqa: E402
from vidjax.models.resnet import ResNet  # noqa: E402
from vidjax.models.space_time_attention import SpaceTimeTransformer  # noqa: E402
from vidjax.pretrained import checkpoint_files, resnet, vit_big_vision, vit_timm  # noqa: E402

FIXTURES = REPO / 'tests' / 'fixtures' / 'pretrained'
SIZES = {  # What each fixture set holds: file names, ResNet widths, ViT sizes, TimeSformer frames.
    'tiny': dict(resnet18=('resnet18_tiny', (4, 8, 16, 32)),
                 resnet50=('resnet50_tiny', (2, 4, 8, 16)),
                 vit=dict(num_classes=10, patch_size=8, hidden_size=32, num_layers=2, num_heads=4,
                          mlp_dim=128),
                 big_vision=dict(mlp_dim=64), timesformer={}, frames=4),
    'full': dict(resnet18=('resnet18', (64, 128, 256, 512)),
                 resnet50=('resnet50', (64, 128, 256, 512)),
                 vit=dict(num_classes=1000, patch_size=16, hidden_size=384, num_layers=12,
                          num_heads=6, mlp_dim=1536),  # ViT-S/16
                 big_vision={}, frames=8,
                 timesformer=dict(num_classes=400, hidden_size=768, num_layers=12, num_heads=12,
                                  mlp_dim=3072)),  # ViT-B/16
}
FULL_COMMANDS = (  # From the repository root; the vit.py files as make_vit_fixtures.py says.
    'nice -n 19 /tmp/torchvenv/bin/python tests/fixtures/pretrained/make_resnet_fixtures.py '
    '--full /tmp/full_fixtures',
    'nice -n 19 /tmp/torchvenv/bin/python tests/fixtures/pretrained/make_vit_fixtures.py torch '
    '/tmp/timesformer_vit.py --full /tmp/full_fixtures',
    'nice -n 19 python tests/fixtures/pretrained/make_vit_fixtures.py big_vision '
    '/tmp/big_vision_vit.py --full /tmp/full_fixtures',
    'python experiments/converter_table.py --fixtures /tmp/full_fixtures',
)
BUFFERS = ('running_mean', 'running_var', 'num_batches_tracked')


def _result(source_arrays, logits, expected, inputs) -> dict:
  """A row's numbers: source parameter count, input shape, the logits' difference and scale."""
  return {'source_parameters': int(sum(np.size(v) for k, v in source_arrays.items()
                                       if not k.endswith(BUFFERS))),
          'input_shape': list(inputs.shape),
          'max_abs_logit_difference': float(np.abs(np.asarray(logits) - expected).max()),
          'max_abs_reference_logit': float(np.abs(expected).max())}


def _resnet(fixtures: pathlib.Path, size: dict, key: str, depth: int) -> dict:
  name, widths = size[key]
  with np.load(fixtures / f'{name}_reference.npz') as ref:
    images, expected = ref['input_nchw'].transpose(0, 2, 3, 1), ref['logits']
  model = ResNet(depth=depth, widths=widths, num_classes=expected.shape[-1])
  target = jax.eval_shape(model.init, jax.random.key(0), images)
  arrays = checkpoint_files.load_arrays(fixtures / f'{name}.pth')
  params, _ = resnet.convert_resnet(arrays, target)
  return _result(arrays, jax.jit(model.apply)(params, images), expected, images)


def _vit(fixtures: pathlib.Path, size: dict, name: str, convert, attention: str, frames: int,
         **options) -> dict:
  data = dict(np.load(fixtures / f'{name}.npz'))
  arrays = {k: v for k, v in data.items() if not k.startswith('ref/')}
  ref = {k[4:]: v for k, v in data.items() if k.startswith('ref/')}
  video = ref['clip'] if 'clip' in ref else np.repeat(ref['images'][:, None], frames, axis=1)
  model = SpaceTimeTransformer(attention=attention, **{**size['vit'], **options})
  target = jax.eval_shape(model.init, jax.random.key(0), video[:1])['params']
  target = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), target)
  params, _ = convert(arrays, model, target)
  return _result(arrays, jax.jit(model.apply)({'params': params}, video), ref['logits'], video)


def _scenic(fixtures: pathlib.Path, size: dict, name: str, **options) -> dict:
  """A scenic ViViT (flax msgpack, written by scenic's own classes; tiny fixtures only)."""
  from vidjax.pretrained import vit_scenic
  files = {'fe_token': 'scenic_vivit_fe/checkpoint_7', 'unfactorised': 'scenic_vivit_unfactorised/checkpoint'}
  ref = dict(np.load(FIXTURES / 'scenic_vivit_reference.npz'))
  arrays = checkpoint_files.load_arrays(FIXTURES / files[name])
  model = SpaceTimeTransformer(num_classes=5, patch_size=4, tubelet_size=2, hidden_size=16,
                               num_heads=2, mlp_dim=32, **options)
  target = jax.eval_shape(model.init, jax.random.key(0), ref['clip'][:1])['params']
  target = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), target)
  params, _ = vit_scenic.from_scenic(arrays, model, target)
  return _result(arrays, jax.jit(model.apply)({'params': params}, ref['clip']), ref[name],
                 ref['clip'])


TINY_ONLY = (  # Rows whose source has no full-size fixture here (scenic's ViViT-B is not run).
    ('scenic ViViT factorised encoder (flax checkpoint_<step>)', 'ViViT factorized_encoder', 'clips',
     lambda f, s: _scenic(f, s, 'fe_token', attention='factorized_encoder', num_layers=2,
                          num_temporal_layers=1)),
    ('scenic ViViT unfactorised (flax checkpoint)', 'joint, space_time embedding', 'clips',
     lambda f, s: _scenic(f, s, 'unfactorised', attention='joint', num_layers=1,
                          position_embedding='space_time')),
)

ROWS = (  # (source, target, how it is measured, function of (fixtures, size))
    ('ResNet-18 state dict (.pth, torchvision names)', 'vidjax ResNet-18 (frozen BN)', 'images',
     lambda f, s: _resnet(f, s, 'resnet18', 18)),
    ('ResNet-50 state dict (.pth, torchvision names, wrapped)', 'vidjax ResNet-50 (frozen BN)',
     'images', lambda f, s: _resnet(f, s, 'resnet50', 50)),
    ('timm ViT state dict', 'space_only, 1 frame', 'images',
     lambda f, s: _vit(f, s, 'timm_vit', vit_timm.from_timm, 'space_only', 1,
                       approximate_gelu=False)),
    ('timm ViT state dict', 'TimeSformer divided, inflated', '3 identical frames',
     lambda f, s: _vit(f, s, 'timm_vit', vit_timm.from_timm, 'divided', 3, approximate_gelu=False,
                       temporal_fc=True)),
    ('big_vision ViT (.npz)', 'space_only, 1 frame', 'images',
     lambda f, s: _vit(f, s, 'big_vision_tok', vit_big_vision.from_big_vision, 'space_only', 1,
                       **s['big_vision'])),
    ('big_vision ViT (.npz)', 'TimeSformer divided, inflated', '3 identical frames',
     lambda f, s: _vit(f, s, 'big_vision_tok', vit_big_vision.from_big_vision, 'divided', 3,
                       temporal_fc=True, **s['big_vision'])),
    ('official TimeSformer code, divided space-time', 'TimeSformer divided (temporal_fc)',
     'clips', lambda f, s: _vit(f, s, 'timesformer', vit_timm.from_timesformer, 'divided',
                                s['frames'], approximate_gelu=False, temporal_fc=True,
                                **s['timesformer'])),
)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--fixtures', type=pathlib.Path, default=FIXTURES,
                      help='the committed tiny fixtures, or make_*_fixtures.py --full DIR')
  fixtures = parser.parse_args(argv).fixtures.resolve()
  mode = 'tiny' if fixtures == FIXTURES.resolve() else 'full'
  rows = []
  with jax.default_matmul_precision('highest'):
    for source, target, inputs, measure in ROWS + (TINY_ONLY if mode == 'tiny' else ()):
      rows.append({'source': source, 'target': target, 'inputs': inputs,
                   **measure(fixtures, SIZES[mode])})
      print(rows[-1], flush=True)
  stem = 'converter_table' if mode == 'tiny' else 'converter_table_full'
  out = REPO / 'experiments' / 'results'
  (out / f'{stem}.json').write_text(json.dumps(
      {'rows': rows, 'fixtures': mode, 'jax': jax.__version__, 'cpu': reproduction.cpu_model()},
      indent=1))
  lines = ['| source | target | inputs | source parameters | max abs reference logit '
           '| max abs logit difference |', '|---|---|---|---|---|---|']
  lines += [f"| {r['source']} | {r['target']} | {r['inputs']} {r['input_shape']} "
            f"| {r['source_parameters']:,} | {r['max_abs_reference_logit']:.3g} "
            f"| {r['max_abs_logit_difference']:.1e} |" for r in rows]
  commands = FULL_COMMANDS if mode == 'full' else ('python experiments/converter_table.py',)
  lines += ['', f'jax {jax.__version__} on CPU ({reproduction.cpu_model()}), float32, '
            "matmul precision 'highest'. Input shapes as fed to vidjax: "
            '[B, H, W, C] for the ResNets, [B, T, H, W, C] for the transformers; source '
            'parameters exclude BN running statistics. Commands (repository root):', '']
  lines += [f'    {c}' for c in commands]
  (out / f'{stem}.md').write_text('\n'.join(lines) + '\n')
  print('\n'.join(lines))
  return 0


if __name__ == '__main__':
  sys.exit(main())
