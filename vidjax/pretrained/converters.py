"""Published checkpoint files -> a vidjax model's parameters: one converter per model family.

`convert_file` reads the file without PyTorch (checkpoint_files.py) and hands
its arrays to the converter of `config.model.name`, which returns the flat
parameters ('cnn/conv_0/kernel': array) and an Entry for each. A family with
no converter is a one-line error naming those that have one.
"""
from __future__ import annotations

import pathlib
from typing import Any, Callable

from vidjax.errors import UserError
from vidjax.pretrained import mapping

Converter = Callable[[dict, Any, Any], tuple[dict, list[mapping.Entry]]]


def _families() -> dict[str, Converter]:
  return {}


def convert_file(path: pathlib.Path, fresh: Any, config) -> tuple[dict, list[mapping.Entry]]:
  from vidjax.pretrained import checkpoint_files
  families = _families()
  name = config.model.name
  if name not in families:
    raise UserError(f"no converter from published checkpoints to model '{name}'; those with one: "
                    f"{', '.join(sorted(families)) or 'none'} (a vidjax workdir works for any model)")
  return families[name](checkpoint_files.load_arrays(path), fresh, config)
