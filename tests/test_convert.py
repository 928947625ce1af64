"""`python -m vidjax.convert`: a checkpoint into a config's model, with a line per parameter."""
import subprocess
import sys

import numpy as np

from tests.conftest import REPO, TINY_CLASSIFIER_FLAGS
from vidjax.pretrained import init_from


def _convert(*args):
  return subprocess.run([sys.executable, '-m', 'vidjax.convert', *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300,
                        env={'JAX_PLATFORMS': 'cpu', 'PATH': '', 'HOME': str(REPO)})


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


def test_a_missing_source_writes_nothing(tmp_path):
  out = tmp_path / 'never'
  result = _convert(str(tmp_path / 'missing.pth'), '--config', 'configs/default.py',
                    '--num_classes', '5', '--out', str(out))
  assert result.returncode == 2 and 'does not exist' in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


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
  flags = ['--config', 'configs/default.py', '--config.model.lrcn.backbone=resnet18',
           '--num_classes', '12']
  refused = _convert(str(source), *flags, '--out', str(tmp_path / 'refused'))
  assert refused.returncode == 2 and not (tmp_path / 'refused').exists()
  assert 'set --config.init.reinit_head=true' in refused.stderr.strip().splitlines()[-1]
  result = _convert(str(source), *flags, '--config.init.reinit_head=true',
                    '--out', str(tmp_path / 'ok'))
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  assert any(l.startswith('ignored') and 'fc.weight' in l for l in lines)
  assert any(l.startswith('new       head/kernel (128, 12)') for l in lines)
  assert not [l for l in lines if l.startswith('new') and 'backbone/' in l]
  matched = [l for l in lines if l.startswith('matched') and 'backbone/' in l]
  assert len(matched) == 20 + 2 * 20  # 20 convs, 20 folded batch norms (scale and bias).
