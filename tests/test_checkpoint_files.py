"""Reading checkpoint files without torch: against files real torch and safetensors wrote.

The fixtures come from tests/fixtures/pretrained/make_resnet_fixtures.py.
"""
import os
import pathlib
import pickle
import zipfile

import ml_dtypes
import numpy as np
import pytest

from vidjax.errors import UserError
from vidjax.pretrained.checkpoint_files import load_arrays

FIXTURES = pathlib.Path(__file__).parent / 'fixtures' / 'pretrained'


def _expected():
  with np.load(FIXTURES / 'reader_expected.npz') as data:
    return {name: data[name] for name in data.files}


def _assert_same(arrays, expected):
  assert set(arrays) == set(expected)
  for name, want in expected.items():
    got = arrays[name]
    assert got.shape == want.shape, name
    np.testing.assert_array_equal(np.asarray(got, want.dtype), want, err_msg=name)


def test_torch_zip_file_gives_every_tensor_exactly():
  """Strided views, fp16, bf16, int64, a Parameter and a nested dict's tensor; nothing else."""
  arrays = load_arrays(FIXTURES / 'reader_cases.pth')
  _assert_same(arrays, _expected())  # 'nested.count', 'nested.name' and 'config' are dropped.
  assert arrays['half'].dtype == np.float16
  assert arrays['bf16'].dtype == ml_dtypes.bfloat16
  assert arrays['long'].dtype == np.int64
  assert arrays['strided'].flags.c_contiguous and arrays['strided'].shape == (3, 4)


def test_safetensors_file_gives_every_tensor_exactly():
  arrays = load_arrays(FIXTURES / 'reader_cases.safetensors')
  expected = {k: v for k, v in _expected().items() if k != 'nested.w'}
  _assert_same(arrays, expected)
  assert arrays['bf16'].dtype == ml_dtypes.bfloat16


def test_wrapped_training_checkpoint_is_flattened_with_dots():
  """{'state_dict': {'module.x': t}, 'epoch': 90, 'config': obj} -> 'state_dict.module.x' only."""
  arrays = load_arrays(FIXTURES / 'resnet50_tiny.pth')
  assert 'state_dict.module.conv1.weight' in arrays
  assert all(k.startswith('state_dict.module.') for k in arrays)
  assert arrays['state_dict.module.bn1.num_batches_tracked'].shape == ()  # 0-d stays 0-d.


def test_npz_keys_are_kept(tmp_path):
  path = tmp_path / 'big_vision.npz'
  np.savez(path, **{'Transformer/encoder_norm/scale': np.ones(3, np.float32)})
  assert list(load_arrays(path)) == ['Transformer/encoder_norm/scale']


@pytest.mark.parametrize('name', ['reader_cases.pth', 'resnet18_tiny.pth',
                                  'reader_cases.safetensors'])
def test_truncated_file_is_one_line_naming_it(tmp_path, name):
  data = (FIXTURES / name).read_bytes()
  path = tmp_path / name
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(UserError, match='truncated or corrupt.*download it again') as e:
    load_arrays(path)
  assert str(path) in str(e.value) and '\n' not in str(e.value)


def test_legacy_torch_format_names_the_fix():
  with pytest.raises(UserError, match='legacy .* re-save it'):
    load_arrays(FIXTURES / 'legacy_format.pth')


def test_unknown_extension_and_missing_file(tmp_path):
  path = tmp_path / 'weights.h5'
  path.write_bytes(b'x')
  with pytest.raises(UserError, match="unknown extension '.h5'"):
    load_arrays(path)
  with pytest.raises(UserError, match='does not exist'):
    load_arrays(tmp_path / 'missing.pth')


class _Exploit:
  def __reduce__(self):
    return (os.system, (f'touch {self.marker}',))


def test_unknown_classes_are_inert_placeholders(tmp_path):
  """A pickled call to os.system is neither run nor returned."""
  exploit = _Exploit()
  exploit.marker = tmp_path / 'ran'
  path = tmp_path / 'evil.pth'
  with zipfile.ZipFile(path, 'w') as archive:
    archive.writestr('evil/data.pkl', pickle.dumps({'x': exploit, 'n': 1}, protocol=2))
  assert load_arrays(path) == {}
  assert not exploit.marker.exists()


def test_torchscript_archive_asks_for_a_state_dict(tmp_path):
  path = tmp_path / 'scripted.pt'
  with zipfile.ZipFile(path, 'w') as archive:
    archive.writestr('scripted/data.pkl', pickle.dumps({}, protocol=2))
    archive.writestr('scripted/constants.pkl', pickle.dumps((), protocol=2))
  with pytest.raises(UserError, match='TorchScript.*state_dict'):
    load_arrays(path)
