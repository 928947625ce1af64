"""Each optimization the issue lists, before and after, measured in one run.

Every comparison builds the variants as train steps (bench_step.build), then
times them in alternation -- one step of A, one of B, one of A, ... each
followed by a peak matmul -- so a load from other programs falls on both.
The ratio `after / before` of median step times is what the note reports.
MFU uses the model FLOPs of the baseline (remat's recomputation is not model
work) and the matmul peak of the variant's own dtype.

Variants that need a change inside the library are built here as local
subclasses with the same parameter tree, never by editing vidjax/:
- `SingleFrameVmap`: the per-frame CNN over time by `nn.vmap`;
- `SingleFrameChunked`, `LRCNChunked`: the per-frame CNN called on groups of
  frames (`per_frame_in_chunks`; one call per frame = a Python loop) instead
  of once on all T frames folded into the batch;
- `EinsumAttention`: softmax(q k^T / sqrt(d)) v written out, instead of
  `jax.nn.dot_product_attention`.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vidjax.models import cnn as cnn_lib
from vidjax.models import space_time_blocks
from vidjax.models.lrcn import LRCN
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


def per_frame_in_chunks(cnn, video, chunks: int):
  """The per-frame CNN on [B, T, H, W, C] as `chunks` calls, each on T/chunks
  frames folded into the batch: chunks=1 is the library's folding, chunks=T a
  Python loop over frames. Returns [B, T, D]."""
  b, t = video.shape[:2]
  if t % chunks:
    raise ValueError(f'{chunks} chunks do not divide {t} frames')
  parts = [cnn(cnn_lib.fold_time(part)).reshape(b, t // chunks, -1)
           for part in jnp.split(video, chunks, axis=1)]
  return jnp.concatenate(parts, axis=1)  # [B, T, D]


class SingleFrameChunked(SingleFrame):
  """SingleFrame with the CNN called `chunks` times over time (same parameters)."""
  chunks: int = 1

  @nn.compact
  def __call__(self, video, *, train: bool = False):
    cnn = cnn_lib.FrameCNN(self.cnn_features, self.cnn_embed_dim, self.dtype, self.param_dtype,
                           name='cnn')
    x = per_frame_in_chunks(cnn, video, self.chunks)  # [B, T, D]
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                      name='head')(x)
    return logits.mean(axis=1).astype(jnp.float32)


class LRCNChunked(LRCN):
  """LRCN with the CNN called `chunks` times over time (same parameters)."""
  chunks: int = 1

  @nn.compact
  def __call__(self, video, *, train: bool = False):
    cnn = cnn_lib.FrameCNN(self.cnn_features, self.cnn_embed_dim, self.dtype, self.param_dtype,
                           name='cnn')
    x = per_frame_in_chunks(cnn, video, self.chunks)  # [B, T, D]
    for i in range(self.lstm_layers):
      def rnn(name):
        cell = nn.OptimizedLSTMCell(self.lstm_hidden_size, dtype=self.dtype,
                                    param_dtype=self.param_dtype, parent=None)
        return nn.RNN(cell, unroll=self.unroll, name=name)
      if self.bidirectional:
        x = nn.Bidirectional(rnn(f'lstm_{i}_fwd'), rnn(f'lstm_{i}_bwd'), name=f'lstm_{i}')(x)
      else:
        x = rnn(f'lstm_{i}')(x)
    pooled = x[:, -1] if self.head == 'last' else x.mean(axis=1)
    pooled = nn.Dropout(self.dropout, deterministic=not train)(pooled)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                      name='head')(pooled)
    return logits.astype(jnp.float32)


class EinsumAttention(space_time_blocks.Attention):
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
  saved = space_time_blocks.Attention
  space_time_blocks.Attention = cls
  try:
    yield
  finally:
    space_time_blocks.Attention = saved


def model_kwargs(model) -> dict:
  """A module's constructor arguments, to build a local variant with the same fields."""
  return {f.name: getattr(model, f.name) for f in dataclasses.fields(model)
          if f.init and f.name not in ('parent', 'name')}


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


NOISE = 0.05  # Differences under 5% are within the spread of alternated steps on a shared CPU.


