"""LRCN (Donahue et al. 2015) at small scale: a single-frame CNN against the CNN + LSTM.

  python experiments/lrcn_table.py           # the table: 12 runs, see the time below
  python experiments/lrcn_table.py --quick   # smoke test: tiny, seconds per run

The single-frame baseline (LRCN's CNN on every frame, logits averaged over
time: order-blind) and LRCN (the same CNN, then an LSTM over the frames) with
the configs' own sizes (configs/single_frame.py, configs/default.py), on the
temporal task (synthetic_actions, which the paper has no counterpart of) and
the appearance task (synthetic_appearance, in the role of UCF-101), 3 seeds
each. Writes experiments/results/lrcn_table.{md,json}.

The paper (Table 1, UCF-101, average of the 3 splits, RGB input, CaffeNet
pre-trained on ILSVRC): single frame 67.37, LRCN-fc6 68.20 top-1 -- on an
appearance-heavy set the LSTM adds under a point. What must hold here: on
the appearance task the two are close; on the temporal task the single-frame
model stays at or below the order-blind ceiling of 50% and LRCN is far above.

Protocol (reproduction.DEFAULT; the output prints it in full, read from the
runs' configs): 8 frames at stride 2, 32x32, 1 clip x 1 view (clip level =
video level), 3,000 steps at batch 8, AdamW, cosine decay after 50 warm-up
steps, peak learning rate 2e-3, 250/25/25 train/val/test clips per class,
seeds 0-2, test top-1 on unseen handwriting.
CNN: 4 strided 3x3 stages of 16/32/64/64 channels, embedding 128; LSTM 128.

Expected time on 2 cores: about 23 min (measured per step under a load
average of 5-9: single frame 30 ms, LRCN 29; 12 runs of 3,000 steps + ~20 s
each, + ~15 s of compilation per model and task): 6 x (110 + 107) s +
4 x 15 s. Less on idle cores.
Measured: 32 min wall, 25 min CPU, alongside another table (load average 5-9).
"""
import sys

import reproduction as rp


# The rate these rows were measured with: configs/default.py's until issue 22 raised it to 4e-3
# for its shorter main job (1,000 steps at batch 32; these rows train 3,000 at batch 8).
_LR = ('--config.optim.learning_rate=2e-3',)


def rows(scale: rp.Scale) -> list[rp.Row]:
  return [
      rp.Row('single frame (order-blind)', 'configs/single_frame.py', scale.model('single_frame') + _LR,
             {'UCF-101': 67.37}),
      rp.Row('LRCN', 'configs/default.py', scale.model('lrcn') + _LR, {'UCF-101': 68.20}),
  ]


def findings(summary: dict) -> list[str]:
  top1 = {key: s['test_top1_mean'] for key, s in summary.items()}
  if any(v is None for v in top1.values()):
    return []
  single, lrcn = 'single frame (order-blind)', 'LRCN'
  gap_a = top1[('appearance', lrcn)] - top1[('appearance', single)]
  gap_t = top1[('temporal', lrcn)] - top1[('temporal', single)]
  return [
      f'Appearance task: LRCN - single frame = {100 * gap_a:+.1f} points '
      '(paper, UCF-101 RGB: +0.83).',
      f"Temporal task: single frame {100 * top1[('temporal', single)]:.1f}% (order-blind "
      f"ceiling 50%), LRCN {100 * top1[('temporal', lrcn)]:.1f}%: {100 * gap_t:+.1f} points"
      + ('; the recurrence matters where order decides, which UCF-101 barely tests.'
         if gap_t >= 0.1 and gap_t > gap_a + 0.05 else
         '; at this budget the recurrence does not yet pay off where order decides.'),
  ]


TABLE = rp.Table(
    name='lrcn_table',
    title='LRCN (Donahue et al. 2015) at small scale: single-frame CNN vs LRCN',
    source=('Donahue et al., "Long-term Recurrent Convolutional Networks for Visual Recognition '
            'and Description", CVPR 2015, Table 1: UCF-101 (3 splits), RGB, CaffeNet pre-trained '
            'on ILSVRC-2012; single frame 67.37, LRCN-fc6 68.20 top-1 (flow and fused columns '
            'not reproduced).'),
    tasks=(rp.TEMPORAL, rp.APPEARANCE),
    rows=rows,
    notes=('From scratch, not ILSVRC pre-trained; a 4-stage CNN of 16-64 channels, not CaffeNet; '
           'the LSTM reads 8 frames at 32x32, not 16 at 227x227; clip-level training and one '
           'view at test, not the paper\'s averaging over clips; RGB only; synthetic data in the '
           'role of UCF-101.',),
    findings=findings)

if __name__ == '__main__':
  sys.exit(rp.main(TABLE))
