"""The files of a `--mode predict` batch that cannot be read: skipped and listed, not fatal.

Why: a batch of thousands of files always has a few that are missing,
truncated or not what the task reads. Detection, localization and frame
prediction skip each (its reason is a row of the console summary and an
entry of `predictions/unreadable.json`, which every run rewrites) and
predict the rest; only a batch of which no file could be read ends with one
line (a UserError, exit code 2). Classification keeps the same {'path',
'error'} entries in its own JSONL (vidjax/tasks/classification_predict.py).
"""
from __future__ import annotations

import bisect
import json
import pathlib

import numpy as np

from vidjax import report
from vidjax.errors import UserError

SHOWN = 20  # Unreadable files named in the summary; all are in unreadable.json.


class Unreadable(UserError):
  """One file that cannot be read; `reason` completes "--video 'PATH' ..."."""

  def __init__(self, path: str, reason: str):
    super().__init__(f"--video '{path}' {reason}")
    self.path, self.reason = str(path), reason


def load_npy(path) -> np.ndarray:
  """`np.load(path)`, or Unreadable for garbage, truncated or empty files."""
  try:
    array = np.load(path)
  except (ValueError, EOFError, OSError) as e:
    why = str(e).split('. ')[0] or type(e).__name__  # numpy's first sentence is the reason.
    raise Unreadable(path, f'is not a readable .npy: {why}') from None
  if not isinstance(array, np.ndarray):  # An .npz archive under a .npy name.
    raise Unreadable(path, 'is not a readable .npy: it is an .npz archive')
  return array


class Skipped:
  """The unreadable files of a batch of `paths`, in input order."""

  def __init__(self, paths: list[str]):
    self.order = {p: i for i, p in reversed(list(enumerate(paths)))}  # A path's first place.
    self.total = len(paths)
    self.files: list[dict] = []  # [{'path', 'error'}]

  def add(self, path: str, reason: str) -> None:
    bisect.insort(self.files, {'path': str(path), 'error': reason},
                  key=lambda f: self.order.get(f['path'], len(self.order)))

  def existing(self, paths: list[str]) -> list[str]:
    """The `paths` that are files; the others are added as 'does not exist'."""
    found = []
    for path in paths:
      if pathlib.Path(path).is_file():
        found.append(path)
      else:
        self.add(path, 'does not exist')
    return found

  def summary_rows(self, checkpoint: str, written) -> list[tuple[str, str]]:
    """Counts, each unreadable file with its reason, where the results are."""
    total, bad = self.total, len(self.files)
    rows = [('checkpoint', checkpoint), ('predicted', f'{total - bad} of {total} files'),
            ('unreadable', str(bad))]
    rows += [('', f"{f['path']}: {f['error']}") for f in self.files[:SHOWN]]
    if bad > SHOWN:
      rows.append(('', f'... and {bad - SHOWN} more, each in unreadable.json'))
    listed = ' (the unreadable in unreadable.json)' if bad else ''
    return rows + [('written', f'{written}{listed}')]

  def write(self, out_dir: pathlib.Path) -> pathlib.Path:
    """`out_dir/unreadable.json`: [{'path', 'error'}], empty when every file was read."""
    out_dir.mkdir(parents=True, exist_ok=True)
    listed = out_dir / 'unreadable.json'
    listed.write_text(json.dumps(self.files, indent=1))
    return listed

  def nothing_read(self, out_dir: pathlib.Path | None = None) -> UserError:
    """The one-line error of a batch of which no file could be read; a batch of several
    is listed in `out_dir/unreadable.json` too, when given."""
    first = self.files[0]
    if len(self.files) == 1:
      return UserError(f"--video '{first['path']}' {first['error']}")
    where = f' (each in {self.write(out_dir)})' if out_dir is not None else ''
    return UserError(f"none of the {len(self.files)} files could be read, e.g. --video "
                     f"'{first['path']}' {first['error']}{where}")

  def finish(self, out_dir: pathlib.Path, checkpoint: str) -> None:
    """Writes unreadable.json, prints the summary; raises if no file was read."""
    self.write(out_dir)
    print(report.summary(self.summary_rows(checkpoint, out_dir)), flush=True)
    if len(self.files) >= self.total:
      raise self.nothing_read(out_dir)
