"""ActivityNet-1.3-style JSON, which ActionFormer and OpenTAD also use for THUMOS14."""
from __future__ import annotations

import json
import os

from vidjax.data.layouts.common import require
from vidjax.data.layouts.untrimmed import (UntrimmedDataset, check_duration,
                                           check_segments, gather, is_number,
                                           malformed, video_folder)

# Both ways, so 'test' finds "testing" and 'testing' finds ActionFormer's "Test".
_ALIASES = {'train': 'training', 'val': 'validation', 'test': 'testing',
            'training': 'train', 'validation': 'val', 'testing': 'test'}
_FORMAT = ('expected {"database": {video_id: {"subset": ..., "duration": s, '
           '"annotations": [{"segment": [t0, t1], "label": name}]}}}')


def _line_of(text: str, key: str) -> int | None:
  """The line where `key` is first written as a JSON string: where to look."""
  at = text.find(json.dumps(key))
  return text.count('\n', 0, at) + 1 if at >= 0 else None


def _read_database(path: str) -> tuple[dict, str]:
  with open(path) as f:
    text = f.read()
  try:
    data = json.loads(text)
  except json.JSONDecodeError as e:
    raise malformed(path, e.lineno, f'invalid JSON ({e.msg}, column {e.colno})',
                    'repair or re-download the file') from None
  if not isinstance(data, dict) or not isinstance(data.get('database'), dict):
    raise malformed(path, None, 'no "database" object', _FORMAT)
  return data['database'], text


def _check_entry(path: str, text: str, video: str, entry) -> None:
  """Structure only (times are checked by check_segments): a broken one is the file's fault."""
  def bad(what: str) -> ValueError:
    return malformed(path, _line_of(text, video), f'video {video!r}: {what}', _FORMAT)

  if not isinstance(entry, dict) or not isinstance(entry.get('subset'), str):
    raise bad('no "subset" string')
  for key in ('duration', 'fps'):
    if entry.get(key) is not None and not is_number(entry[key]):
      raise bad(f'"{key}" {entry[key]!r} is not a number')
  notes = entry.get('annotations', [])
  if not isinstance(notes, list):
    raise bad('"annotations" is not a list')
  for note in notes:
    segment = note.get('segment') if isinstance(note, dict) else None
    if (not isinstance(segment, list) or len(segment) != 2
        or not all(is_number(t) for t in segment)):
      raise bad(f'annotation {note!r} needs "segment": [t0, t1] in seconds')
    if not isinstance(note.get('label'), str):
      raise bad(f'annotation {note!r} needs a "label" name')


def _subset(path: str, database: dict, split: str) -> str:
  """The JSON's subset string that `split` names, matched ignoring case."""
  subsets = {entry['subset'].lower() for entry in database.values()}
  for name in (split.lower(), _ALIASES.get(split.lower())):
    if name in subsets:
      return name
  raise ValueError(f'{path} has no subset {split!r}; its subsets are '
                   f'{", ".join(sorted(subsets))}')


def load_activitynet_json(root: str, split: str, *,
                          annotation_file: str = 'annotations.json',
                          video_dir: str | None = None,
                          class_names: list[str] | None = None,
                          video_extensions: tuple[str, ...] = ('.mp4', '.mkv', '.webm', '.avi')
                          ) -> UntrimmedDataset:
  """An ActivityNet-1.3-style JSON ({"database": {video_id: {...}}}) and its videos.

  Args:
    root: holds `annotation_file`, `video_dir` and optionally classes.txt.
    split: a subset string of the JSON ("training", "validation", "testing";
      ActionFormer's THUMOS14 has "Validation", its training set, and "Test"),
      matched ignoring case, or train / val / test for the -ing names.
    annotation_file: the JSON; entries {"subset", "duration" (s), "fps"
      (optional), "annotations": [{"segment": [t0, t1], "label": name}]}.
    video_dir: holds <video_id><ext> or v_<video_id><ext> (ActivityNet's
      on-disk names); default root/videos when it exists. Without one,
      record paths are ''.
    class_names: the class order; default root/classes.txt (one name per
      line) when present, else the sorted labels of ALL subsets, so every
      split shares the indices (for THUMOS14 this is ActionFormer's
      "label_id" order; "label_id" itself is not read).
    video_extensions: tried in order for each video.

  The ActivityNet test subset has no annotations: its videos have no segments.
  """
  path = os.path.join(root, annotation_file)
  require(path, 'ActivityNet-style annotations', path)
  database, text = _read_database(path)
  for video, entry in database.items():
    _check_entry(path, text, video, entry)
  subset = _subset(path, database, split)
  if class_names is None:
    listed = os.path.join(root, 'classes.txt')
    if os.path.exists(listed):
      with open(listed) as f:
        class_names = [line.strip() for line in f if line.strip()]
    else:
      class_names = sorted({note['label'] for entry in database.values()
                            for note in entry.get('annotations', [])})

  videos = video_folder(root, video_dir)
  problems: list[str] = []
  entries = []
  for video in sorted(database):
    entry = database[video]
    if entry['subset'].lower() != subset:
      continue
    duration = check_duration(video, entry.get('duration'), problems)
    notes = entry.get('annotations', [])
    boxes, labels = check_segments(video, [n['segment'] for n in notes],
                                   [n['label'] for n in notes], class_names,
                                   duration, problems)
    fps = entry.get('fps')
    annotation = {'segments': boxes, 'labels': labels, 'duration': duration,
                  'fps': float(fps) if fps is not None else None}
    candidates = None
    if videos is not None:
      stems = [video, 'v_' + video] + ([video[2:]] if video.startswith('v_') else [])
      candidates = [os.path.join(videos, stem + ext)
                    for ext in video_extensions for stem in stems]
    entries.append((video, candidates, annotation))
  return gather(entries, list(class_names), problems, source=f'{annotation_file} {subset}')
