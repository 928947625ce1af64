"""Classification's `--mode predict`: the top-k classes of many videos, one JSON line each.

Why it is built this way:
- a batch of thousands of files always has a few that are missing,
  truncated or not videos; each becomes a line with its `error` and a row of
  the summary, and never stops the batch. Only a batch of which no video could
  be read ends with an error (one line, exit code 2);
- files are decoded in threads, a few batches ahead, while the device
  predicts; batches have one static shape (the last one is padded), so the
  step compiles once;
- `predictions/classes.jsonl` (one line per video, in input order, written as
  results arrive) is for programs; `predictions/classes.json` holds the same
  lines plus the checkpoint, as before. The console shows each video's
  ranked classes for a batch of up to `SHOWN_VIDEOS`, only the summary beyond.
"""
from __future__ import annotations

import collections
import concurrent.futures
import functools
import json
import pathlib

import jax
import numpy as np
import tqdm

from vidjax import parallel, report
from vidjax.data import clips, decode
from vidjax.errors import UserError
from vidjax.tasks.classification import eval_step

SHOWN_VIDEOS = 20  # Larger batches print only the summary; every result is in the JSONL.
SHOWN_UNREADABLE = 20  # Unreadable files named in the summary; all are in the JSONL.


def read_clip(path: str, data) -> tuple[np.ndarray | None, str | None]:
  """(centre view uint8 [T, H, W, 3], None), or (None, why the file cannot be read)."""
  if not pathlib.Path(path).is_file():
    return None, 'does not exist'
  try:
    return clips.read_clip_for_prediction(path, data), None
  except decode.DecodeError as e:
    return None, f'cannot be decoded: {e.reason}'


def read_ahead(paths, read, threads: int, depth: int):
  """(path, read(path)) in input order, with at most `depth` reads in flight."""
  with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool:
    pending = collections.deque()
    for path in paths:
      pending.append((path, pool.submit(read, path)))
      if len(pending) >= depth:
        path_, future = pending.popleft()
        yield path_, future.result()
    while pending:
      path_, future = pending.popleft()
      yield path_, future.result()


def ranked(probs: np.ndarray, class_names, top_k: int) -> list[dict]:
  """[{'class', 'probability'}] of the `top_k` most probable classes, best first."""
  order = np.argsort(-probs, kind='stable')[:top_k]
  return [{'class': class_names[i], 'probability': float(probs[i])} for i in order]


def console_lines(line: dict) -> list[str]:
  """A predicted video as the console shows it: its path, then `  1. class  0.1234` rows."""
  return [line['path'], *(f"  {rank}. {t['class']:<24s} {t['probability']:.4f}"
                          for rank, t in enumerate(line['top'], 1))]


def summary_rows(lines: list[dict], checkpoint: str, jsonl: pathlib.Path) -> list:
  """The console summary: counts, each unreadable file with its reason, where the results are."""
  bad = [l for l in lines if 'error' in l]
  rows = [('checkpoint', checkpoint),
          ('predicted', f'{len(lines) - len(bad)} of {len(lines)} videos'),
          ('unreadable', str(len(bad)))]
  rows += [('', f"{l['path']}: {l['error']}") for l in bad[:SHOWN_UNREADABLE]]
  if len(bad) > SHOWN_UNREADABLE:
    rows.append(('', f'... and {len(bad) - SHOWN_UNREADABLE} more, each in the JSONL'))
  return rows + [('written', str(jsonl))]


def nothing_read(lines: list[dict], jsonl: pathlib.Path | None = None) -> UserError:
  """The one-line error of a batch of which no video could be read."""
  first = lines[0]
  if len(lines) == 1:
    return UserError(f"--video '{first['path']}' {first['error']}")
  where = f' (each in {jsonl})' if jsonl is not None else ''
  return UserError(f"none of the {len(lines)} videos could be read, e.g. --video "
                   f"'{first['path']}' {first['error']}{where}")


def predict(task, paths: list[str], restore, workdir: pathlib.Path, top_k: int = 5) -> list[dict]:
  """Writes (and returns) one {'path', 'top'} or {'path', 'error'} per path, in order.

  `restore()` gives (model, params, what); it runs only once some path exists.
  """
  missing = [{'path': p, 'error': 'does not exist'} for p in paths if not pathlib.Path(p).is_file()]
  if len(missing) == len(paths):
    raise nothing_read(missing)
  model, params, what = restore()
  params = jax.device_put(params, jax.devices()[0])
  data = task.config.data
  step = jax.jit(functools.partial(eval_step, model=model, mean=tuple(data.mean),
                                   std=tuple(data.std)))
  batch_size = max(1, min(len(paths), task.config.eval.batch_size // jax.device_count()))
  video = np.zeros((batch_size, *task.input_shape), np.uint8)  # [B, T, H, W, 3], reused.
  out = pathlib.Path(workdir) / 'predictions'
  out.mkdir(parents=True, exist_ok=True)
  jsonl = out / 'classes.jsonl'
  shown = len(paths) <= SHOWN_VIDEOS
  bar = tqdm.tqdm(total=len(paths), desc='predict', unit='video', dynamic_ncols=True,
                  disable=not parallel.is_main_process() or not task.config.train.progress_bar)
  lines, waiting, rows = [], [], []  # waiting: this batch's (path, clip, reason), in order.

  def flush(file) -> None:
    """Predicts the waiting clips; writes every waiting line, in input order."""
    if rows:
      probs = np.asarray(step(params, {'video': video}))  # [B, K], on the host.
    for path, row, reason in waiting:
      line = {'path': path, 'error': reason} if row is None else {
          'path': path, 'top': ranked(probs[row], task.class_names, top_k)}
      lines.append(line)
      file.write(json.dumps(line) + '\n')
      if shown and row is not None:
        bar.write('\n'.join(console_lines(line)))
    file.flush()
    bar.update(len(waiting))
    waiting.clear()
    rows.clear()

  read = functools.partial(read_clip, data=data)
  with jsonl.open('w') as file:
    for path, (clip, reason) in read_ahead(paths, read, data.read_threads, 2 * batch_size):
      if clip is not None:
        video[len(rows)] = clip
        rows.append(len(rows))
      waiting.append((path, rows[-1] if clip is not None else None, reason))
      if len(rows) == batch_size:
        flush(file)
    flush(file)  # The last batch: rows past len(rows) still hold earlier clips (padding).
  bar.close()
  (out / 'classes.json').write_text(json.dumps({'checkpoint': what, 'videos': lines}, indent=2))
  print(report.summary(summary_rows(lines, f'{workdir} {what}', jsonl)), flush=True)
  if all('error' in line for line in lines):
    raise nothing_read(lines, jsonl)
  return lines
