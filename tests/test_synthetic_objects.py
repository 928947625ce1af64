"""Tests for the embedded detection-and-tracking dataset (synthetic_objects).

What they pin down: the files are MMTracking's CocoVID JSON plus H.264
videos of the annotated length and size, and show the in-memory scenes;
every box lies in the image and is the tight box of the object's pixels;
a track is one object on consecutive frames; the scenes hold what makes the
task hard (entries and exits, overlaps, real occlusions, 1-6 objects a frame,
changing sizes, colours a brightness threshold cannot separate); splits draw
on disjoint handwriting; one seed gives the same bytes, and `ensure` writes once.
"""
import collections
import json

import numpy as np
import pytest

from vidjax.data import decode
from vidjax.data import synthetic_actions as sa
from vidjax.data import synthetic_objects as so
from vidjax.data import synthetic_objects_render as sr

TINY = dict(videos_per_split=(2, 2, 2), frames=(16, 16), size=64)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  """(root, counts) of a tiny dataset: 2 videos a split, 16 frames of 64x64."""
  root = tmp_path_factory.mktemp('objects') / 'data'
  return root, so.ensure(root, **TINY)


def _coco(root, split):
  return json.loads((root / 'annotations' / f'{split}.json').read_text())


@pytest.fixture(scope='module')
def scenes():
  """14 train videos at the default size and length, in memory only."""
  digits = sa.load_digits('train')
  return [so.video_scene(3, 'train', i, (48, 96), 128, digits) for i in range(14)]


def test_files_decode_to_the_annotated_frames(tiny):
  root, counts = tiny
  manifest = json.loads((root / 'manifest.json').read_text())
  assert manifest['format_version'] == so.FORMAT_VERSION and manifest['counts'] == counts
  assert manifest['classes'] == list(so.CLASS_NAMES)
  for split in so.SPLITS:
    coco = _coco(root, split)
    assert [v['name'] for v in coco['videos']] == [f'{split}_0000', f'{split}_0001']
    assert counts[split]['frames'] == len(coco['images']) == 2 * 16
    for video in coco['videos']:
      frames = decode.read_frames(str(root / 'videos' / f"{video['name']}.mp4"))
      images = [i for i in coco['images'] if i['video_id'] == video['id']]
      assert frames.shape == (len(images), 64, 64, 3) == (16, 64, 64, 3)


def test_json_fields_are_cocovid(tiny):
  root, _ = tiny
  for split in so.SPLITS:
    coco = _coco(root, split)
    assert set(coco) == {'videos', 'images', 'annotations', 'categories'}
    assert coco['categories'] == [{'id': c + 1, 'name': n} for c, n in enumerate(so.CLASS_NAMES)]
    assert all(set(v) == {'id', 'name'} for v in coco['videos'])
    names = {v['id']: v['name'] for v in coco['videos']}
    for key in ('videos', 'images', 'annotations'):
      assert [e['id'] for e in coco[key]] == list(range(1, len(coco[key]) + 1))
    images = {}
    for image in coco['images']:
      assert set(image) == {'id', 'file_name', 'video_id', 'frame_id', 'width', 'height'}
      assert image['file_name'] == f"{names[image['video_id']]}/{image['frame_id']:06d}.jpg"
      assert (image['width'], image['height']) == (64, 64)
      images[image['id']] = image
    for note in coco['annotations']:
      assert set(note) == {'id', 'image_id', 'category_id', 'instance_id', 'bbox', 'area',
                           'iscrowd', 'visibility'}
      x, y, w, h = note['bbox']
      assert all(isinstance(v, int) for v in note['bbox']) and note['image_id'] in images
      assert 0 <= x and 0 <= y and x + w <= 64 and y + h <= 64
      assert min(w, h) >= so.MIN_SIDE and note['area'] == w * h
      assert 1 <= note['category_id'] <= len(so.CLASS_NAMES)
      assert 0 <= note['visibility'] <= 1
      assert note['iscrowd'] == int(note['visibility'] < so.IGNORE_BELOW)


