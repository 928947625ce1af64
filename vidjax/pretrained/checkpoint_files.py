"""Published checkpoint files -> `{name: np.ndarray}`, without PyTorch and without the network.

Reads torch's zip format (`.pth`, `.pt`, `.pyth`, `.bin`, `.ckpt`, `.pth.tar`),
`.safetensors`, `.npz` (big_vision, whose keys are already joined with
'/') and flax msgpack files named `checkpoint` or `checkpoint_<step>` (scenic's
released models: the parameters under the train state's `params`, or
`optimizer/target` in older ones, joined with '/'). Nested torch dicts are
flattened with '.', so `{'model_state': {'conv1.weight': w}}` gives
`'model_state.conv1.weight'`; leaves that are not arrays (epoch counters,
config strings, optimizer hyper-parameters, lists) are dropped.

A torch pickle is read by a restricted unpickler: it rebuilds tensors and the
containers a state dict needs, and turns any other class (an optimizer's or a
config's object) into an inert placeholder, so loading an official checkpoint
neither breaks on those objects nor imports or runs their code.
bfloat16 arrays keep their dtype (`ml_dtypes.bfloat16`, as JAX uses).
"""
from __future__ import annotations

import collections
import json
import os
import pickle
import zipfile

import ml_dtypes
import numpy as np

from vidjax.errors import UserError

TORCH_EXTENSIONS = ('.pth', '.pt', '.pyth', '.bin', '.ckpt')
# Where a flax train state keeps its parameters: scenic's TrainState, then flax.optim's Optimizer.
_FLAX_PARAMS_ROOTS = (('params',), ('optimizer', 'target'))

# torch storage class name -> numpy dtype of its elements.
_TORCH_STORAGES = {
    'DoubleStorage': np.float64, 'FloatStorage': np.float32, 'HalfStorage': np.float16,
    'BFloat16Storage': ml_dtypes.bfloat16, 'LongStorage': np.int64, 'IntStorage': np.int32,
    'ShortStorage': np.int16, 'CharStorage': np.int8, 'ByteStorage': np.uint8,
    'BoolStorage': np.bool_, 'UntypedStorage': np.uint8,
}
# torch dtype name (as pickled: `torch.float32`) -> numpy dtype.
_TORCH_DTYPES = {
    'float64': np.float64, 'float32': np.float32, 'float16': np.float16,
    'bfloat16': ml_dtypes.bfloat16, 'int64': np.int64, 'int32': np.int32, 'int16': np.int16,
    'int8': np.int8, 'uint8': np.uint8, 'bool': np.bool_,
}
_SAFETENSORS_DTYPES = {
    'F64': np.float64, 'F32': np.float32, 'F16': np.float16, 'BF16': ml_dtypes.bfloat16,
    'I64': np.int64, 'I32': np.int32, 'I16': np.int16, 'I8': np.int8, 'U8': np.uint8,
    'U16': np.uint16, 'U32': np.uint32, 'U64': np.uint64, 'BOOL': np.bool_,
}
# Pure-data globals a checkpoint may hold beside its tensors (numpy scalars, e.g. a best accuracy).
_NUMPY_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar'),
    ('numpy', 'ndarray'), ('numpy', 'dtype'),
}
_BUILTINS = {'set', 'frozenset', 'dict', 'list', 'tuple', 'slice', 'complex', 'bytearray'}


def load_arrays(path) -> dict[str, np.ndarray]:
  """Every array in the checkpoint at `path`, by its '.'-joined name (see the module docstring)."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise UserError(f'checkpoint {path} does not exist; check the path')
  ext = os.path.splitext(path)[1].lower()
  if ext in TORCH_EXTENSIONS or path.lower().endswith('.pth.tar'):
    return _flatten(_load_torch(path), path)
  if ext == '.safetensors':
    return _load_safetensors(path)
  if ext == '.npz':
    return _load_npz(path)
  if is_flax_checkpoint_name(path):
    return _load_flax_msgpack(path)
  raise UserError(f"checkpoint {path}: unknown extension '{ext}'; use a torch file "
                  f"({', '.join(TORCH_EXTENSIONS)}, .pth.tar), .safetensors, .npz or a flax "
                  'checkpoint_<step> file')


def is_flax_checkpoint_name(path) -> bool:
  """flax's (and so scenic's) msgpack checkpoint names: `checkpoint`, `checkpoint_<step>`."""
  name = os.path.basename(os.fspath(path))
  return name == 'checkpoint' or (name.startswith('checkpoint_')
                                  and name[len('checkpoint_'):].isdigit())


def _corrupt(path, what):
  return UserError(f'checkpoint {path} is truncated or corrupt ({what}); download it again')


# --- torch zip files --------------------------------------------------------------------------

class _Placeholder:
  """Stands in for any class a state dict does not need; takes any arguments and state."""

  def __init__(self, *args, **kwargs):
    pass

  def __setstate__(self, state):
    pass

  def __setitem__(self, key, value):  # A dict subclass (a yacs CfgNode) gets SETITEMS.
    pass

  def append(self, value):  # A list subclass gets APPENDS.
    pass

  def extend(self, values):
    pass


class _Storage:
  """A torch storage's raw bytes and element dtype, named by a persistent id."""

  def __init__(self, data: np.ndarray):
    self.data = data  # [numel], its storage dtype.


