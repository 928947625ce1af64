"""Where a compiled step's time goes: per-op times from a `jax.profiler` trace.

MFU says how far a step is from the matmul peak; this says why. XLA:CPU runs
every HLO instruction of the compiled module as a "thunk" and the profiler
records one event per thunk, named like the instruction (`ynn_fusion.51`,
`convolution-base-dilated`, `copy.355`). We trace a few steps, sum each
instruction's time, and sort the instructions into kinds read from the
optimized HLO (`compiled.as_text()`):

  conv          a convolution, alone or inside a fusion
  matmul        a dot, alone or inside a fusion
  reduction     a reduce that is not part of a dot or conv (norm statistics, sums)
  elementwise   any other fusion (activations, norms' scale and shift, optimizer)
  copy          copies and transposes (layout changes)
  other         everything else (custom calls, slices, ...)

Control flow (`while`, `call`, `conditional`) encloses the ops it runs, so it
is left out of the sums, as are the runtime's own events. The runtime may
run independent ops at once on its threads, so op time can add up to more
than wall time (`overlap`); the fractions are of op time. On GPU the kernel
names differ from the instructions', so the bench profiles on CPU only.

  breakdown = op_breakdown(lambda: run_one_step(), compiled.as_text(), steps=3)
"""
from __future__ import annotations

import collections
import glob
import re
import tempfile
import time
from typing import Callable

import jax

KINDS = ('conv', 'matmul', 'reduction', 'elementwise', 'copy', 'other')
_CONTROL = {'while', 'call', 'conditional'}
_INSTRUCTION = re.compile(r'^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$')
_COMPUTATION = re.compile(r'^\s*(?:ENTRY\s+)?%?([\w.\-]+)\s*\(.*\{\s*$')


def _opcode(rhs: str) -> str:
  """'f32[64,8]{1,0} fusion(%a, %b), kind=...' -> 'fusion' (tuple shapes too)."""
  i = 0
  if rhs.startswith('('):  # a tuple shape: skip to its closing parenthesis
    depth = 0
    for i, ch in enumerate(rhs):
      depth += ch == '('
      depth -= ch == ')'
      if depth == 0:
        break
    i += 1
  match = re.search(r'\s([\w\-]+)\(', rhs[i:])
  return match.group(1) if match else ''


def parse_hlo(hlo_text: str) -> dict[str, str]:
  """Instruction name -> kind (see KINDS, or 'control'), for every instruction."""
  computations: dict[str, list[str]] = collections.defaultdict(list)  # name -> opcodes
  instructions: dict[str, tuple[str, str]] = {}  # name -> (opcode, called computation)
  current = ''
  for line in hlo_text.splitlines():
    header = _COMPUTATION.match(line)
    if header and ' = ' not in line:
      current = header.group(1)
      continue
    match = _INSTRUCTION.match(line)
    if not match:
      continue
    name, rhs = match.groups()
    opcode = _opcode(rhs)
    calls = re.search(r'calls=%?([\w.\-]+)', rhs)
    instructions[name] = (opcode, calls.group(1) if calls else '')
    computations[current].append(opcode)

  def kind_of(opcode: str, inner: list[str]) -> str:
    ops = set(inner) | {opcode}
    if opcode in _CONTROL:
      return 'control'
    if 'convolution' in ops:
      return 'conv'
    if 'dot' in ops:
      return 'matmul'
    if 'reduce' in ops or 'reduce-window' in ops:
      return 'reduction'
    if opcode == 'fusion':
      layout_only = set(inner) <= {'copy', 'transpose', 'bitcast', 'parameter'}
      return 'copy' if layout_only else 'elementwise'
    if opcode in ('copy', 'transpose'):
      return 'copy'
    return 'other'

  return {name: kind_of(opcode, computations.get(calls, []))
          for name, (opcode, calls) in instructions.items()}


def op_breakdown(run_step: Callable[[], None], hlo_text: str, steps: int = 3,
                 top: int = 8) -> dict:
  """Traces `steps` calls of `run_step` (which must block) and sums op time.

  Returns {'ms_per_step': {kind: ms}, 'fraction': {kind: share of op time},
  'top': [(instruction, kind, ms per step)], 'op_ms_per_step': total,
  'wall_ms_per_step', 'overlap': op time / wall time}. An overlap near 1
  means the ops ran one after another; above 1, independent ops overlapped.
  """
  kinds = parse_hlo(hlo_text)
  with tempfile.TemporaryDirectory(prefix='bench_trace_') as tmp:
    jax.profiler.start_trace(tmp)
    try:
      begin = time.perf_counter()
      for _ in range(steps):
        run_step()
      wall_ms = (time.perf_counter() - begin) * 1e3 / steps
    finally:
      jax.profiler.stop_trace()
    files = sorted(glob.glob(f'{tmp}/**/*.xplane.pb', recursive=True))
    if not files:
      return {}
    profile = jax.profiler.ProfileData.from_file(files[-1])
    per_op: collections.Counter = collections.Counter()
    for plane in profile.planes:
      for line in plane.lines:
        for event in line.events:
          if event.name in kinds and kinds[event.name] != 'control':
            per_op[event.name] += event.duration_ns
  total = sum(per_op.values())
  by_kind = {k: 0.0 for k in KINDS}
  for name, ns in per_op.items():
    by_kind[kinds[name]] += ns
  return {
      'wall_ms_per_step': wall_ms,
      'op_ms_per_step': total / 1e6 / steps,
      'overlap': total / 1e6 / steps / wall_ms,
      'ms_per_step': {k: v / 1e6 / steps for k, v in by_kind.items()},
      'fraction': {k: (v / total if total else 0.0) for k, v in by_kind.items()},
      'top': [(name, kinds[name], ns / 1e6 / steps) for name, ns in per_op.most_common(top)],
  }


def describe(breakdown: dict) -> str:
  """One line: 'conv 55%, elementwise 20%, ...' of op time."""
  if not breakdown:
    return 'no trace events'
  parts = sorted(breakdown['fraction'].items(), key=lambda kv: -kv[1])
  return (', '.join(f'{k} {v:.0%}' for k, v in parts if v >= 0.005) +
          f"; op time / wall time {breakdown['overlap']:.2f}")
