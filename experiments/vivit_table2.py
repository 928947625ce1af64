"""ViViT (Arnab et al. 2021) Table 2 at small scale: accuracy against cost of the variants.

  python experiments/vivit_table2.py           # the table: 18 runs (6 shared), see below
  python experiments/vivit_table2.py --quick   # smoke test: tiny, seconds per run

Model 1 (spatio-temporal: joint attention over all tokens), model 2
(factorised encoder: a spatial encoder per frame, then a temporal one over
the frames' tokens) and model 3 (factorised self-attention: spatial then
temporal attention in every block), with their accuracy, GFLOPs per clip and
train step time side by side, on the temporal task (synthetic_actions, in the
role of the paper's Epic-Kitchens column, the more temporal of its two) and
the appearance task (synthetic_appearance, in the role of K400), 3 seeds
each. Writes experiments/results/vivit_table2.{md,json}.

The sizes are the TimeSformer table's (2 layers of width 64, 8x8 patches, no
tubelets; model 2 adds a 1-layer temporal encoder), so model 1 is the same run
as that table's joint row: the runner reuses those 6 runs when
experiments/results/timesformer_table1.json holds them, and this table then
costs 12 runs.

The paper (ViViT-B, tubelets 16x16x2, 32 frames, ImageNet-21K, 4 views):
top-1 K400 80.0 / 78.8 / 77.4, EK 43.1 / 43.7 / 39.1, 455.2 / 284.4 / 372.3
GFLOPs, 58.9 / 17.4 / 31.7 ms on TPU-v3, for models 1 / 2 / 3. Model 1 is the
most accurate and the most expensive; model 2 the cheapest and fastest.
Models 4 (factorised dot-product) and the average-pool baseline are not in
vidjax.

Protocol (reproduction.DEFAULT; the output prints it in full, read from the
runs' configs): 8 frames at stride 2, 32x32, 1 clip x 1 view (clip level =
video level), 3,000 steps at batch 8, AdamW, cosine decay after 50 warm-up
steps, peak learning rate 1e-3, 250/25/25 train/val/test clips per class,
seeds 0-2, test top-1 on unseen handwriting.
Transformers: 2 layers of width 64, 4 heads, MLP 256, 8x8 patches, no
tubelets (16 tokens per frame, 128 per clip).

Expected time on 2 cores: about 26 min after the TimeSformer table (12
runs: 6 x (110 + 137) s + 4 x 15 s of compilation), about 37 min alone
(measured per step under a load average of 5-9: joint 31 ms, factorised
encoder 30, factorised self-attention 39; each run 3,000 steps + ~20 s).
Less on idle cores. At these sizes a step costs about the same whatever the
model: compare GFLOPs for the compute, step time for what the host spends.
Measured after the TimeSformer table: 35 min wall, 29 min CPU, load average 3-9.
"""
import sys

import reproduction as rp

CONFIG = 'configs/space_time_attention.py'
# Table 2: top-1 % on K400 and Epic-Kitchens, and the cost the paper measured.
PAPER = {
    'joint': ({'K400': 80.0, 'EK': 43.1}, '455.2 GFLOPs, 88.9M params, 58.9 ms'),
    'factorized_encoder': ({'K400': 78.8, 'EK': 43.7}, '284.4 GFLOPs, 115.1M params, 17.4 ms'),
    'factorized_self_attention': ({'K400': 77.4, 'EK': 39.1},
                                  '372.3 GFLOPs, 117.3M params, 31.7 ms'),
}
NAMES = {'joint': '1 spatio-temporal (joint)', 'factorized_encoder': '2 factorised encoder',
         'factorized_self_attention': '3 factorised self-attention'}


def rows(scale: rp.Scale) -> list[rp.Row]:
  vit = scale.model('space_time_attention')
  return [rp.Row(NAMES[p], f'{CONFIG}:{p}', vit, PAPER[p][0], PAPER[p][1]) for p in NAMES]


def findings(summary: dict) -> list[str]:
  lines = []
  for task, dataset in (('temporal', 'EK'), ('appearance', 'K400')):
    s = {p: summary[(task, NAMES[p])] for p in NAMES}
    if any(v['test_top1_mean'] is None for v in s.values()):
      continue
    ours = sorted(NAMES, key=lambda p: -s[p]['test_top1_mean'])
    paper = sorted(NAMES, key=lambda p: -PAPER[p][0][dataset])
    lines.append(f'{task.capitalize()} task, most to least accurate: '
                 + ', '.join(f"{NAMES[p]} {100 * s[p]['test_top1_mean']:.1f}%" for p in ours)
                 + f" (paper, {dataset}: {' > '.join(NAMES[p][0] for p in paper)}"
                 + ('; the same order).' if ours == paper else '; another order).'))
  s = {p: summary[('temporal', NAMES[p])] for p in NAMES}
  if all(v['step_ms'] and v['gflops_per_clip'] for v in s.values()):
    base = s['joint']
    lines.append('Cost relative to model 1, temporal task (GFLOPs per clip, train step time): '
                 + ', '.join(f"{NAMES[p]} {s[p]['gflops_per_clip'] / base['gflops_per_clip']:.2f}x "
                             f"and {s[p]['step_ms'] / base['step_ms']:.2f}x"
                             for p in ('factorized_encoder', 'factorized_self_attention'))
                 + ' (paper: model 2 at 0.62x GFLOPs and 0.30x runtime, model 3 at 0.82x and '
                 '0.54x).')
  return lines


TABLE = rp.Table(
    name='vivit_table2',
    title='ViViT (Arnab et al. 2021), Table 2 at small scale: spatio-temporal vs factorised '
          'encoder vs factorised self-attention',
    source=('Arnab, Dehghani, Heigold, Sun, Lucic, Schmid, "ViViT: A Video Vision Transformer", '
            'ICCV 2021, Table 2: ViViT-B, tubelets 16x16x2, 32 frames at stride 2, ImageNet-21K '
            'initialisation, 4 views, runtime on TPU-v3. Joint attention over all tokens is the '
            'most accurate and the most expensive; the factorised encoder is the cheapest.'),
    tasks=(rp.TEMPORAL, rp.APPEARANCE),
    rows=rows,
    notes=('From scratch, not ImageNet-21K; small models (sizes in the protocol; model 2 adds a '
           'temporal encoder), not ViViT-B; 32x32 frames in 8x8 patches with no tubelets, not '
           '32 frames of 224x224 in 16x16x2 tubelets; 1 view, not 4; train step time on the '
           'hardware below, not TPU-v3 inference time; synthetic data in the roles of K400 and '
           'Epic-Kitchens.',),
    findings=findings)

if __name__ == '__main__':
  sys.exit(rp.main(TABLE))
