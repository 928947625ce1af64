"""Mixup and cutmix of a training batch, after batching, in the main process."""
from __future__ import annotations

import dataclasses

import numpy as np

from vidjax.data import transforms

_MIX_STREAM = 0x6d6978  # Keeps the mixing generators apart from others of the same seed.


@dataclasses.dataclass(frozen=True)
class MixBatch:
  """Mixup or cutmix of a batch, adding 'target'.

  Batch number `step` seeds it, and the training iterator's state counts
  batches, so resuming replays the same mixes. Mixed videos are rounded
  back to uint8 (as timm's fast collate does). Targets are not smoothed:
  the train step smooths them like one-hot labels.
  """
  seed: int
  num_classes: int
  mixup_alpha: float
  cutmix_alpha: float
  cutmix_prob: float

  def __call__(self, step: int, batch: dict) -> dict:
    rng = np.random.default_rng([self.seed, _MIX_STREAM, step])
    targets = transforms.one_hot_smoothed(batch['label'], self.num_classes)  # [B, K]
    use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or
                                            rng.random() < self.cutmix_prob)
    if use_cutmix:
      video, targets = transforms.cutmix(batch['video'], targets, rng, self.cutmix_alpha)
    else:
      mixed, targets = transforms.mixup(batch['video'], targets, rng, self.mixup_alpha)
      video = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return {**batch, 'video': video, 'target': targets.astype(np.float32)}