def change(speedup: float) -> str:
  """before / after time -> 'after is 12% faster' in words."""
  if abs(speedup - 1.0) < NOISE:
    return f'no measurable difference ({speedup:.2f}x)'
  return f'{speedup:.2f}x faster' if speedup > 1 else f'{1 / speedup:.2f}x slower'


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
        peaks: dict[str, bench_step.Peak], flops: dict[str, float], *, steps: int = 8,
        workers: int = 2, log=print) -> list[dict]:
  """All comparisons, by the table's keys: 'single_frame', 'lrcn', 'convlstm'
  (demo shapes), 'divided_bench', 'lrcn_bench'. `built` holds the table's
  compiled steps (reused as baselines), `flops` their model FLOPs.

  First every variant is built and compiled, `workers` at a time, while
  nothing is timed; then the comparisons run one after another.
  """
  f32 = peaks['float32']
  base = {key: built.get(key) or bench_step.build(cases[key]).compile()
          for key in ('single_frame', 'lrcn', 'convlstm', 'divided_bench', 'lrcn_bench')}

  def per_frame_variants(key, chunked_cls):
    """(folded, one call per frame) builders; the library's own setting is the table's step."""
    step = base[key]
    t = step.config.data.num_frames
    per_call = getattr(step.model, 'frames_per_call', 0)  # Absent or 0: the library folds.
    calls = 1 if per_call <= 0 else t // min(per_call, t)
    kwargs = model_kwargs(step.model)
    make = lambda chunks: lambda: bench_step.build(cases[key], model=chunked_cls(**kwargs,
                                                                                 chunks=chunks))
    return (lambda: step) if calls == 1 else make(1), (lambda: step) if calls == t else make(t)

  divided = cases['divided_bench']
  sf_folded, sf_looped = per_frame_variants('single_frame', SingleFrameChunked)
  lrcn_folded, lrcn_looped = per_frame_variants('lrcn_bench', LRCNChunked)
  builders = {
      'single_frame folded': sf_folded, 'single_frame looped': sf_looped,
      'single_frame vmap': lambda: bench_step.build(
          cases['single_frame'], model=SingleFrameVmap(**model_kwargs(base['single_frame'].model))),
      'lrcn folded': lrcn_folded, 'lrcn looped': lrcn_looped,
      'divided bf16': lambda: bench_step.build(
          divided.with_overrides('model.dtype=bfloat16', name=divided.name + ' bf16')),
      'divided not donated': lambda: bench_step.build(divided, donate=False),
      'divided remat': lambda: bench_step.build(
          divided.with_overrides('model.remat=true', name=divided.name + ' remat')),
      'convlstm scanned': lambda: bench_step.build(cases['convlstm'].with_overrides(
          'model.convlstm.unroll=1', name=cases['convlstm'].name + ' scanned')),
  }
  variants: dict[str, object] = {}
  try:  # Patches a module global while tracing, so before any other thread traces.
    with attention_class(EinsumAttention):
      variants['divided einsum'] = bench_step.build(divided).compile()
  except Exception as e:
    variants['divided einsum'] = e

  def prepare(builder):
    step = builder()
    return step if step.compiled is not None else step.compile()

  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    futures = {name: pool.submit(prepare, builder) for name, builder in builders.items()}
    for name, future in futures.items():
      try:
        variants[name] = future.result()
      except Exception as e:  # Reported by the comparison that needs it.
        variants[name] = e

  def get(name):
    if isinstance(variants[name], Exception):
      raise variants[name]
    return variants[name]

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
    folded, vmapped, loop = 'time folded into batch', 'nn.vmap over time', 'Python loop over frames'
    res = compare([(folded, get('single_frame folded'), f32),
                   (vmapped, get('single_frame vmap'), f32),
                   (loop, get('single_frame looped'), f32)], flops['single_frame'], steps * 2)
    vs_loop = res[loop]['step_s'] / res[folded]['step_s']
    report(_row('per-frame CNN over time (single_frame, demo shape)', vmapped, folded, res,
                f'folded vs vmap: {change(res[vmapped]["step_s"] / res[folded]["step_s"])}; '
                f'folded vs a Python loop: {change(vs_loop)}', loop_speedup=vs_loop))

  def per_frame_calls():
    t = base['lrcn_bench'].config.data.num_frames
    before, after = 'time folded into batch', f'one CNN call per frame ({t} calls)'
    res = compare([(before, get('lrcn folded'), f32), (after, get('lrcn looped'), f32)],
                  flops['lrcn_bench'], steps)
    speedup = res[before]['step_s'] / res[after]['step_s']
    report(_row('per-frame CNN: one call per frame (lrcn, bench shape)', before, after, res,
                f'{change(speedup)}, MFU {res[before]["mfu"]:.2f} -> {res[after]["mfu"]:.2f}: '
                'XLA:CPU runs the T independent per-frame calls concurrently on its threads; '
                + ('worth it on CPU (frames_per_call=1)' if speedup > 1 + NOISE
                   else 'no gain here')))

  def fused_attention():
    before, after = 'written-out softmax attention', 'jax.nn.dot_product_attention'
    res = compare([(before, get('divided einsum'), f32), (after, base['divided_bench'], f32)],
                  flops['divided_bench'], steps)
    report(_row('fused attention (divided, bench shape)', before, after, res,
                f'{change(res[before]["step_s"] / res[after]["step_s"])} on XLA:CPU, where '
                "implementation=None lowers to the same dots and softmax; kept because on GPU "
                "attention_implementation='cudnn' selects cuDNN flash attention (not measured "
                'here)'))

  def bf16():
    before, after = 'float32', 'bfloat16 compute, float32 params'
    res = compare([(before, base['divided_bench'], f32),
                   (after, get('divided bf16'), peaks['bfloat16'])], flops['divided_bench'], steps)
    speedup = res[before]['step_s'] / res[after]['step_s']
    report(_row('bf16 compute with f32 params (divided, bench shape)', before, after, res,
                f'{change(speedup)} on this CPU (bf16 matmul peak '
                f'{peaks["bfloat16"].median / 1e9:.0f} vs f32 {f32.median / 1e9:.0f} GFLOP/s); '
                + ('float32 stays the CPU default, ' if speedup < 1 + NOISE else '')
                + 'bf16 is the GPU/TPU default (--dtype auto)'))

  def donation():
    before, after = 'not donated', 'donated state'
    res = compare([(before, get('divided not donated'), f32), (after, base['divided_bench'], f32)],
                  flops['divided_bench'], steps)
    saved = (res[before]['peak_bytes'] - res[after]['peak_bytes']) / 2 ** 20
    report(_row('donated state buffers (divided, bench shape)', before, after, res,
                f'{change(res[before]["step_s"] / res[after]["step_s"])}; {saved:.0f} MiB less '
                'at the peak (the state is updated in place); kept'))

  def remat():
    before, after = 'no remat', 'remat every block'
    res = compare([(before, base['divided_bench'], f32), (after, get('divided remat'), f32)],
                  flops['divided_bench'], steps)
    ratio = res[after]['peak_bytes'] / res[before]['peak_bytes']
    report(_row('remat (divided, bench shape)', before, after, res,
                f'{change(res[before]["step_s"] / res[after]["step_s"])}, memory x{ratio:.2f}'
                + (': XLA:CPU keeps the recomputation but its memory plan does not shrink'
                   if ratio > 1 - NOISE else '')
                + '; off by default, for a model that does not fit (model.remat=true)'))

  def no_host_sync():
    res = host_sync(base['lrcn'], steps=max(20, steps * 3))
    before, after = list(res)
    report(_row('no host sync inside the loop (lrcn, demo shape)', before, after, res,
                f'{change(res[before]["step_s"] / res[after]["step_s"])}; train.py fetches '
                'metrics every log_every steps'))

  def convlstm_unroll():
    unrolled = base['convlstm']
    before, after = 'nn.scan, unroll=1', f'unrolled (unroll={unrolled.model.unroll})'
    # The scanned step is ~25x slower and the gap far above the noise: 3 steps suffice.
    res = compare([(before, get('convlstm scanned'), f32), (after, unrolled, f32)],
                  flops['convlstm'], min(3, steps))
    report(_row('ConvLSTM unrolled vs scanned (convlstm, demo shape)', before, after, res,
                f'{change(res[before]["step_s"] / res[after]["step_s"])}; compile: unrolled '
                f'{res[after]["compile_s"]:.1f} s (table), scanned {res[before]["compile_s"]:.1f} s '
                '(alongside another compile); unrolled is the default'))

  for fn in (fold_time, per_frame_calls, fused_attention, bf16, donation, remat, no_host_sync,
             convlstm_unroll):
    guarded(fn)
  return rows