def _rebuild_tensor(storage, offset, size, stride, *unused, dtype=None):
  """torch._utils._rebuild_tensor_v2: a strided view of `storage`, copied out."""
  data = storage.data if dtype is None else storage.data.view(dtype)
  size, stride = tuple(size), tuple(stride)
  if any(s == 0 for s in size):
    return np.zeros(size, data.dtype)
  last = offset + sum((n - 1) * s for n, s in zip(size, stride))
  if offset < 0 or last >= data.size:
    raise ValueError(f'tensor of size {size} runs past its storage of {data.size} elements')
  base = data[offset:]
  view = np.lib.stride_tricks.as_strided(
      base, size, tuple(s * data.itemsize for s in stride), writeable=False)
  return np.array(view, order='C')  # Not ascontiguousarray: it turns 0-d into 1-d.


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, *unused):
  return _rebuild_tensor(storage, offset, size, stride, dtype=dtype)


def _rebuild_parameter(data, *unused):
  return data


def _rebuild_from_type_v2(func, new_type, args, state):
  return func(*args)


def _torch_dtype(name):
  return np.dtype(_TORCH_DTYPES[name])


class _TorchUnpickler(pickle.Unpickler):
  """Rebuilds a state dict from `data.pkl`; every other class becomes `_Placeholder`."""

  def __init__(self, file, read_record, byteorder, path):
    super().__init__(file)
    self._path = path
    self._read_record = read_record  # key -> bytes of `<prefix>/data/<key>`.
    self._byteorder = byteorder
    self._storages = {}

  def find_class(self, module, name):
    if module == 'torch._utils':
      rebuild = {'_rebuild_tensor_v2': _rebuild_tensor, '_rebuild_tensor_v3': _rebuild_tensor_v3,
                 '_rebuild_parameter': _rebuild_parameter,
                 '_rebuild_parameter_with_state': _rebuild_parameter}
      if name in rebuild:
        return rebuild[name]
    if module == 'torch._tensor' and name == '_rebuild_from_type_v2':
      return _rebuild_from_type_v2
    if module in ('torch', 'torch.storage') and name in _TORCH_STORAGES:
      return name  # Only ever a tag inside a persistent id.
    if module == 'torch' and name in _TORCH_DTYPES:
      return _torch_dtype(name)
    if module == 'collections' and name == 'OrderedDict':
      return collections.OrderedDict
    if module == 'builtins' and name in _BUILTINS:
      return getattr(__import__('builtins'), name)
    if (module, name) in _NUMPY_GLOBALS:
      return super().find_class(module, name)
    return type(name, (_Placeholder,), {'__module__': 'vidjax.placeholder.' + module})

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and pid and pid[0] == 'storage'):
      raise pickle.UnpicklingError(f'unsupported persistent id {pid!r}')
    storage_type, key = pid[1], str(pid[2])
    if not isinstance(storage_type, str):  # A placeholder: complex, quantized, float8, ...
      raise UserError(f'checkpoint {self._path} holds {storage_type.__name__} tensors, which '
                      'vidjax cannot read; convert them to float32 before saving')
    if key not in self._storages:
      dtype = np.dtype(_TORCH_STORAGES[storage_type])
      raw = self._read_record(key)
      if len(raw) % dtype.itemsize:
        raise ValueError(f'storage {key} has {len(raw)} bytes, not a whole number of {dtype}')
      data = np.frombuffer(raw, dtype.newbyteorder('<' if self._byteorder == 'little' else '>'))
      self._storages[key] = _Storage(data.astype(dtype))  # Native byte order, writable copy.
    return self._storages[key]


