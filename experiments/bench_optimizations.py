"""Each optimization the issue lists, before and after, measured in one run.

Every comparison builds the variants as train steps (bench_step.build), then
times them in alternation -- one step of A, one of B, one of A, ... each
followed by a peak matmul -- so a load from other programs falls on both.
The ratio `after / before` of median step times is what the note reports.
MFU uses the model FLOPs of the baseline (remat's recomputation is not model
work) and the matmul peak of the variant's own dtype.

Variants that need a change inside the library are built here as local
subclasses with the same parameter tree, never by editing vidjax/:
- `SingleFrameVmap`, `SingleFrameLoop`: the per-frame CNN over time by
  `nn.vmap` or a Python loop, instead of folding T into the batch;
- `EinsumAttention`: softmax(q k^T / sqrt(d)) v written out, instead of
  `jax.nn.dot_product_attention`.
"""
from __future__ import annotations

import contextlib
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vidjax.models import cnn as cnn_lib
from vidjax.models import space_time_attention as sta
from vidjax.models.single_frame import SingleFrame

from experiments import bench_step


class SingleFrameVmap(SingleFrame):
  """SingleFrame with the CNN vmapped over time (shared parameters)."""

  @nn.compact
  def __call__(self, video, *, train: bool = False):  # [B, T, H, W, C] -> [B, K]
    cnn = nn.vmap(cnn_lib.FrameCNN, in_axes=1, out_axes=1, variable_axes={'params': None},
                  split_rngs={'params': False})
    x = cnn(self.cnn_features, self.cnn_embed_dim, self.dtype, self.param_dtype,
            name='cnn')(video)  # [B, T, D]
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                      name='head')(x)  # [B, T, K]
    return logits.mean(axis=1).astype(jnp.float32)


class SingleFrameLoop(SingleFrame):
  """SingleFrame with a Python loop over frames (one CNN call per frame)."""

  @nn.compact
  def __call__(self, video, *, train: bool = False):
    cnn = cnn_lib.FrameCNN(self.cnn_features, self.cnn_embed_dim, self.dtype, self.param_dtype,
                           name='cnn')
    x = jnp.stack([cnn(video[:, t]) for t in range(video.shape[1])], axis=1)  # [B, T, D]
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                      name='head')(x)
    return logits.mean(axis=1).astype(jnp.float32)


