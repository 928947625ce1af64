"""Devices: multi-host start-up, the mesh, and where arrays live on it.

One code path for 1 CPU, N local devices and many hosts. The batch is
sharded over the mesh's `data` axis. Parameters are replicated by default,
or sharded FSDP-style over `data` (`mesh.param_sharding='fsdp'`). Every
process feeds its own rows of the global batch (process p of P: rows
[p * B / P, (p + 1) * B / P), see `pipeline.train_dataset`), and
`jax.make_array_from_process_local_data` stitches the rows together; the
mesh orders devices by process so that those rows land on that process's
devices.
"""
from __future__ import annotations

import logging
import os
import urllib.request
from typing import Any, Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from vidjax.errors import UserError

log = logging.getLogger(__name__)

DATA_AXIS = 'data'
MODEL_AXIS = 'model'
PARAM_SHARDINGS = ('replicated', 'fsdp')
# fsdp leaves arrays smaller than this whole on every device: sharding a bias
# or a norm scale saves nothing and costs a gather per use.
FSDP_MIN_SIZE = 2**14

_METADATA = 'http://metadata.google.internal/computeMetadata/v1/instance/attributes/'
# What jax's SLURM detection reads; all are set inside an `srun` step.
_SLURM_STEP = ('SLURM_JOB_ID', 'SLURM_STEP_NODELIST', 'SLURM_NTASKS', 'SLURM_PROCID', 'SLURM_LOCALID')


# ----------------------------------------------------------------------------
# Start-up.
# ----------------------------------------------------------------------------

def _tpu_vm_workers() -> int:
  """Hosts in this Cloud TPU slice (from the VM's metadata); 0 off a TPU VM.

  Asked only where TPU chips sit on the PCI bus (jax's own check, which
  knows every generation's PCI id), so a laptop or a GPU node never waits
  on the metadata server.
  """
  from jax._src import hardware_utils  # Private, but jax is pinned (requirements.txt).
  if hardware_utils.num_available_tpu_chips_and_device_id()[0] == 0:
    return 0
  request = urllib.request.Request(_METADATA + 'worker-network-endpoints',
                                   headers={'Metadata-Flavor': 'Google'})
  try:
    with urllib.request.urlopen(request, timeout=10) as response:
      endpoints = response.read().decode().strip()
  except OSError:  # A TPU VM without that key: a single host.
    return 1
  return len([e for e in endpoints.split(',') if e])


def cluster_detected(environ: Mapping[str, str] | None = None, tpu_vm_workers=_tpu_vm_workers) -> str:
  """The cluster jax.distributed can join without being told, or ''.

  'slurm': an `srun` step of several tasks (jax reads SLURM_* and gives each
  task only the GPU of its local rank, so rely on this with one task per
  GPU; launch/slurm_gpu.sbatch runs one task per node and passes flags);
  'tpu': a TPU slice of several hosts (GKE's TPU_WORKER_HOSTNAMES, or a
  TPU VM's metadata). One host, or one SLURM task, is no cluster.
  """
  environ = os.environ if environ is None else environ
  if all(k in environ for k in _SLURM_STEP) and int(environ['SLURM_NTASKS'] or 1) > 1:
    return 'slurm'
  if ',' in environ.get('TPU_WORKER_HOSTNAMES', '') or environ.get('MEGASCALE_COORDINATOR_ADDRESS'):
    return 'tpu'
  if tpu_vm_workers() > 1:
    return 'tpu'
  return ''


def initialize(coordinator_address: str = '', num_processes: int = 0, process_id: int = -1) -> None:
  """Starts JAX's multi-controller runtime when there is more than one host.

  Explicit arguments (the --coordinator_address, --num_processes and
  --process_id flags) win; otherwise a TPU slice or a SLURM job is detected
  from the environment (`cluster_detected`); on one host nothing happens,
  and the same command runs there unchanged. Must run before anything asks
  jax for its devices.
  """
  explicit = bool(coordinator_address)
  if explicit and (num_processes < 1 or not 0 <= process_id < num_processes):
    raise UserError(f'--coordinator_address needs --num_processes >= 1 and 0 <= --process_id < '
                    f'--num_processes; got --num_processes={num_processes} '
                    f'--process_id={process_id}')
  found = '' if explicit else cluster_detected()
  if not explicit and not found:
    return
  # CPU collectives across processes need gloo (the tests run 2 processes on
  # CPU); GPUs and TPUs ignore this setting.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  if explicit:
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
  else:
    jax.distributed.initialize()
  # Every process says once that it is up; after this only process 0 reports
  # progress, and the others speak again only on an error.
  log.info('process %d of %d up (%s): %d local of %d %s devices', jax.process_index(),
           jax.process_count(), coordinator_address or f'auto-detected {found}',
           jax.local_device_count(), jax.device_count(), jax.devices()[0].platform)


