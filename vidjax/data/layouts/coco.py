"""COCO JSON as published, and its video extension as MMTracking's CocoVID writes it.

COCO (annotations/instances_val2017.json): "images" [{id, file_name, width,
height}], "annotations" [{image_id, category_id, bbox: [x, y, w, h] in
pixels, iscrowd}], "categories" [{id, name}]. CocoVID (MMTracking's
ImageNet-VID and MOT17 conversions) adds "videos" [{id, name}], on each
image "video_id" and "frame_id" (0-based), and on each annotation
"instance_id", the track.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os

from vidjax.data.layouts.boxes import (DetectionDataset, Problems, box_annotation,
                                       check_boxes, finish, xywh_to_xyxy)
from vidjax.data.layouts.common import _Listing, require
from vidjax.data.layouts.untrimmed import is_number, malformed
from vidjax.data.records import Record

_FORMAT = ('expected {"images": [{"id", "file_name", "width", "height"}], "annotations": '
           '[{"image_id", "category_id", "bbox": [x, y, w, h]}], "categories": [{"id", "name"}]}')
_VIDEO_FORMAT = ('CocoVID also has "videos": [{"id", "name"}], "video_id" and "frame_id" '
                 'on images, "instance_id" on annotations')


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


_ID = (_is_int, 'an integer')
_NAME = (lambda v: isinstance(v, str) and v != '', 'a string')
_SIZE = (lambda v: is_number(v) and v > 0, 'a positive number')
_BBOX = (lambda v: isinstance(v, list) and len(v) == 4 and all(is_number(x) for x in v),
         '[x, y, w, h]')
_FLAG = (lambda v: v in (0, 1), '0 or 1')

# key -> (required fields, fields checked when present)
_FIELDS = {
    'images': ({'id': _ID, 'file_name': _NAME, 'width': _SIZE, 'height': _SIZE},
               {'video_id': _ID, 'frame_id': _ID}),
    'annotations': ({'image_id': _ID, 'category_id': _ID, 'bbox': _BBOX},
                    {'iscrowd': _FLAG, 'instance_id': _ID}),
    'categories': ({'id': _ID, 'name': _NAME}, {}),
    'videos': ({'id': _ID}, {'name': _NAME}),
}


@dataclasses.dataclass(frozen=True)
class _Coco:
  """A checked COCO file: its images in id order, their annotations, the class mapping."""
  path: str
  images: list[dict]
  notes: dict[int, list[dict]]  # image id -> its annotations
  class_names: list[str]
  label_of: dict[int, int]  # category id -> 0-based label
  videos: list[dict]


def _entries(path: str, data: dict, key: str, fix: str) -> list[dict]:
  """data[key], every entry with its fields of the right type, or a one-line error."""
  entries = data.get(key, [])
  if not isinstance(entries, list):
    raise malformed(path, None, f'"{key}" is not a list', fix)
  required, optional = _FIELDS[key]
  for i, entry in enumerate(entries):
    if not isinstance(entry, dict):
      raise malformed(path, None, f'{key}[{i}] is {entry!r:.60}, not an object', fix)
    for field, (ok, kind) in required.items():
      if not ok(entry.get(field)):
        raise malformed(path, None, f'{key}[{i}] needs "{field}" as {kind}, got '
                        f'{entry.get(field)!r:.60}', fix)
    for field, (ok, kind) in optional.items():
      if entry.get(field) is not None and not ok(entry[field]):
        raise malformed(path, None, f'{key}[{i}] has "{field}" {entry[field]!r:.60}, '
                        f'not {kind}', fix)
  if 'id' in required:
    seen = collections.Counter(e['id'] for e in entries)
    twice = [i for i, n in seen.items() if n > 1]
    if twice:
      raise malformed(path, None, f'{key} id {twice[0]} is used {seen[twice[0]]} times',
                      'give every entry its own id')
  return entries


def _read(path: str, what: str, problems: Problems, videos: bool = False) -> _Coco:
  """The file checked, categories mapped in list order; notes on unknown images counted."""
  require(path, what, path)
  with open(path) as f:
    text = f.read()
  fix = _FORMAT + ('; ' + _VIDEO_FORMAT if videos else '')
  if not text.strip():
    raise malformed(path, None, 'the file is empty', 're-download or re-export it')
  try:
    data = json.loads(text)
  except json.JSONDecodeError as e:
    raise malformed(path, e.lineno, f'invalid JSON ({e.msg}, column {e.colno})',
                    'repair or re-download the file') from None
  if not isinstance(data, dict):
    raise malformed(path, None, 'not a JSON object', fix)
  images = _entries(path, data, 'images', fix)
  categories = _entries(path, data, 'categories', fix)
  if not images or not categories:
    raise malformed(path, None, f'no "{"images" if not images else "categories"}"', fix)
  if videos and 'videos' not in data:
    raise malformed(path, None, 'no "videos": this is plain COCO', 'read it with load_coco')
  known = {image['id'] for image in images}
  notes = collections.defaultdict(list)
  orphans = []
  for note in _entries(path, data, 'annotations', fix):
    if note['image_id'] in known:
      notes[note['image_id']].append(note)
    else:
      orphans.append(note)
  problems.add('missing_frame', len(orphans), (
      f'{os.path.basename(path)}: box {n["bbox"]} is on image {n["image_id"]}, which is not '
      f'among the images; dropped' for n in orphans))
  return _Coco(path, sorted(images, key=lambda i: i['id']), dict(notes),
               [c['name'] for c in categories],
               {c['id']: i for i, c in enumerate(categories)},
               _entries(path, data, 'videos', fix) if videos else [])


def _checked(coco: _Coco, video_id: str, frames: list[tuple[dict, int]],
             frame_index: dict[int, int], width: int, height: int,
             problems: Problems) -> tuple[dict, dict]:
  """The boxes of (image, frame number) pairs -> (checked boxes, checked crowd boxes)."""
  found = [(note, frame) for image, frame in frames for note in coco.notes.get(image['id'], ())]
  parts = []
  for crowd in (False, True):
    chosen = [(n, f) for n, f in found if bool(n.get('iscrowd', 0)) == crowd]
    parts.append(check_boxes(
        video_id, xywh_to_xyxy([n['bbox'] for n, _ in chosen]),
        [n['category_id'] for n, _ in chosen], [f for _, f in chosen],
        [n.get('instance_id', -1) for n, _ in chosen], label_of=coco.label_of,
        frame_index=frame_index, width=width, height=height, problems=problems,
        what='crowd box' if crowd else 'box'))
  problems.add('crowd', len(parts[1]['boxes']))
  return parts[0], parts[1]


def _image_record(coco: _Coco, image: dict, image_dir: str, listing: _Listing,
                  problems: Problems) -> Record | None:
  """One image as a one-frame record ('video_id' is its COCO id), or None if its file is absent."""
  file = os.path.join(image_dir, image['file_name'])
  if not listing.exists(file):
    return None
  width, height = int(image['width']), int(image['height'])
  boxes, crowd = _checked(coco, str(image['id']), [(image, 0)], {0: 0}, width, height, problems)
  return Record(file, box_annotation(boxes, width=width, height=height, num_frames=1,
                                     frame_files=[file], crowd=crowd), str(image['id']))


def load_coco(root: str, split: str, *, annotation_file: str | None = None,
              image_dir: str | None = None) -> DetectionDataset:
  """COCO's detection JSON and its images: each image a one-frame record.

  Args:
    root: holds `annotation_file` and `image_dir` (both may be absolute).
    split: e.g. 'val2017'; names the defaults below.
    annotation_file: default annotations/instances_{split}.json.
    image_dir: holds each image's "file_name"; default root/{split}.

  Labels are the categories' positions in the "categories" list (COCO's 80
  ids 1..90 -> 0..79). iscrowd boxes are kept apart in 'crowd_boxes', for
  a metric to ignore, and counted. A record's `video_id` is its image id,
  so predictions map back to COCO results. A file with no "annotations"
  (test-dev's image info) gives records without boxes.
  """
  default = os.path.join('annotations', f'instances_{split}.json')
  path = os.path.join(root, annotation_file or default)
  images_dir = os.path.join(root, split if image_dir is None else image_dir)
  problems = Problems(f'COCO {split}')
  coco = _read(path, 'COCO annotations', problems)
  listing = _Listing()
  records, missing = [], []
  for image in coco.images:
    record = _image_record(coco, image, images_dir, listing, problems)
    if record is None:
      missing.append(os.path.join(images_dir, image['file_name']))
    else:
      records.append(record)
  return finish(records, coco.class_names, missing, problems)


def load_cocovid(root: str, split: str, *, annotation_file: str | None = None,
                 image_dir: str = '', video_dir: str | None = None,
                 video_extensions: tuple[str, ...] = ('.mp4', '.mkv', '.webm', '.avi')
                 ) -> DetectionDataset:
  """MMTracking's CocoVID JSON: one record per video, frames in "frame_id" order.

  Args:
    root: holds `annotation_file` and the frames or videos (paths may be absolute).
    split: names the default annotation file and the problems' source.
    annotation_file: default annotations/{split}.json (MMTracking writes
      e.g. annotations/imagenet_vid_train.json, annotations/half-train_cocoformat.json).
    image_dir: what the images' "file_name"s are relative to (ImageNet-VID:
      Data/VID; MOT17: train); default root.
    video_dir: when given, each video is a file <video_dir>/<video name><ext>
      instead of frames: 'box_frames' are then the "frame_id"s themselves,
      and 'num_frames' is one past the last listed frame (the loader never
      opens a video, so its true length is known only when decoded).
    video_extensions: tried in order, with `video_dir`.

  'track_ids' are the "instance_id"s. A frame whose image is absent is left
  out (later frames move up one) and its boxes dropped, both counted; a
  video with no frame present goes to `missing`. An image with no
  "video_id" (or -1: ImageNet DET images) is a one-frame record.
  """
  path = os.path.join(root, annotation_file or os.path.join('annotations', f'{split}.json'))
  frames_dir = os.path.join(root, image_dir)
  problems = Problems(f'CocoVID {split}')
  coco = _read(path, 'CocoVID annotations', problems, videos=True)
  fix = _VIDEO_FORMAT
  by_video = collections.defaultdict(list)
  videos = {v['id']: v for v in coco.videos}
  listing = _Listing()
  records, missing = [], []
  for image in coco.images:
    video = image.get('video_id')
    if video is None or video == -1:
      record = _image_record(coco, image, frames_dir, listing, problems)
      if record is None:
        missing.append(os.path.join(frames_dir, image['file_name']))
      else:
        records.append(record)
    elif video not in videos:
      raise malformed(path, None, f'image {image["id"]} has "video_id" {video}, not among '
                      f'the videos', fix)
    elif image.get('frame_id') is None:
      raise malformed(path, None, f'image {image["id"]} of video {video} has no "frame_id"', fix)
    else:
      by_video[video].append(image)
  for video in sorted(by_video):
    frames = sorted(by_video[video], key=lambda i: i['frame_id'])
    name = videos[video].get('name') or str(video)
    ids = [i['frame_id'] for i in frames]
    if len(set(ids)) < len(ids):
      raise malformed(path, None, f'video {name!r} lists a "frame_id" twice', fix)
    sizes = {(int(i['width']), int(i['height'])) for i in frames}
    if len(sizes) > 1:
      raise malformed(path, None, f'video {name!r} has frames of sizes {sorted(sizes)}',
                      'give every frame of a video the same width and height')
    (width, height), = sizes
    if video_dir is None:
      files = [os.path.join(frames_dir, i['file_name']) for i in frames]
      present = [listing.exists(f) for f in files]
      problems.add('missing_image', present.count(False), (
          f'{name}: frame {i["frame_id"]} ({f}) is missing; left out'
          for i, f, ok in zip(frames, files, present) if not ok))
      if not any(present):
        missing.append(os.path.dirname(files[0]))
        continue
      frame_files = [f for f, ok in zip(files, present) if ok]
      frame_index = {i['frame_id']: n for n, i in enumerate(
          i for i, ok in zip(frames, present) if ok)}
      location = os.path.commonpath([os.path.dirname(f) for f in frame_files])
      num_frames = len(frame_files)
    else:
      candidates = [os.path.join(root, video_dir, name + ext) for ext in video_extensions]
      location = next((c for c in candidates if listing.exists(c)), None)
      if location is None:
        missing.append(candidates[0])
        continue
      frame_files, num_frames = None, max(ids) + 1
      frame_index = {f: f for f in range(num_frames)}
    boxes, crowd = _checked(coco, name, [(i, i['frame_id']) for i in frames], frame_index,
                            width, height, problems)
    records.append(Record(location, box_annotation(
        boxes, width=width, height=height, num_frames=num_frames, frame_files=frame_files,
        crowd=crowd), name))
  return finish(records, coco.class_names, missing, problems)
