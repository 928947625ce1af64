"""The MOT Challenge layout (MOT15/16/17/20): <split>/<sequence>/{img1/, gt/gt.txt, seqinfo.ini}.

gt.txt has one box per line, "frame,id,left,top,width,height,conf,class,
visibility" (MOT16/17/20; frames from 1, pixels); MOT15 writes 7 to 10
fields and no class ("frame,id,left,top,width,height,conf,x,y,z").
seqinfo.ini's [Sequence] gives name, imDir, frameRate, seqLength, imWidth,
imHeight, imExt; frame n is <imDir>/<n:06d><imExt>.
"""
from __future__ import annotations

import configparser
import os

import numpy as np

from vidjax.data.layouts.boxes import (DetectionDataset, Problems, box_annotation,
                                       check_boxes, finish, no_boxes, xywh_to_xyxy)
from vidjax.data.layouts.untrimmed import malformed
from vidjax.data.records import Record

# MOT16/17/20's class ids, as TrackEval names them.
MOT_CLASSES = {1: 'pedestrian', 2: 'person_on_vehicle', 3: 'car', 4: 'bicycle', 5: 'motorbike',
               6: 'non_mot_vehicle', 7: 'static_person', 8: 'distractor', 9: 'occluder',
               10: 'occluder_on_ground', 11: 'occluder_full', 12: 'reflection', 13: 'crowd'}
_SEQINFO = {'name': str, 'imDir': str, 'frameRate': float, 'seqLength': int,
            'imWidth': int, 'imHeight': int, 'imExt': str}
_CLASS_FIELDS = 9  # Only MOT16/17/20's 9-field rows have a class column.


def _read_seqinfo(path: str) -> dict:
  """[Sequence] of seqinfo.ini -> its values, typed, under the published key names."""
  fix = 'MOTChallenge writes [Sequence] with ' + ', '.join(_SEQINFO)
  if not os.path.exists(path):
    raise ValueError(f'MOT sequence info not found: expected {path}')
  parser = configparser.ConfigParser(interpolation=None)
  try:
    parser.read(path)
  except configparser.Error as e:
    errors = getattr(e, 'errors', None)  # ParsingError lists (line, text) pairs.
    line = getattr(e, 'lineno', None) or (errors[0][0] if errors else None)
    raise malformed(path, line, f'not an INI file ({type(e).__name__})', fix) from None
  if not parser.has_section('Sequence'):
    raise malformed(path, None, 'no [Sequence] section', fix)
  info = {}
  for key, kind in _SEQINFO.items():
    value = parser['Sequence'].get(key)  # configparser matches keys ignoring case.
    try:
      info[key] = kind(value.strip())
    except (AttributeError, ValueError):
      raise malformed(path, None, f'{key} is {value!r}, not {kind.__name__}', fix) from None
  if min(info['seqLength'], info['imWidth'], info['imHeight']) <= 0:
    raise malformed(path, None, 'seqLength, imWidth and imHeight must be positive', fix)
  return info


def _read_gt(path: str) -> np.ndarray:
  """gt.txt -> float64 [R, F], F the same for every line, 7 <= F <= 10."""
  rows, first = [], None
  with open(path) as f:
    for n, line in enumerate(f, 1):
      if not line.strip():
        continue
      parts = line.strip().split(',')
      if not 7 <= len(parts) <= 10:
        raise malformed(path, n, f'expected "frame,id,left,top,width,height,conf,class,'
                        f'visibility" (7 to 10 fields), got {len(parts)}',
                        'fix or remove the line')
      if first is None:
        first = (n, len(parts))
      elif len(parts) != first[1]:
        raise malformed(path, n, f'{len(parts)} fields where line {first[0]} has {first[1]}',
                        'write every line of the file in one format')
      try:
        values = [float(p) for p in parts]
      except ValueError:
        raise malformed(path, n, f'{line.strip()!r} is not comma-separated numbers',
                        'fix or remove the line') from None
      whole = [0, 1] + ([7] if len(values) == _CLASS_FIELDS else [])
      if not all(values[i].is_integer() for i in whole):
        raise malformed(path, n, 'frame, id' + (' and class' if len(whole) > 2 else '')
                        + ' must be integers', 'fix or remove the line')
      rows.append(values)
  if not rows:
    raise malformed(path, None, 'the file is empty',
                    're-download it (a sequence without boxes has no gt/gt.txt)')
  return np.asarray(rows, np.float64)