class EinsumAttention(sta.Attention):
  """The same attention (same parameters) with the softmax written out."""

  @nn.compact
  def __call__(self, x):  # [B, ..., L, D]
    *lead, length, dim = x.shape
    heads = self.num_heads
    x = x.reshape(-1, length, dim)
    qkv = nn.DenseGeneral((3, heads, dim // heads), dtype=self.dtype,
                          param_dtype=self.param_dtype, name='qkv')(x)  # [B', L, 3, h, D/h]
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    logits = jnp.einsum('blhd,bmhd->bhlm', q, k) / np.sqrt(dim // heads)  # [B', h, L, L]
    weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(v.dtype)
    out = jnp.einsum('bhlm,bmhd->blhd', weights, v)  # [B', L, h, D/h]
    out = nn.DenseGeneral(dim, axis=(-2, -1), dtype=self.dtype, param_dtype=self.param_dtype,
                          name='out')(out)
    return out.reshape(*lead, length, dim)


@contextlib.contextmanager
def attention_class(cls):
  """Makes the transformer blocks build `cls` while tracing inside the block."""
  saved = sta.Attention
  sta.Attention = cls
  try:
    yield
  finally:
    sta.Attention = saved


def compare(variants: list[tuple[str, bench_step.Step, bench_step.Peak]], flops: float,
            steps: int = 6) -> dict:
  """Times the variants in alternation; {label: step_s, compile_s, memory, mfu}."""
  for _, step, _ in variants:
    if step.compiled is None:
      step.compile()
    step.run()
  times = {label: [] for label, _, _ in variants}
  ratios = {label: [] for label, _, _ in variants}
  for _ in range(steps):
    for label, step, peak in variants:
      begin = time.perf_counter()
      step.run()
      dt = time.perf_counter() - begin
      times[label].append(dt)
      ratios[label].append(flops / dt / peak.sample())
  out = {}
  for label, step, _ in variants:
    mem = bench_step.memory(step)
    out[label] = {'step_s': float(np.median(times[label])), 'compile_s': step.compile_s,
                  'mfu': float(np.median(ratios[label])), 'peak_bytes': mem['peak_bytes'],
                  'temp_bytes': mem.get('temp_bytes'), 'step_times_s': times[label]}
  return out


def _row(name: str, before: str, after: str, result: dict, verdict: str, **extra) -> dict:
  b, a = result[before], result[after]
  return {'optimization': name, 'before': before, 'after': after, 'results': result,
          'speedup': b['step_s'] / a['step_s'],
          'memory_ratio': (a['peak_bytes'] / b['peak_bytes']) if b['peak_bytes'] else None,
          'verdict': verdict, **extra}


def host_sync(step: bench_step.Step, steps: int = 20, rounds: int = 3, every: int = 20) -> dict:
  """The loop fetching the loss every step vs every `every` steps (train.py's way)."""
  def loop(sync_each: bool) -> float:
    pending = []
    begin = time.perf_counter()
    for i in range(steps):
      metrics = step.run(block=False)
      if sync_each:
        float(metrics['loss'])
      else:
        pending.append(metrics)
        if (i + 1) % every == 0:
          jax.device_get(pending)
          pending = []
    jax.device_get(pending)
    jax.block_until_ready(step.state)
    return (time.perf_counter() - begin) / steps

  step.run()
  per_step = {'sync every step': [], f'fetch every {every} steps': []}
  for _ in range(rounds):
    per_step['sync every step'].append(loop(True))
    per_step[f'fetch every {every} steps'].append(loop(False))
  result = {k: {'step_s': float(np.median(v)), 'step_times_s': v, 'peak_bytes': None,
                'compile_s': step.compile_s, 'mfu': float('nan')} for k, v in per_step.items()}
  return result


def run(cases: dict[str, bench_step.Case], built: dict[str, bench_step.Step],
        peaks: dict[str, bench_step.Peak], flops: dict[str, float], *, steps: int = 6,
        log=print) -> list[dict]:
  """All comparisons, by the table's keys: 'single_frame', 'lrcn', 'convlstm'
  (demo shapes), 'divided_bench', 'lrcn_bench'. `built` holds the table's
  compiled steps (reused as baselines), `flops` their model FLOPs.
  """
  f32 = peaks['float32']
  rows = []

  def report(row):
    rows.append(row)
    res = row['results']
    log(f"  {row['optimization']}: " + ', '.join(
        f"{k} {v['step_s'] * 1e3:.1f} ms" for k, v in res.items())
        + f" -> {row['verdict']}")

  def guarded(fn):
    try:
      fn()
    except Exception as e:  # A failed comparison is reported, the others still run.
      rows.append({'optimization': fn.__name__, 'error': f'{type(e).__name__}: {e}'[:300]})
      log(f'  {fn.__name__}: failed: {e}')

  def fold_time():
    key = 'single_frame'
    case = cases[key]
    base = built.get(key) or bench_step.build(case)
    cfg = base.config.model.single_frame
    kwargs = dict(num_classes=bench_step.NUM_CLASSES, cnn_features=tuple(cfg.cnn_features),
                  cnn_embed_dim=cfg.cnn_embed_dim, dropout=cfg.dropout)
    res = compare([('time folded into batch', base, f32),
                   ('nn.vmap over time', bench_step.build(case, model=SingleFrameVmap(**kwargs)), f32),
                   ('Python loop over frames',
                    bench_step.build(case, model=SingleFrameLoop(**kwargs)), f32)],
                  flops[key], steps=steps * 2)
    best = min(res, key=lambda k: res[k]['step_s'])
    report(_row('per-frame CNN: time folded into the batch (single_frame, demo shape)',
                'nn.vmap over time', 'time folded into batch', res,
                f'kept (fastest: {best})' if best == 'time folded into batch'
                else f'kept for clarity; {best} measured fastest', loop_speedup=(
                    res['Python loop over frames']['step_s'] /
                    res['time folded into batch']['step_s'])))

  def fused_attention():
    key = 'divided_bench'
    case = cases[key]
    base = built.get(key) or bench_step.build(case)
    with attention_class(EinsumAttention):
      einsum = bench_step.build(case).compile()
    res = compare([('written-out softmax attention', einsum, f32),
                   ('jax.nn.dot_product_attention', base, f32)], flops[key], steps)
    report(_row('fused attention (divided, bench shape)', 'written-out softmax attention',
                'jax.nn.dot_product_attention', res,
                'kept: same speed on CPU (XLA lowers both alike); on GPU it reaches cuDNN '
                "flash attention with attention_implementation='cudnn'"))

  def bf16():
    key = 'divided_bench'
    case = cases[key]
    base = built.get(key) or bench_step.build(case)
    half = bench_step.build(case.with_overrides('model.dtype=bfloat16', name=case.name + ' bf16'))
    res = compare([('float32', base, f32), ('bfloat16 compute, float32 params', half,
                                            peaks['bfloat16'])], flops[key], steps)
    faster = res['bfloat16 compute, float32 params']['step_s'] < res['float32']['step_s']
    report(_row('bf16 compute with f32 params (divided, bench shape)', 'float32',
                'bfloat16 compute, float32 params', res,
                'use on GPU/TPU (--dtype auto picks it there)' + (
                    '' if faster else '; slower on this CPU, so float32 stays the CPU default')))

  def donation():
    key = 'divided_bench'
    case = cases[key]
    base = built.get(key) or bench_step.build(case)
    kept = bench_step.build(case, donate=False)
    res = compare([('not donated', kept, f32), ('donated state', base, f32)],
                  flops[key], steps)
    report(_row('donated state buffers (divided, bench shape)', 'not donated', 'donated state',
                res, 'kept: the state is updated in place (see memory); time unchanged'))

  def remat():
    key = 'divided_bench'
    case = cases[key]
    base = built.get(key) or bench_step.build(case)
    rem = bench_step.build(case.with_overrides('model.remat=true', name=case.name + ' remat'))
    res = compare([('no remat', base, f32), ('remat every block', rem, f32)],
                  flops[key], steps)
    report(_row('remat (divided, bench shape)', 'no remat', 'remat every block', res,
                'off by default: it trades step time for activation memory; turn on '
                '(model.remat=true) only when a model does not fit'))

  def no_host_sync():
    key = 'lrcn'
    case = cases[key]
    base = built.get(key) or bench_step.build(case).compile()
    res = host_sync(base)
    before, after = list(res)
    report(_row('no host sync inside the loop (lrcn, demo shape)', before, after, res,
                'kept: train.py fetches metrics every log_every steps'))

  def convlstm_unroll():
    key = 'convlstm'
    case = cases[key]
    base = built.get(key) or bench_step.build(case)
    scanned = bench_step.build(case.with_overrides('model.convlstm.unroll=1',
                                                   name=case.name + ' scanned'))
    res = compare([('nn.scan, unroll=1', scanned, f32), ('unrolled (unroll=64)', base, f32)],
                  flops[key], max(3, steps // 2))
    report(_row('ConvLSTM unrolled vs scanned (convlstm, demo shape)', 'nn.scan, unroll=1',
                'unrolled (unroll=64)', res, 'kept: unroll=64 is the default'))

  def lrcn_unroll():
    key = 'lrcn_bench'
    case = cases[key]
    base = built.get(key) or bench_step.build(case)
    t = base.config.data.num_frames
    unrolled = bench_step.build(case.with_overrides(f'model.lrcn.unroll={t}',
                                                    name=case.name + ' unrolled'))
    res = compare([('LSTM scanned, unroll=1', base, f32),
                   (f'LSTM unrolled, unroll={t}', unrolled, f32)], flops[key], steps)
    after = f'LSTM unrolled, unroll={t}'
    gain = res['LSTM scanned, unroll=1']['step_s'] / res[after]['step_s']
    report(_row('LRCN LSTM unrolled vs scanned (lrcn, bench shape)', 'LSTM scanned, unroll=1',
                after, res, 'proposed as the CPU default (model.lrcn.unroll)' if gain > 1.05
                else 'no clear gain; unroll=1 stays'))

  for fn in (fold_time, fused_attention, bf16, donation, remat, no_host_sync, convlstm_unroll,
             lrcn_unroll):
    guarded(fn)
  return rows