def _load_torch(path):
  if not zipfile.is_zipfile(path):
    with open(path, 'rb') as f:
      head = f.read(4)
    if head.startswith(b'PK'):
      raise _corrupt(path, 'broken zip archive')
    if head[:1] == b'\x80':
      raise UserError(f'checkpoint {path} is in the legacy (pre-1.6) torch format; re-save it '
                      'with torch>=1.6: torch.save(torch.load(f), f)')
    raise _corrupt(path, 'not a torch zip archive')
  try:
    with zipfile.ZipFile(path) as archive:
      names = archive.namelist()
      pickles = [n for n in names if n.endswith('/data.pkl') and n.count('/') == 1]
      if not pickles:
        raise _corrupt(path, 'no <prefix>/data.pkl in the archive')
      prefix = pickles[0][:-len('data.pkl')]
      if prefix + 'constants.pkl' in names:
        raise UserError(f'checkpoint {path} is a TorchScript archive; save the state dict '
                        'instead: torch.save(model.state_dict(), f)')
      byteorder = 'little'
      if prefix + 'byteorder' in names:
        byteorder = archive.read(prefix + 'byteorder').decode().strip()
      with archive.open(pickles[0]) as f:
        unpickler = _TorchUnpickler(f, lambda key: archive.read(f'{prefix}data/{key}'), byteorder,
                                    path)
        return unpickler.load()
  except UserError:
    raise
  except (zipfile.BadZipFile, KeyError, EOFError, ValueError, pickle.UnpicklingError,
          OSError, TypeError, AttributeError, IndexError) as e:
    raise _corrupt(path, f'{type(e).__name__}: {e}'.splitlines()[0]) from None


def _flatten(tree, path):
  if isinstance(tree, np.ndarray):
    raise UserError(f'checkpoint {path} holds a single array, not a dict of them; '
                    'save a state dict: torch.save(model.state_dict(), f)')
  if not isinstance(tree, dict):
    raise UserError(f'checkpoint {path} holds a {type(tree).__name__}, not a dict of arrays; '
                    'save a state dict: torch.save(model.state_dict(), f)')
  return _array_leaves(tree, '.')


def _array_leaves(tree, sep):
  """{joined name: array} of a nested dict; other leaves (counters, strings) dropped."""
  flat = {}

  def visit(node, name):
    if isinstance(node, np.ndarray):
      flat[name] = node
    elif isinstance(node, dict):
      for key, value in node.items():
        visit(value, f'{name}{sep}{key}' if name else str(key))

  visit(tree, '')
  return flat


# --- safetensors and npz ----------------------------------------------------------------------

def _load_safetensors(path):
  """The safetensors layout: u64 little-endian header length, JSON header, raw bytes."""
  size = os.path.getsize(path)
  with open(path, 'rb') as f:
    head = f.read(8)
    if len(head) < 8:
      raise _corrupt(path, 'no header length')
    header_len = int.from_bytes(head, 'little')
    if 8 + header_len > size:
      raise _corrupt(path, f'header of {header_len} bytes runs past the end')
    try:
      header = json.loads(f.read(header_len))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
      raise _corrupt(path, f'bad JSON header: {e}') from None
  start = 8 + header_len
  buffer = np.memmap(path, np.uint8, 'r', offset=start, shape=(size - start,)) if size > start \
      else np.zeros(0, np.uint8)
  arrays = {}
  for name, info in header.items():
    if name == '__metadata__':
      continue
    if info['dtype'] not in _SAFETENSORS_DTYPES:
      raise UserError(f"checkpoint {path}: tensor '{name}' has dtype {info['dtype']} that "
                      'vidjax cannot read; convert it to F32, F16 or BF16')
    dtype = np.dtype(_SAFETENSORS_DTYPES[info['dtype']]).newbyteorder('<')
    begin, end = info['data_offsets']
    shape = tuple(info['shape'])
    if end > buffer.size or end - begin != int(np.prod(shape)) * dtype.itemsize:
      raise _corrupt(path, f"tensor '{name}' bytes {begin}:{end} do not fit")
    arrays[name] = np.frombuffer(buffer[begin:end].tobytes(), dtype).astype(dtype.newbyteorder('='))
    arrays[name] = arrays[name].reshape(shape)
  return arrays


def _load_npz(path):
  try:
    with np.load(path, allow_pickle=False) as data:
      return {name: data[name] for name in data.files}
  except (zipfile.BadZipFile, ValueError, EOFError, OSError) as e:
    raise _corrupt(path, f'{type(e).__name__}: {e}'.splitlines()[0]) from None


# --- flax msgpack (scenic) --------------------------------------------------------------------

def _load_flax_msgpack(path):
  """The parameters of a flax train state written by `flax.training.checkpoints`, '/'-joined."""
  from flax import serialization
  with open(path, 'rb') as f:
    data = f.read()
  try:
    tree = serialization.msgpack_restore(data)
  except (ValueError, TypeError, KeyError, IndexError, OverflowError) as e:
    raise _corrupt(path, f'{type(e).__name__}: {e}'.splitlines()[0]) from None
  if not isinstance(tree, dict):
    raise _corrupt(path, f'a msgpack {type(tree).__name__}, not a train state')
  for root in _FLAX_PARAMS_ROOTS:
    node = tree
    for key in root:
      node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and node:
      tree = node
      break
  flat = _array_leaves(tree, '/')
  if not flat:
    raise UserError(f'checkpoint {path} holds no arrays; give a flax checkpoint of a model')
  return flat