def _frames(seq_dir: str, split_dir: str, info: dict, video_extensions: tuple[str, ...],
            problems: Problems):
  """(record path, MOT frame -> 0-based frame, frame files or None), or None if absent.

  Frames are img1/'s images; a missing one is left out (later frames move
  up) and counted. Without img1/, a video <sequence><ext> in the sequence or
  split folder stands for the frames.
  """
  image_dir = os.path.join(seq_dir, info['imDir'])
  name = os.path.basename(seq_dir)
  if os.path.isdir(image_dir):
    present = set(os.listdir(image_dir))
    numbers = range(1, info['seqLength'] + 1)
    files = {n: f'{n:06d}{info["imExt"]}' for n in numbers}
    absent = [n for n in numbers if files[n] not in present]
    problems.add('missing_image', len(absent), (
        f'{name}: frame {n} ({os.path.join(image_dir, files[n])}) is missing; left out'
        for n in absent))
    kept = [n for n in numbers if files[n] in present]
    if not kept:
      return None
    return (image_dir, {n: i for i, n in enumerate(kept)},
            [os.path.join(image_dir, files[n]) for n in kept])
  for folder in (seq_dir, split_dir):
    for ext in video_extensions:
      video = os.path.join(folder, name + ext)
      if os.path.isfile(video):
        return video, {n: n - 1 for n in range(1, info['seqLength'] + 1)}, None
  return None


def load_mot(root: str, split: str, *, classes: tuple[int, ...] = (1,),
             video_extensions: tuple[str, ...] = ('.mp4', '.mkv', '.webm', '.avi')
             ) -> DetectionDataset:
  """MOT Challenge sequences: one record per <root>/<split>/<sequence>/.

  Args:
    root: e.g. MOT17/, holding train/ and test/.
    split: a folder of sequences ('train', 'test').
    classes: the MOT class ids kept, in label order (`MOT_CLASSES`; the
      benchmark scores pedestrians, 1). MOT15's rows have no class: all are
      pedestrians.
    video_extensions: tried for <sequence><ext> when img1/ is absent.

  Kept from MOT16/17/20 files: rows with conf flag 1 and a class in
  `classes`; the others are not scored and are counted as skipped. MOT15
  rows (7, 8 or 10 fields) are all kept. 'track_ids' are the ids; a
  record's 'box_frames' index its 'frame_files' (MOT frame n is n - 1 when
  no image is missing). A box on a frame past seqLength or whose image is
  missing is dropped and counted; a test sequence (no gt/gt.txt) has no
  boxes; a sequence with neither frames nor video goes to `missing`.
  """
  unknown = [c for c in classes if c not in MOT_CLASSES]
  if unknown or not classes:
    raise ValueError(f'MOT classes must be ids of {MOT_CLASSES}, got {tuple(classes)}')
  split_dir = os.path.join(root, split)
  sequences = (sorted(d for d in os.listdir(split_dir)
                      if os.path.isdir(os.path.join(split_dir, d)))
               if os.path.isdir(split_dir) else [])
  if not sequences:
    raise ValueError(f'MOT {split} sequences not found: expected '
                     f'{os.path.join(split_dir, "<sequence>", "seqinfo.ini")}')
  label_of = {c: i for i, c in enumerate(classes)}
  problems = Problems(f'{os.path.basename(os.path.normpath(root))} {split}')
  records, missing = [], []
  for name in sequences:
    seq_dir = os.path.join(split_dir, name)
    info = _read_seqinfo(os.path.join(seq_dir, 'seqinfo.ini'))
    found = _frames(seq_dir, split_dir, info, video_extensions, problems)
    if found is None:
      missing.append(os.path.join(seq_dir, info['imDir']))
      continue
    path, frame_index, frame_files = found
    width, height = info['imWidth'], info['imHeight']
    gt = os.path.join(seq_dir, 'gt', 'gt.txt')
    if os.path.exists(gt):
      rows = _read_gt(gt)
      if rows.shape[1] == _CLASS_FIELDS:
        known = np.isin(rows[:, 7], list(MOT_CLASSES))
        scored = (rows[:, 6] == 1) & (~known | np.isin(rows[:, 7], list(classes)))
        problems.add('unscored', int((~scored).sum()))
        rows = rows[scored]
        row_classes = rows[:, 7]
      else:
        row_classes = np.ones(len(rows))
      checked = check_boxes(name, xywh_to_xyxy(rows[:, 2:6]), row_classes, rows[:, 0],
                            rows[:, 1], label_of=label_of, frame_index=frame_index,
                            width=width, height=height, problems=problems)
    else:
      problems.add('no_gt', 1, [f'{name}: no {gt}; no boxes'])
      checked = no_boxes()
    num_frames = info['seqLength'] if frame_files is None else len(frame_files)
    records.append(Record(path, box_annotation(checked, width=width, height=height,
                                               num_frames=num_frames, frame_files=frame_files),
                          name))
  return finish(records, [MOT_CLASSES[c] for c in classes], missing, problems)
