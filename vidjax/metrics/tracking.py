"""Multi-object tracking: HOTA, CLEAR (MOTA, MOTP, IDSW) and Identity (IDF1), by TrackEval.

Published MOT tables come from TrackEval (JonathonLuiten/TrackEval, on PyPI as
`trackeval`), so its metric classes do the scoring. Its Evaluator and dataset
classes read their own folder layout, so instead we build the per-sequence
dict its metrics take, as its MOTChallenge loader would: per frame the gt and
tracker ids (relabelled 0..n-1 per sequence), their IoU matrix (TrackEval's
own box IoU) and the counts. Sequences are combined by each metric's
`combine_sequences`, as TrackEval's COMBINED_SEQ row is. TrackEval 1.3.0's
HOTA, CLEAR and Identity run unchanged on numpy 2 (no `np.float`/`np.int`).

Unlike the MOT17 benchmark's preprocessing, no ground truth is a distractor
or marked to ignore: every gt box is scored. A sequence here is what a dataset
record holds, {frame: rows [N, 5]} with rows (x0, y0, x1, y1, track_id) in
pixels and 0-based frames; a tracker's rows may add a confidence [N, 6].
`write_mot` / `read_mot` convert to and from MOTChallenge's results text
(`frame,id,left,top,width,height,conf,-1,-1,-1`, frames 1-based).
"""
from __future__ import annotations

import pathlib
from typing import Mapping

import numpy as np
from trackeval import metrics as te_metrics
from trackeval.datasets._base_dataset import _BaseDataset

# Fractions of the combined results, under TrackEval's names; HOTA's are means over alpha.
_HOTA_FIELDS = ('HOTA', 'DetA', 'AssA', 'DetRe', 'DetPr', 'AssRe', 'AssPr', 'LocA')
_CLEAR_FIELDS = ('MOTA', 'MOTP', 'MODA')
_IDENTITY_FIELDS = ('IDF1', 'IDR', 'IDP')
# Counts: (our key, TrackEval's key).
_COUNTS = (('IDSW', 'IDSW'), ('TP', 'CLR_TP'), ('FP', 'CLR_FP'), ('FN', 'CLR_FN'),
           ('MT', 'MT'), ('PT', 'PT'), ('ML', 'ML'), ('Frag', 'Frag'),
           ('IDTP', 'IDTP'), ('IDFP', 'IDFP'), ('IDFN', 'IDFN'))


def _rows(rows, frame) -> np.ndarray:
  """A frame's rows as float64 [N, 6] (x0, y0, x1, y1, id, conf); conf 1 where absent."""
  rows = np.asarray(rows, np.float64)
  rows = rows.reshape(-1, rows.shape[-1] if rows.size else 5)
  if rows.shape[1] not in (5, 6):
    raise ValueError(f'frame {frame} has rows of {rows.shape[1]} numbers; '
                     'rows are (x0, y0, x1, y1, track_id[, conf])')
  if rows.shape[1] == 5:
    rows = np.concatenate([rows, np.ones((len(rows), 1))], axis=1)
  if np.any(rows[:, 4] != np.round(rows[:, 4])):
    raise ValueError(f'frame {frame} has track ids {rows[:, 4].tolist()}; ids are integers')
  return rows


def _by_frame(sequence: Mapping) -> dict[int, np.ndarray]:
  """{frame: rows} -> {int frame: [N, 6] rows}, by frame (keys may be numpy or JSON strings)."""
  frames = {int(frame): _rows(rows, frame) for frame, rows in sequence.items()}
  if frames and min(frames) < 0:
    raise ValueError(f'frame {min(frames)} is negative; frames are 0-based indices')
  return dict(sorted(frames.items()))


def mot_rows(sequence: Mapping) -> np.ndarray:
  """{frame: rows} -> MOTChallenge rows [N, 10], by frame then id, frames 1-based."""
  lines = []
  for frame, rows in _by_frame(sequence).items():
    rows = rows[np.argsort(rows[:, 4], kind='stable')]
    for x0, y0, x1, y1, track_id, conf in rows:
      lines.append([frame + 1, track_id, x0, y0, x1 - x0, y1 - y0, conf, -1, -1, -1])
  return np.asarray(lines, np.float64).reshape(-1, 10)


def write_mot(path, sequence: Mapping) -> None:
  """Writes one sequence as a MOTChallenge results file (floats exactly, via repr)."""
  text = ''.join(f'{int(r[0])},{int(r[1])},' + ','.join(repr(float(x)) for x in r[2:7]) +
                 ',-1,-1,-1\n' for r in mot_rows(sequence))
  pathlib.Path(path).write_text(text)


def read_mot(path) -> dict[int, np.ndarray]:
  """A MOTChallenge text file -> {frame (0-based): rows [N, 6] (x0, y0, x1, y1, id, conf)}.

  Reads the first seven columns, comma- or space-separated. In a benchmark's
  gt.txt the seventh is a consider flag, not a confidence, and the class and
  visibility columns after it are not read.
  """
  sequence: dict[int, list] = {}
  for number, line in enumerate(pathlib.Path(path).read_text().splitlines(), 1):
    fields = line.replace(',', ' ').split()
    if not fields:
      continue
    if len(fields) < 7:
      raise ValueError(f'{path}:{number}: {len(fields)} columns; MOTChallenge rows have '
                       'frame,id,left,top,width,height,conf[,...]')
    frame, track_id, left, top, width, height, conf = (float(x) for x in fields[:7])
    sequence.setdefault(int(frame) - 1, []).append(
        [left, top, left + width, top + height, track_id, conf])
  return {frame: np.asarray(rows, np.float64) for frame, rows in sorted(sequence.items())}


