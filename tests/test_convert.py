"""`python -m vidjax.convert`: a checkpoint into a config's model, with a line per parameter."""
import subprocess
import sys

import numpy as np

from tests.conftest import REPO, TINY_CLASSIFIER_FLAGS
from vidjax.pretrained import init_from, mapping


def _convert(*args):
  """`python -m vidjax.convert ARGS` in a bare environment, compiled as the tests compile
  (conftest.py): XLA's optimisations only slow the model's one init down."""
  return subprocess.run([sys.executable, '-m', 'vidjax.convert', *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300,
                        env={'JAX_PLATFORMS': 'cpu', 'PATH': '', 'HOME': str(REPO),
                             'JAX_DISABLE_MOST_OPTIMIZATIONS': '1'})


def test_convert_a_workdir_then_refuse_to_overwrite(trained_workdir, tiny_actions_root, tmp_path):
  out = tmp_path / 'converted'
  flags = ['--config', 'configs/default.py', f'--config.data.root={tiny_actions_root}',
           *TINY_CLASSIFIER_FLAGS, '--out', str(out)]
  result = _convert(str(trained_workdir), *flags)
  assert result.returncode == 0, result.stderr[-3000:]
  source, _ = init_from.read_vidjax(trained_workdir)
  assert f'{len(source)} entries: {len(source)} matched, 0 resampled' in result.stdout
  assert 'matched   cnn/conv_0/kernel (3, 3, 3, 8) <- cnn/conv_0/kernel' in result.stdout
  converted, origin = init_from.read_vidjax(out)
  assert origin.endswith('params.npz') and converted.keys() == source.keys()
  for name in source:
    np.testing.assert_array_equal(converted[name], source[name])
  assert (out / 'conversion.txt').read_text().count('\n') == len(source) + 2

  again = _convert(str(trained_workdir), *flags)
  assert again.returncode == 2 and again.stderr.strip().splitlines() == [
      f'error: --out {out} exists and is not empty; choose a new folder']




def _write_safetensors(path, arrays):
  """The format by its spec: 8-byte little-endian header size, a JSON header, the raw bytes."""
  import json
  header, offset, blobs = {}, 0, []
  for name, array in arrays.items():
    blob = np.ascontiguousarray(array).tobytes()
    dtype = {'float32': 'F32', 'int64': 'I64'}[array.dtype.name]
    header[name] = {'dtype': dtype, 'shape': list(array.shape), 'data_offsets': [offset, offset + len(blob)]}
    offset += len(blob)
    blobs.append(blob)
  encoded = json.dumps(header).encode()
  path.write_bytes(len(encoded).to_bytes(8, 'little') + encoded + b''.join(blobs))


def test_a_torchvision_resnet18_into_lrcn_needs_a_new_head(tmp_path):
  """Full-size torchvision names and shapes (random values; the numbers are test_resnet's):
  every backbone parameter matched, the ImageNet fc ignored, the head new only when asked."""
  import json
  shapes = json.loads((REPO / 'tests/fixtures/pretrained/torchvision_resnet_shapes.json').read_text())
  rng = np.random.default_rng(0)
  arrays = {name: (np.array(7, np.int64) if name.endswith('num_batches_tracked') else
                   rng.uniform(0.5, 1.5, shape).astype(np.float32))
            for name, shape in shapes['resnet18'].items()}
  source = tmp_path / 'resnet18.safetensors'
  _write_safetensors(source, arrays)
  from vidjax import config as config_lib
  from vidjax import convert
  from vidjax.errors import UserError
  config = config_lib.load('configs/default.py', ['model.lrcn.backbone=resnet18',
                                                  f'init.checkpoint={source}'])
  try:
    convert.convert(config, tmp_path / 'refused', num_classes=12)
  except UserError as e:
    assert 'set --config.init.reinit_head=true' in str(e)
  else:
    raise AssertionError('a 1000-class fc became a 12-class head')
  assert not (tmp_path / 'refused').exists()
  config = config_lib.load('configs/default.py', ['model.lrcn.backbone=resnet18',
                                                  f'init.checkpoint={source}',
                                                  'init.reinit_head=true'])
  entries, _ = convert.convert(config, tmp_path / 'ok', num_classes=12)
  lines = (tmp_path / 'ok' / 'conversion.txt').read_text().splitlines()
  assert lines[1:] == mapping.format_table(entries).splitlines()
  assert any(l.startswith('ignored') and 'fc.weight' in l for l in lines)
  assert any(l.startswith('new       head/kernel (128, 12)') for l in lines)
  assert not [l for l in lines if l.startswith('new') and 'backbone/' in l]
  matched = [l for l in lines if l.startswith('matched') and 'backbone/' in l]
  assert len(matched) == 20 + 2 * 20  # 20 convs, 20 folded batch norms (scale and bias).


def _published_cases(tmp_path):
  """(source file, config overrides, message) for each kind of bad checkpoint."""
  fixtures = REPO / 'tests' / 'fixtures' / 'pretrained'
  truncated = tmp_path / 'truncated.pth'
  truncated.write_bytes((fixtures / 'resnet18_tiny.pth').read_bytes()[:5000])
  vit = dict(np.load(fixtures / 'timm_vit.npz'))
  vit = {k: v for k, v in vit.items() if not k.startswith(('ref/', 'blocks.1.mlp'))}
  missing = tmp_path / 'missing_keys.npz'
  np.savez(missing, **vit)
  small_vit = ['model.space_time_attention.hidden_size=32', 'model.space_time_attention.mlp_dim=128',
               'model.space_time_attention.num_layers=2', 'model.space_time_attention.num_heads=4',
               'model.space_time_attention.approximate_gelu=false', 'init.reinit_head=true',
               'model.space_time_attention.stem=patch', 'model.space_time_attention.pooling=cls']
  return [
      (tmp_path / 'missing.pth', [], 'does not exist'),
      (fixtures / 'resnet18_tiny.pth', [], "another architecture? model.name=space_time_attention"),
      (truncated, [], 'truncated.pth'),
      (missing, small_vit, 'block_1/mlp/fc1/kernel: the checkpoint has no'),
  ]


def test_bad_checkpoints_are_one_line_and_write_nothing(tmp_path):
  from vidjax import config as config_lib
  from vidjax import convert
  from vidjax.errors import UserError
  for n, (source, overrides, message) in enumerate(_published_cases(tmp_path)):
    config = config_lib.load('configs/space_time_attention.py:divided',
                             [*overrides, f'init.checkpoint={source}'])
    out = tmp_path / f'out{n}'
    try:
      convert.convert(config, out, num_classes=12)
    except UserError as e:
      assert message in str(e) and '\n' not in str(e), str(e)
    else:
      raise AssertionError(f'{source.name} converted')
    assert not out.exists() and not list(tmp_path.glob(f'.out{n}.*'))
