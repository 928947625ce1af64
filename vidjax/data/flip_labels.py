"""Which class a video becomes when it is mirrored left to right.

Flipping is a free augmentation for most classes, but it turns "Pushing
something from left to right" into "... from right to left" (SSv2, synthetic
direction classes); `flip_label_map` finds such pairs from the class names.
"""
from __future__ import annotations

import re
from typing import Sequence

# Words a mirror turns into each other. Not letter-bounded, so snake_case names
# (move_left) match too; the hyphenated forms come first so they win over "clockwise".
_MIRRORED = {'left': 'right', 'right': 'left', 'cw': 'ccw', 'ccw': 'cw',
             'counter-clockwise': 'clockwise', 'anti-clockwise': 'clockwise',
             'counterclockwise': 'clockwise', 'anticlockwise': 'clockwise',
             'clockwise': 'counterclockwise'}
_SIDE = re.compile(r'(?<![A-Za-z])(' + '|'.join(sorted(_MIRRORED, key=len, reverse=True)) +
                   r')(wards)?(?![A-Za-z])', re.IGNORECASE)


def _mirror_word(match: re.Match) -> str:
  word = match.group(1)
  other = _MIRRORED[word.lower()]
  if word.isupper():
    other = other.upper()
  elif word[0].isupper():
    other = other.capitalize()
  return other + (match.group(2) or '')


def flip_label_map(class_names: Sequence[str]) -> dict[int, int]:
  """Label changes under a horizontal flip, for direction and rotation classes.

  "Pushing something from left to right" becomes "... from right to left" in
  a mirrored video. Returns {index: mirrored index} for the classes whose
  name, with left and right swapped, is another class; the other classes keep
  their label when flipped. Without such pairs (Kinetics, UCF-101) it is {}.
  """
  lookup = {name: i for i, name in enumerate(class_names)}
  mapping = {}
  for i, name in enumerate(class_names):
    mirrored = _SIDE.sub(_mirror_word, name)
    j = lookup.get(mirrored)
    if j is None:  # "clockwise" mirrors to whichever of counter- / anti-clockwise exists.
      j = lookup.get(mirrored.replace('counterclockwise', 'anticlockwise'))
    if j is not None and j != i:
      mapping[i] = j
  return mapping