def _relabel(ids_per_frame: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
  """Track ids -> 0..n-1 (TrackEval indexes its count arrays by id), and n."""
  unique = np.unique(np.concatenate([np.zeros(0, np.int64), *ids_per_frame]))
  return [np.searchsorted(unique, ids).astype(np.int64) for ids in ids_per_frame], len(unique)


def sequence_data(gt: Mapping, pred: Mapping) -> dict:
  """One sequence's gt and tracker rows -> the dict TrackEval's metrics' eval_sequence takes."""
  gt, pred = _by_frame(gt), _by_frame(pred)
  num_frames = max([*gt, *pred], default=-1) + 1
  empty = np.zeros((0, 6))
  gt_rows = [gt.get(t, empty) for t in range(num_frames)]
  pred_rows = [pred.get(t, empty) for t in range(num_frames)]
  for name, per_frame in (('ground truth', gt_rows), ('tracker', pred_rows)):
    for t, rows in enumerate(per_frame):
      if len(np.unique(rows[:, 4])) != len(rows):
        raise ValueError(f'{name} frame {t} repeats a track id: {rows[:, 4].tolist()}')
  gt_ids, num_gt_ids = _relabel([rows[:, 4].astype(np.int64) for rows in gt_rows])
  pred_ids, num_pred_ids = _relabel([rows[:, 4].astype(np.int64) for rows in pred_rows])
  # TrackEval's own box IoU (a private static method), the one its MOTChallenge loader uses.
  iou = _BaseDataset._calculate_box_ious
  return {
      'num_timesteps': num_frames,
      'gt_ids': gt_ids,
      'tracker_ids': pred_ids,
      'similarity_scores': [iou(g[:, :4], p[:, :4], box_format='x0y0x1y1')
                            for g, p in zip(gt_rows, pred_rows)],
      'num_gt_ids': num_gt_ids,
      'num_tracker_ids': num_pred_ids,
      'num_gt_dets': sum(len(rows) for rows in gt_rows),
      'num_tracker_dets': sum(len(rows) for rows in pred_rows),
  }


def _metrics() -> tuple:
  quiet = {'THRESHOLD': 0.5, 'PRINT_CONFIG': False}  # IoU >= 0.5 matches, TrackEval's default.
  return te_metrics.HOTA(), te_metrics.CLEAR(dict(quiet)), te_metrics.Identity(dict(quiet))


def _summary(hota: dict, clear: dict, identity: dict, sizes: dict) -> dict:
  out = {key: float(np.mean(hota[key])) for key in _HOTA_FIELDS}
  out.update({key: float(clear[key]) for key in _CLEAR_FIELDS})
  out.update({key: float(identity[key]) for key in _IDENTITY_FIELDS})
  both = {**clear, **identity}
  out.update({key: int(both[source]) for key, source in _COUNTS})
  out.update(sizes)
  return out


def mot_metrics(gt: Mapping[str, Mapping], pred: Mapping[str, Mapping]) -> dict:
  """HOTA, DetA, AssA, MOTA, MOTP, IDF1 (fractions), IDSW and counts, over named sequences.

  gt, pred: {sequence name: {frame: rows}} with the same names (a tracker that
  found nothing in a sequence gives it an empty dict). The top level holds the
  combined scores, 'per_sequence' each sequence's.
  """
  if set(gt) != set(pred):
    raise ValueError(f'gt and pred must name the same sequences; only in gt: '
                     f'{sorted(set(gt) - set(pred))}, only in pred: {sorted(set(pred) - set(gt))}')
  for name, sequence in gt.items():
    if not isinstance(sequence, Mapping):
      raise ValueError(f'gt[{name!r}] is not a {{frame: rows}} dict; '
                       'pass {sequence name: {frame: rows}}')
  hota, clear, identity = _metrics()
  results = {metric: {} for metric in ('hota', 'clear', 'identity')}
  per_sequence, totals = {}, dict.fromkeys(
      ('num_gt_dets', 'num_pred_dets', 'num_gt_ids', 'num_pred_ids', 'num_frames'), 0)
  for name in sorted(gt):
    data = sequence_data(gt[name], pred[name])
    for key, metric in (('hota', hota), ('clear', clear), ('identity', identity)):
      results[key][name] = metric.eval_sequence(data)
    sizes = {'num_gt_dets': data['num_gt_dets'], 'num_pred_dets': data['num_tracker_dets'],
             'num_gt_ids': data['num_gt_ids'], 'num_pred_ids': data['num_tracker_ids'],
             'num_frames': data['num_timesteps']}
    totals = {key: totals[key] + sizes[key] for key in totals}
    per_sequence[name] = _summary(results['hota'][name], results['clear'][name],
                                  results['identity'][name], sizes)
  out = _summary(hota.combine_sequences(results['hota']), clear.combine_sequences(results['clear']),
                 identity.combine_sequences(results['identity']), totals)
  out['per_sequence'] = per_sequence
  return out
