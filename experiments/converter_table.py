"""The converter table: each published format, converted, against the outputs its own code computed.

  python experiments/converter_table.py            # writes experiments/results/converter_table.{md,json}

Every source is a small random-weight model of the source implementation
(torchvision-named timm ResNets with randomised batch-norm statistics in eval
mode, a timm ViT, big_vision's flax ViT, the official TimeSformer), saved with
its reference logits by tests/fixtures/pretrained/make_*_fixtures.py (which
need PyTorch; vidjax does not). Here each file is read without PyTorch,
converted, run at XLA's highest matmul precision, and compared with the
reference: the largest absolute logit difference. The architectures are the
named ones at reduced width and depth (see the fixtures' scripts), so the
file sizes stay small; the full-size parameter names and shapes are checked
by tests/test_resnet.py and tests/test_vit_import.py.
"""
from __future__ import annotations

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
VIT = dict(num_classes=10, patch_size=8, hidden_size=32, num_layers=2, num_heads=4, mlp_dim=128)


def _resnet(name: str, depth: int, widths: tuple[int, ...]) -> float:
  with np.load(FIXTURES / f'{name}_reference.npz') as ref:
    images, expected = ref['input_nchw'].transpose(0, 2, 3, 1), ref['logits']
  model = ResNet(depth=depth, widths=widths, num_classes=expected.shape[-1])
  target = jax.eval_shape(model.init, jax.random.key(0), images)
  params, _ = resnet.convert_resnet(checkpoint_files.load_arrays(FIXTURES / f'{name}.pth'), target)
  return float(np.abs(np.asarray(jax.jit(model.apply)(params, images)) - expected).max())


def _vit_fixture(name: str):
  data = dict(np.load(FIXTURES / f'{name}.npz'))
  return ({k: v for k, v in data.items() if not k.startswith('ref/')},
          {k[4:]: v for k, v in data.items() if k.startswith('ref/')})


def _vit(name: str, convert, attention: str, frames: int, **options) -> float:
  arrays, ref = _vit_fixture(name)
  video = ref['clip'] if 'clip' in ref else np.repeat(ref['images'][:, None], frames, axis=1)
  model = SpaceTimeTransformer(attention=attention, **{**VIT, **options})
  target = jax.eval_shape(model.init, jax.random.key(0), video[:1])['params']
  target = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), target)
  params, _ = convert(arrays, model, target)
  logits = jax.jit(model.apply)({'params': params}, video)
  return float(np.abs(np.asarray(logits) - ref['logits']).max())


ROWS = (  # (source, target, how it is measured, function)
    ('ResNet-18 state dict (.pth, torchvision names)', 'vidjax ResNet-18 (frozen BN)', 'images',
     lambda: _resnet('resnet18_tiny', 18, (4, 8, 16, 32))),
    ('ResNet-50 state dict (.pth, torchvision names, wrapped)', 'vidjax ResNet-50 (frozen BN)',
     'images', lambda: _resnet('resnet50_tiny', 50, (2, 4, 8, 16))),
    ('timm ViT state dict', 'space_only, 1 frame', 'images',
     lambda: _vit('timm_vit', vit_timm.from_timm, 'space_only', 1, approximate_gelu=False)),
    ('timm ViT state dict', 'TimeSformer divided, inflated', '3 identical frames',
     lambda: _vit('timm_vit', vit_timm.from_timm, 'divided', 3, approximate_gelu=False,
                  temporal_fc=True)),
    ('big_vision ViT (.npz)', 'space_only, 1 frame', 'images',
     lambda: _vit('big_vision_tok', vit_big_vision.from_big_vision, 'space_only', 1, mlp_dim=64)),
    ('big_vision ViT (.npz)', 'TimeSformer divided, inflated', '3 identical frames',
     lambda: _vit('big_vision_tok', vit_big_vision.from_big_vision, 'divided', 3, mlp_dim=64,
                  temporal_fc=True)),
    ('official TimeSformer code, divided space-time', 'TimeSformer divided (temporal_fc)',
     '4-frame clips', lambda: _vit('timesformer', vit_timm.from_timesformer, 'divided', 4,
                                   approximate_gelu=False, temporal_fc=True)),
)


def main() -> int:
  rows = []
  with jax.default_matmul_precision('highest'):
    for source, target, inputs, measure in ROWS:
      rows.append({'source': source, 'target': target, 'inputs': inputs,
                   'max_abs_logit_difference': measure()})
  out = REPO / 'experiments' / 'results'
  (out / 'converter_table.json').write_text(json.dumps(
      {'rows': rows, 'jax': jax.__version__, 'cpu': reproduction.cpu_model()}, indent=1))
  lines = ['| source | target | inputs | max abs logit difference |', '|---|---|---|---|']
  lines += [f"| {r['source']} | {r['target']} | {r['inputs']} | {r['max_abs_logit_difference']:.1e} |"
            for r in rows]
  lines += ['', f'jax {jax.__version__} on CPU ({reproduction.cpu_model()}), float32, '
            "matmul precision 'highest'. Command: `python experiments/converter_table.py`"]
  (out / 'converter_table.md').write_text('\n'.join(lines) + '\n')
  print('\n'.join(lines))
  return 0


if __name__ == '__main__':
  sys.exit(main())
