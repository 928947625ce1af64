"""Devices: multi-host start-up, the mesh, and where arrays live on it.

One code path for 1 CPU, N local devices and many hosts. The batch is
sharded over the mesh's `data` axis. Parameters are replicated by default.
Every process feeds its own slice of the global batch, and
`jax.make_array_from_process_local_data` stitches the slices together.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from vidjax.errors import UserError

DATA_AXIS = 'data'
MODEL_AXIS = 'model'


def _cluster_detected() -> bool:
  """True where jax.distributed can find its peers without being told."""
  slurm_tasks = int(os.environ.get('SLURM_NTASKS', '1') or 1)
  tpu_hosts = os.environ.get('TPU_WORKER_HOSTNAMES', '')
  return slurm_tasks > 1 or ',' in tpu_hosts


def initialize(coordinator_address: str = '', num_processes: int = 0, process_id: int = -1) -> None:
  """Starts JAX's multi-controller runtime when there is more than one host.

  Explicit arguments win; otherwise TPU VM pods and SLURM are detected from
  the environment; on one host nothing happens.
  """
  explicit = bool(coordinator_address)
  if not explicit and not _cluster_detected():
    return
  # CPU collectives across processes need gloo (tests run 2 processes on CPU).
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  if explicit:
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
  else:
    jax.distributed.initialize()


def make_mesh(data: int = -1, model: int = 1, devices=None) -> Mesh:
  """A ('data', 'model') mesh over all devices; -1 takes what is left."""
  devices = list(jax.devices() if devices is None else devices)
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


def state_shardings(shapes: Any, mesh: Mesh, rule: str = 'replicated') -> Any:
  """Where each array of the train state lives: `rule` from config.mesh.param_sharding.

  'replicated': every device holds everything (small models, the default).
  """
  if rule == 'replicated':
    return jax.tree.map(lambda _: replicated(mesh), shapes)
  raise UserError(f"unknown mesh.param_sharding '{rule}'; use 'replicated'")


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over `data`, the rest whole."""
  return NamedSharding(mesh, P(DATA_AXIS))


def per_process_batch_size(global_batch_size: int, mesh: Mesh) -> int:
  data_size = mesh.shape[DATA_AXIS]
  if global_batch_size % data_size:
    raise UserError(f'batch size {global_batch_size} is not divisible by the {data_size} '
                     f'data-parallel devices; use a multiple of {data_size}')
  return global_batch_size // jax.process_count()


def global_batch(local: Any, mesh: Mesh) -> Any:
  """Host-local numpy batch (this process's rows) -> global sharded arrays."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local)


def is_main_process() -> bool:
  return jax.process_index() == 0
