"""Synthetic Denoise: clean videos of real photographs under a moving camera, for denoising.

What it is: the real photographs that ship inside the scikit-image wheel
(`SOURCES`; no download), each filmed by a virtual camera that pans, zooms
slowly and rolls a few degrees, with a little hand-held shake. A denoiser
trained on it sees natural image statistics (skin, fur, wood, gravel,
grass, stars, tissue) and real sub-pixel motion between frames, which is
what a video denoiser exploits. The task adds the noise; these are the
clean targets.

What it is not: real video. Nothing in a scene moves on its own, nothing
is occluded or revealed, there is no motion blur, lighting change or
sensor noise model, and 16 photographs are little variety (DAVIS has 90
scenes). Numbers on it show that a model learns and uses its neighbouring
frames, not how it does on DAVIS or Set8: evaluate on those for that.

Splits are disjoint in source photographs: train sees 13 (the colour ones
twice as often as the grey, which are stored as grey RGB), val sees only
`rocket`, test only `chelsea` and `coffee`. Camera paths come from (seed,
split, index) alone (`camera_path`).

Frames are 96x96 (FastDVDnet's training patch size; a small CNN trains on
them in minutes on CPU), 32 frames at 10 fps. Each video first scales its
photograph down, anti-aliased, so that the most zoomed-in frame samples it
1:1; frames are then cubic-spline samples of that image, so no frame is
upsampled (which would make it unnaturally smooth and easy to denoise) and
none is shrunk by more than the zoom range (1.29x), so aliasing stays small.

On disk (`generate`, `ensure`), a video folder (`layouts.frames.load_video_folder`):
  videos/{split}_{i:04d}.mp4   H.264 yuv420p, crf 14 (`synthetic_actions.write_mp4`)
  {split}.csv                  header `path,source`: path relative to root, the photograph
  DONE                         JSON of the parameters, written last
The defaults (96 / 8 / 8 videos, 5 MB) take 25 s on two shared CPU cores.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import multiprocessing
import os
import pathlib

import numpy as np
from scipy import ndimage

from vidjax import progress as progress_lib
from vidjax.data import staging as staging_lib
from vidjax.data import synthetic_actions as sa
from vidjax.data import workers

SPLITS = ('train', 'val', 'test')
# scikit-image's real photographs (skimage.data), disjoint across splits. Left out: the
# colour wheel (synthetic), clock (mostly a flat wall), page (a rendered document), cell and
# microaneurysms (tiny or flat), logo, phantom and the other drawings.
COLOUR = ('astronaut', 'motorcycle_left', 'motorcycle_right', 'hubble_deep_field', 'retina',
          'immunohistochemistry', 'rocket', 'chelsea', 'coffee')
SOURCES: dict[str, tuple[str, ...]] = {
    'train': ('astronaut', 'motorcycle_left', 'motorcycle_right', 'hubble_deep_field', 'retina',
              'immunohistochemistry', 'camera', 'coins', 'moon', 'grass', 'gravel', 'brick',
              'text'),
    'val': ('rocket',),
    'test': ('chelsea', 'coffee'),
}
# The part of a photograph the camera may see, (top, bottom, left, right) as fractions:
# the retina's fundus is a disc on black.
_CROPS = {'retina': (0.17, 0.83, 0.17, 0.83)}
VIDEOS_PER_SPLIT = (96, 8, 8)
FRAMES = 32
SIZE = 96
FPS = 10
# Bump when sources, paths or rendering change, so `ensure` regenerates cached copies.
FORMAT_VERSION = 'synthetic_denoise-1'

# The camera, per frame at 10 fps; pixels are output pixels.
VIEW = (0.3, 0.6)  # Widest view's side, as a share of the photograph's shorter side.
ZOOM_RATE = 0.008  # Largest change of log zoom per frame (x1.29 over 32 frames).
ROLL, ROLL_RATE = 4.0, 0.3  # Degrees at the start, degrees per frame.
SPEED = (0.3, 2.5)  # Pan, px / frame.
SHAKE, SHAKE_PERIOD = 0.8, (6.0, 24.0)  # Hand-held wobble: amplitude px, period frames.


@functools.lru_cache(maxsize=4)
def load_photograph(name: str) -> np.ndarray:
  """float32 [H, W, 3] in [0, 1]: a photograph of SOURCES (grey ones as grey RGB), cropped."""
  from skimage import data  # Lazy: only generation needs scikit-image.
  if name.startswith('motorcycle_'):
    image = data.stereo_motorcycle()[0 if name == 'motorcycle_left' else 1]
  else:
    image = getattr(data, name)()
  image = np.asarray(image, np.float32) / 255.0
  if image.ndim == 2:
    image = np.repeat(image[..., None], 3, axis=-1)
  top, bottom, left, right = _CROPS.get(name, (0, 1, 0, 1))
  h, w = image.shape[:2]
  return image[round(top * h):round(bottom * h), round(left * w):round(right * w), :3]


def video_source(split: str, index: int) -> str:
  """The photograph video `index` of `split` films: colour ones come twice as often."""
  cycle = [n for n in SOURCES[split] for _ in range(2 if n in COLOUR else 1)]
  return cycle[index % len(cycle)]


@dataclasses.dataclass(frozen=True, eq=False)
class CameraPath:
  """Per frame: view centre (row, col) and side in photograph pixels, roll in degrees."""
  centre: np.ndarray  # [T, 2]
  side: np.ndarray  # [T]
  roll: np.ndarray  # [T]


def camera_path(rng: np.random.Generator, shape: tuple[int, int], frames: int,
                size: int) -> CameraPath:
  """A smooth path whose every view lies inside a photograph of `shape` (H, W).

  Motion that does not fit is halved until it does; a still camera always fits.
  """
  t = np.arange(frames, dtype=np.float64)
  short = min(shape)
  zoom = rng.uniform(-ZOOM_RATE, ZOOM_RATE)
  spread = np.exp(abs(zoom) * (frames - 1))  # Widest side / narrowest side.
  widest = np.clip(rng.uniform(*VIEW) * short, size * spread, short / 1.25)
  roll = rng.uniform(-ROLL, ROLL) + rng.uniform(-ROLL_RATE, ROLL_RATE) * t
  heading = rng.uniform(0, 2 * np.pi)
  pan = rng.uniform(*SPEED) * t[:, None] * [np.sin(heading), np.cos(heading)]
  periods = rng.uniform(*SHAKE_PERIOD, size=2)
  shake = (rng.uniform(0, SHAKE, size=2)
           * np.sin(2 * np.pi * t[:, None] / periods + rng.uniform(0, 2 * np.pi, size=2)))
  start = rng.uniform(size=2)
  for _ in range(12):
    log_side = zoom * t
    side = widest * np.exp(log_side - log_side.max())
    pixel = side / size  # Photograph px per output px.
    reach = side / 2 * (np.abs(np.cos(np.deg2rad(roll))) + np.abs(np.sin(np.deg2rad(roll)))) + 2
    offset = (pan + shake) * pixel[:, None]
    low = np.max(reach[:, None] - offset, axis=0)
    high = np.min(np.asarray(shape, np.float64) - 1 - reach[:, None] - offset, axis=0)
    if np.all(low <= high):
      return CameraPath(low + start * (high - low) + offset, side, roll)
    zoom, pan, shake, roll = zoom / 2, pan / 2, shake / 2, roll / 2
  raise AssertionError(f'no camera path fits a photograph of {shape}')


def render(image: np.ndarray, path: CameraPath, size: int) -> np.ndarray:
  """uint8 [T, size, size, 3]: the views of `path` over `image` (float [H, W, 3])."""
  scale = size / path.side.min()  # The narrowest view samples 1:1.
  small = image
  if scale < 1:
    from skimage.transform import rescale
    small = rescale(image, scale, order=1, anti_aliasing=True, channel_axis=-1)
  scale = small.shape[0] / image.shape[0]
  coefficients = [ndimage.spline_filter(small[..., c], order=3, mode='mirror') for c in range(3)]
  middle = (size - 1) / 2
  frames = np.empty((len(path.side), size, size, 3), np.uint8)
  for t in range(len(path.side)):
    theta = np.deg2rad(path.roll[t])
    rotate = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    matrix = rotate * path.side[t] * scale / size  # Output (row, col) -> small image.
    offset = path.centre[t] * scale - matrix @ [middle, middle]
    frame = np.stack([ndimage.affine_transform(c, matrix, offset, output_shape=(size, size),
                                               order=3, mode='mirror', prefilter=False)
                      for c in coefficients], axis=-1)
    frames[t] = np.clip(np.rint(frame * 255), 0, 255).astype(np.uint8)
  return frames


def render_video(seed: int, split: str, index: int, frames: int = FRAMES,
                 size: int = SIZE) -> np.ndarray:
  """uint8 [T, H, W, 3]: video `index` of `split`, from (seed, split, index) alone."""
  image = load_photograph(video_source(split, index))
  rng = np.random.default_rng([seed, SPLITS.index(split), index])
  return render(image, camera_path(rng, image.shape[:2], frames, size), size)


def _write_video(job: tuple) -> None:
  path, seed, split, index, frames, size = job
  sa.write_mp4(path, render_video(seed, split, index, frames, size), fps=FPS)


def _init_worker() -> None:
  workers.init_pool_worker()


def generate(root: str | os.PathLike, *, videos_per_split=VIDEOS_PER_SPLIT, frames: int = FRAMES,
             size: int = SIZE, seed: int = 0, num_processes: int = 2,
             progress: bool = True) -> pathlib.Path:
  """Writes the layout of the module docstring at `root`, overwriting.

  `videos_per_split` is (train, val, test). Workers are spawned, as in
  `synthetic_actions.generate` (call it under `if __name__ == '__main__':`);
  a handful of videos is written in this process, since starting a pool
  costs more than they do.
  """
  root = pathlib.Path(root)
  (root / 'videos').mkdir(parents=True, exist_ok=True)
  jobs = []
  for split, count in zip(SPLITS, videos_per_split):
    rows = ['path,source']
    for index in range(count):
      relative = f'videos/{split}_{index:04d}.mp4'
      rows.append(f'{relative},{video_source(split, index)}')
      jobs.append((str(root / relative), seed, split, index, frames, size))
    (root / f'{split}.csv').write_text('\n'.join(rows) + '\n')
  # Photograph by photograph, so that each process loads (and caches) few of them.
  jobs.sort(key=lambda job: (job[2], video_source(job[2], job[3]), job[3]))
  if num_processes <= 1 or len(jobs) < 8 * num_processes:
    for job in progress_lib.track(jobs, 'generate denoise', progress):
      _write_video(job)
  else:
    with multiprocessing.get_context('spawn').Pool(num_processes, _init_worker) as pool:
      for _ in progress_lib.track(pool.imap_unordered(_write_video, jobs, chunksize=4),
                                  'generate denoise', progress, total=len(jobs)):
        pass
  return root


def _params(videos_per_split, frames, size, seed) -> dict:
  import skimage  # Another release may ship other pixels.
  return {'format_version': FORMAT_VERSION, 'videos_per_split': [int(v) for v in videos_per_split],
          'frames': int(frames), 'size': int(size), 'fps': FPS, 'seed': int(seed),
          'sources': SOURCES, 'skimage': skimage.__version__}


def _is_complete(root: pathlib.Path, wanted: dict) -> bool:
  try:
    return json.loads((root / 'DONE').read_text()) == json.loads(json.dumps(wanted))
  except (OSError, ValueError):
    return False


def ensure(root: str | os.PathLike, *, videos_per_split=VIDEOS_PER_SPLIT, frames: int = FRAMES,
           size: int = SIZE, seed: int = 0, num_processes: int = 2,
           progress: bool = True) -> pathlib.Path:
  """Generates the set at `root` once; later calls with equal parameters return at once.

  As `synthetic_actions.ensure_dataset`: written beside `root`, DONE last,
  then renamed onto it; a set made with other parameters is replaced.
  """
  root = pathlib.Path(root)
  wanted = _params(videos_per_split, frames, size, seed)
  if _is_complete(root, wanted):
    return root
  staging = staging_lib.staging_dir(root)
  generate(staging, videos_per_split=videos_per_split, frames=frames, size=size, seed=seed,
           num_processes=num_processes, progress=progress)
  (staging / 'DONE').write_text(json.dumps(wanted, sort_keys=True) + '\n')
  staging_lib.publish(staging, root, lambda: _is_complete(root, wanted))
  return root