def test_tracks_are_one_object_on_consecutive_frames(tiny):
  root, _ = tiny
  for split in so.SPLITS:
    coco = _coco(root, split)
    images = {i['id']: i for i in coco['images']}
    tracks = collections.defaultdict(list)
    per_image = collections.Counter()
    for note in coco['annotations']:
      image = images[note['image_id']]
      tracks[note['instance_id']].append((image['video_id'], note['category_id'],
                                          image['frame_id']))
      per_image[note['image_id']] += 1
    assert sorted(tracks) == list(range(1, len(tracks) + 1))
    for rows in tracks.values():
      assert len({(v, c) for v, c, _ in rows}) == 1  # One video, one class.
      frames = sorted(f for _, _, f in rows)
      assert frames == list(range(frames[0], frames[0] + len(frames)))
    assert all(1 <= per_image[i] <= so.MAX_OBJECTS for i in images)  # 1-6 a frame.
    for image_id in images:  # No object twice in a frame.
      ids = [n['instance_id'] for n in coco['annotations'] if n['image_id'] == image_id]
      assert len(ids) == len(set(ids))


def test_files_show_the_scenes(tiny):
  root, _ = tiny
  digits = sa.load_digits('val')
  scene, wrong = (so.video_scene(0, 'val', i, (16, 16), 64, digits) for i in (1, 0))
  decoded = decode.read_frames(str(root / 'videos' / 'val_0001.mp4')).astype(np.float32)
  # Noise and 4:2:0 chroma of a colourful texture cost about 5 grey levels; another scene 40.
  error = np.abs(decoded - so.render(scene, noise=False)).mean()
  assert error < 8 and error < 0.3 * np.abs(decoded - so.render(wrong, noise=False)).mean()
  coco = _coco(root, 'val')
  first = min(i['id'] for i in coco['images'] if i['video_id'] == 2)
  written = [(n['image_id'] - first, n['bbox'], n['visibility']) for n in coco['annotations']
             if n['image_id'] >= first]
  assert written == [(b['frame'], b['bbox'], b['visibility']) for b in so.frame_boxes(scene)]


def test_boxes_are_tight_on_the_pixels(scenes):
  """Mask pixels fill the box to each edge; in the noise-free frame an object alone
  reaches the box's four edges with at least half coverage and no further."""
  checked = 0
  for scene in scenes[:5]:
    frames = so.render(scene, noise=False).astype(np.float32)
    ground = sr.render_background(scene.background, scene.size)
    for box in so.frame_boxes(scene):
      t, track = box['frame'], scene.tracks[box['track']]
      x, y, w, h = box['bbox']
      i = t - track.start
      alpha, (x0, y0) = track.alphas[i], track.corners[i]
      full = np.zeros((scene.size + 2 * 64,) * 2, np.float32)  # Room for patches off the image.
      full[y0 + 64:y0 + 64 + alpha.shape[0], x0 + 64:x0 + 64 + alpha.shape[1]] = alpha
      mask = full[64:-64, 64:-64] >= sr.MASK_ALPHA
      rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
      assert (cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1) == (x, y, w, h)
      others = [o for o in scene.tracks if o is not track and o.start <= t < o.stop]
      if any(_near(o, t, (x, y, w, h)) for o in others):
        continue
      # Coverage from the pixels: frame = ground + a (colour - ground) where the object is alone.
      delta = track.sprite.colour - ground[t]
      seen = ((frames[t] - ground[t]) * delta).sum(-1) / (delta * delta).sum(-1)
      inside = seen[y:y + h, x:x + w]
      for edge in (inside[0], inside[-1], inside[:, 0], inside[:, -1]):
        assert edge.max() >= sr.MASK_ALPHA - 0.03
      ring = np.pad(np.zeros((h, w), bool), 1, constant_values=True)
      outside = np.pad(seen, 1)[y:y + h + 2, x:x + w + 2][ring]
      assert outside.max() < sr.MASK_ALPHA + 0.03
      checked += 1
  assert checked > 500


def _near(other, t, box) -> bool:
  """Whether `other`'s patch at frame t comes within 2 px of `box`."""
  x, y, w, h = box
  i = t - other.start
  (x0, y0), (ph, pw) = other.corners[i], other.alphas[i].shape
  return x0 < x + w + 2 and x - 2 < x0 + pw and y0 < y + h + 2 and y - 2 < y0 + ph


def _touches_border(bbox, size) -> bool:
  x, y, w, h = bbox
  return x == 0 or y == 0 or x + w == size or y + h == size