def is_main_process() -> bool:
  """Process 0: the one that logs, writes summaries and draws pictures."""
  return jax.process_index() == 0


# ----------------------------------------------------------------------------
# The mesh and shardings.
# ----------------------------------------------------------------------------

def make_mesh(data: int = -1, model: int = 1, devices=None) -> Mesh:
  """A ('data', 'model') mesh over all devices; -1 takes what is left.

  Devices are ordered by process, then id: process p's devices hold the
  p-th block of the `data` axis, so the rows it feeds to `global_batch` are
  rows p * B / P ... of the global batch, whatever order jax lists them in.
  """
  devices = list(jax.devices() if devices is None else devices)
  devices.sort(key=lambda d: (d.process_index, d.id))
  n = len(devices)
  if data == -1:
    if n % model:
      raise UserError(f'mesh.model={model} does not divide the {n} devices')
    data = n // model
  if data * model > n or (data * model < n and jax.process_count() > 1):
    raise UserError(f'mesh data={data} x model={model} needs {data * model} devices, '
                    f'found {n}; set --config.mesh.data=-1')
  # On one host a smaller mesh may use the first devices (e.g. mesh.data=1).
  grid = np.asarray(devices[:data * model], dtype=object).reshape(data, model)
  return Mesh(grid, (DATA_AXIS, MODEL_AXIS))  # Mesh(...) keeps Auto axis types.


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def fsdp_spec(shape: tuple[int, ...], data_size: int, min_size: int = FSDP_MIN_SIZE) -> P:
  """The largest dimension that `data_size` divides goes over `data`; else whole.

  Arrays under `min_size` elements stay whole (replicated).
  """
  if data_size == 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
    return P()
  fits = [i for i, d in enumerate(shape) if d % data_size == 0]
  if not fits:
    return P()
  dim = max(fits, key=lambda i: (shape[i], -i))  # The largest; the first of equals.
  return P(*([None] * dim + [DATA_AXIS]))


def state_shardings(shapes: Any, mesh: Mesh, rule: str = 'replicated') -> Any:
  """Where each array of the train state lives: `rule` from config.mesh.param_sharding.

  'replicated': every device holds everything (small models, the default).
  'fsdp': each parameter and optimizer array of at least FSDP_MIN_SIZE
  elements is split over `data` along its largest dimension that the data
  axis divides (Adam's moments follow their parameters, having their
  shapes); XLA gathers a parameter where a step uses it. Memory per device
  falls by about the data axis size, for big models. The numbers computed
  are the same as replicated, up to float summation order.
  A checkpoint restores under either rule and onto any device count: orbax
  reads each array into the layout asked for.
  """
  if rule == 'replicated':
    return jax.tree.map(lambda _: replicated(mesh), shapes)
  if rule == 'fsdp':
    data_size = mesh.shape[DATA_AXIS]
    return jax.tree.map(lambda s: NamedSharding(mesh, fsdp_spec(tuple(s.shape), data_size)), shapes)
  raise UserError(f"unknown mesh.param_sharding '{rule}'; use one of {', '.join(PARAM_SHARDINGS)}")


# ----------------------------------------------------------------------------
# The batch.
# ----------------------------------------------------------------------------

def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over `data`, the rest whole."""
  return NamedSharding(mesh, P(DATA_AXIS))


def per_process_batch_size(global_batch_size: int, mesh: Mesh) -> int:
  """Rows of each global batch that this process feeds."""
  data_size = mesh.shape[DATA_AXIS]
  if global_batch_size % data_size:
    raise UserError(f'batch size {global_batch_size} is not divisible by the {data_size} '
                     f'data-parallel devices; use a multiple of {data_size}')
  return global_batch_size // jax.process_count()


def global_batch(local: Any, mesh: Mesh) -> Any:
  """Host-local numpy batch (this process's rows) -> global sharded arrays."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local)