def _overlap(a, b) -> int:
  return (max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
          * max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])))


def test_scenes_are_hard(scenes):
  entering = leaving = overlapping = occluded = 0
  classes, sizes, camouflaged = set(), [], 0
  for scene in scenes:
    boxes = so.frame_boxes(scene)
    by_track = collections.defaultdict(list)
    by_frame = collections.defaultdict(list)
    for b in boxes:
      by_track[b['track']].append(b)
      by_frame[b['frame']].append(b)
    assert sorted(by_frame) == list(range(scene.num_frames))
    assert all(1 <= len(v) <= so.MAX_OBJECTS for v in by_frame.values())
    for rows in by_track.values():
      first, last = rows[0], rows[-1]
      entering += first['frame'] > 0 and _touches_border(first['bbox'], scene.size)
      leaving += last['frame'] < scene.num_frames - 1 and _touches_border(last['bbox'], scene.size)
      heights = [r['bbox'][3] for r in rows if not _touches_border(r['bbox'], scene.size)]
      sizes.append(max(heights, default=1) / min(heights, default=1))
    for rows in by_frame.values():
      overlapping += any(_overlap(a['bbox'], b['bbox']) for a in rows for b in rows if a is not b)
      # More than 70% hidden by other objects, not by the border.
      occluded += any(r['iscrowd'] and not _touches_border(r['bbox'], scene.size) for r in rows)
    classes |= set(scene.classes)
    luma = sr.render_background(scene.background, scene.size)[::10] @ sr.LUMA
    low, high = np.percentile(luma, [5, 95])
    camouflaged += sum(low <= tr.sprite.colour @ sr.LUMA <= high for tr in scene.tracks)
    assert all(so.SIZE[0] - 1e-9 <= tr.sprite.size.min() and tr.sprite.size.max() <= so.SIZE[1]
               + 1e-9 for tr in scene.tracks)
  tracks = sum(len(s.tracks) for s in scenes)
  assert entering >= 5 and leaving >= 5 and overlapping >= 100 and occluded >= 10
  assert classes == set(range(len(so.CLASS_NAMES)))
  assert max(sizes) > 1.5 and np.median(sizes) > 1.1  # Objects grow and shrink.
  assert camouflaged >= 0.3 * tracks  # Inside the background's brightness range.


def test_splits_draw_disjoint_digits():
  """The digits drawn in each split are its own instances, never another split's."""
  pools = {s: {d.tobytes() for d in sa.load_digits(s).reshape(-1, 28, 28)} for s in so.SPLITS}
  assert not (pools['train'] & pools['val'] or pools['train'] & pools['test']
              or pools['val'] & pools['test'])
  for split in so.SPLITS:
    digits = sa.load_digits(split)
    drawn = [tr.sprite.image.tobytes() for i in range(6)
             for tr in so.video_scene(0, split, i, (16, 16), 64, digits).tracks
             if tr.sprite.kind == 'digit']
    assert drawn and all(d in pools[split] for d in drawn)


def test_same_seed_same_bytes_and_ensure_writes_once(tiny, tmp_path, monkeypatch):
  root, counts = tiny
  again = tmp_path / 'again'
  assert so.generate(again, **TINY) == counts
  for split in so.SPLITS:
    name = f'annotations/{split}.json'
    assert (again / name).read_bytes() == (root / name).read_bytes()
  # x264 through PyAV is not bit-exact from run to run here: compare what the videos show.
  first, second = (decode.read_frames(str(r / 'videos/test_0001.mp4')).astype(np.float32)
                   for r in (root, again))
  assert np.abs(first - second).mean() < 3

  def fail(*args, **kwargs):
    raise AssertionError('regenerated')
  with monkeypatch.context() as patch:
    patch.setattr(so, 'generate', fail)
    assert so.ensure(root, **TINY) == counts  # Nothing changed: nothing written.
    assert so.ensure(again, **TINY) == counts
  other = so.ensure(again, **{**TINY, 'videos_per_split': (1, 1, 1)})
  assert other['train']['videos'] == 1 and not (again / 'videos/train_0001.mp4').exists()
  assert not list(tmp_path.glob('.again.*'))  # No staging folder left behind.
