"""What a synthetic-objects video looks like: sprites over a two-scale panning texture.

The sampling of what moves where is `synthetic_objects`'; this module draws
it. Each object is a `Sprite` with one centre, size and angle per frame,
drawn as an alpha patch: an MNIST digit resampled bilinearly, or a circle,
square or triangle (filled or outlined) from its signed distance, which
anti-aliases the edge exactly. The same patch gives the pixels and the box,
so a box is exact by construction: the tight box of the pixels at least half
covered by the object (`MASK_ALPHA`), occluded ones included, within the image.

The background is two periodic noise textures (coarse blobs and a fine grain
about as wide as a digit's stroke), each moving the colour along its own RGB
axis, panned together by `render_backdrop` (synthetic_untrimmed's sampler).
Object colours are drawn far from every background colour in RGB, half of
them within its brightness range, so no luma threshold separates objects
from the ground.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from vidjax.data.synthetic_untrimmed_render import Backdrop, render_backdrop

LUMA = np.array([0.299, 0.587, 0.114])
MASK_ALPHA = 0.5  # A pixel belongs to the object's mask (box, visibility) from this coverage.
SHOWN_ALPHA = 0.01  # An object is drawn while some in-frame pixel has this coverage.
MNIST_CENTRE = 13.5  # Centre of a 28x28 MNIST image; its ink fits the middle 20x20.
MNIST_INK = 20.0  # Sprite size / this = scale of a digit.
SHAPES = ('circle', 'square', 'triangle')
COARSE_SIGMA, FINE_SIGMA = (5.0, 10.0), (1.2, 2.5)  # Texture smoothness, px.
COARSE_SPREAD, FINE_SPREAD = (80.0, 140.0), (30.0, 60.0)  # RGB length of each texture's axis.
PAN_SPEED = (0.1, 0.5)  # Background px / frame.
MIN_COLOUR_DISTANCE = 70.0  # RGB, object colour to the nearest background colour.
CAMOUFLAGED, CAMOUFLAGE_SD = 0.5, 1.5  # Share of objects within the background's luma range.
NOISE_SIGMA = 3.0  # Grey levels per channel, independent per pixel and frame.


@dataclasses.dataclass(frozen=True, eq=False)
class Background:
  """middle + (coarse - 0.5) * axes[0] + (fine - 0.5) * axes[1], seen through a panning window."""
  textures: np.ndarray  # [2, N, N] float32 in [0, 1], periodic; N = 2 * frame size
  middle: np.ndarray  # [3] RGB
  axes: np.ndarray  # [2, 3] RGB change from texture value 0 to 1
  offset: np.ndarray  # [T, 2] (x, y) of the frame's top-left corner on the textures


@dataclasses.dataclass(frozen=True, eq=False)
class Sprite:
  """One object's look and its state in every frame of the video (on screen or not)."""
  kind: str  # 'digit' or one of SHAPES
  image: np.ndarray | None  # float32 [28, 28] in [0, 1] for a digit
  stroke: float  # Outline width / size for a shape; 0 = filled
  colour: np.ndarray  # [3] RGB
  depth: float  # Nearer objects (larger depth) are drawn over farther ones.
  centre: np.ndarray  # [T, 2] (x, y); pixel (row r, column c) has its centre at (c, r)
  size: np.ndarray  # [T] px: a digit's ink height, a shape's extent over 0.9
  angle: np.ndarray  # [T] degrees, clockwise on screen


@dataclasses.dataclass(frozen=True, eq=False)
class Track:
  """A sprite over the frames it is drawn in: start, start + 1, ..., stop - 1."""
  sprite: Sprite
  start: int
  alphas: tuple[np.ndarray, ...]  # float32 [h, w] coverage patch per frame
  corners: np.ndarray  # int [n, 2] (x0, y0): the frame pixel of each patch's top-left
  boxes: np.ndarray  # int [n, 4] (x, y, w, h) of the mask within the image; 0s if none
  mask_pixels: np.ndarray  # int [n] pixels of the whole mask, out of the image too

  @property
  def stop(self) -> int:
    return self.start + len(self.alphas)


def sprite_patch(sprite: Sprite, t: int) -> tuple[np.ndarray, int, int]:
  """(float32 [h, w] coverage, x0, y0): the sprite at frame t, on a patch from (x0, y0)."""
  size, (cx, cy) = sprite.size[t], sprite.centre[t]
  half = size + 2.0  # Holds a 28x28 digit turned by any angle, and every shape.
  x0, y0 = int(np.floor(cx - half)), int(np.floor(cy - half))
  n = int(np.ceil(2 * half)) + 1
  theta = np.deg2rad(sprite.angle[t])
  cos, sin = np.cos(theta), np.sin(theta)
  if sprite.kind == 'digit':
    # Patch pixel o (row, col) samples image pixel M o + offset (as synthetic_actions).
    matrix = np.array([[cos, -sin], [sin, cos]]) * MNIST_INK / size
    offset = MNIST_CENTRE - matrix @ np.array([cy - y0, cx - x0])
    alpha = ndimage.affine_transform(sprite.image, matrix, offset, output_shape=(n, n),
                                     order=1, mode='constant', cval=0.0)
    return np.clip(alpha, 0, 1).astype(np.float32), x0, y0
  dy, dx = np.mgrid[0:n, 0:n].astype(np.float32)
  dx, dy = dx + (x0 - cx), dy + (y0 - cy)
  qx, qy = cos * dx + sin * dy, -sin * dx + cos * dy  # Into the shape's own frame.
  if sprite.kind == 'circle':
    distance = np.hypot(qx, qy) - 0.45 * size
  elif sprite.kind == 'square':
    distance = np.maximum(np.abs(qx), np.abs(qy)) - 0.4 * size
  else:  # An equilateral triangle, apex up at angle 0, 0.9 * size tall.
    normals = [(-np.pi / 2 + 2 * np.pi * k / 3) for k in range(3)]
    distance = np.max([np.cos(a) * qx + np.sin(a) * qy for a in normals], axis=0) - 0.3 * size
  if sprite.stroke:
    distance = np.maximum(distance, -distance - sprite.stroke * size)  # The rim only.
  return np.clip(0.5 - distance, 0, 1).astype(np.float32), x0, y0


def _window(x0: int, y0: int, shape: tuple[int, int], size: int):
  """(frame slices, patch slices) of the part of a patch at (x0, y0) inside the image."""
  h, w = shape
  top, left = max(y0, 0), max(x0, 0)
  bottom, right = min(y0 + h, size), min(x0 + w, size)
  if bottom <= top or right <= left:
    return None
  return ((slice(top, bottom), slice(left, right)),
          (slice(top - y0, bottom - y0), slice(left - x0, right - x0)))


def _in_frame(alpha: np.ndarray, x0: int, y0: int, size: int) -> np.ndarray | None:
  window = _window(x0, y0, alpha.shape, size)
  return None if window is None else alpha[window[1]]


def _box(alpha: np.ndarray, x0: int, y0: int, size: int) -> tuple[int, int, int, int]:
  """(x, y, w, h) of the mask's pixels inside the image, or zeros if there are none."""
  window = _window(x0, y0, alpha.shape, size)
  if window is None:
    return (0, 0, 0, 0)
  mask = alpha[window[1]] >= MASK_ALPHA
  rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
  if not rows.size:
    return (0, 0, 0, 0)
  top, left = window[0][0].start, window[0][1].start
  return (left + cols[0], top + rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1)


def trace(sprite: Sprite, anchor: int, size: int) -> Track:
  """The sprite's run on screen: the frames around `anchor` in which it shows in the image.

  Walks out from `anchor` both ways until no in-frame pixel reaches
  `SHOWN_ALPHA`, so the sprite appears and vanishes only outside the image
  (or at the first and last frame); a later return to the image is not drawn.
  """
  patches = {}
  for step in (1, -1):
    t = anchor if step == 1 else anchor - 1
    while 0 <= t < len(sprite.size):
      alpha, x0, y0 = sprite_patch(sprite, t)
      inside = _in_frame(alpha, x0, y0, size)
      if inside is None or inside.max() < SHOWN_ALPHA:
        break
      patches[t] = (alpha, x0, y0)
      t += step
  frames = sorted(patches)
  alphas = tuple(patches[t][0] for t in frames)
  corners = np.array([patches[t][1:] for t in frames], np.int64).reshape(-1, 2)
  boxes = np.array([_box(*patches[t], size) for t in frames], np.int64).reshape(-1, 4)
  mask_pixels = np.array([int((a >= MASK_ALPHA).sum()) for a in alphas], np.int64)
  return Track(sprite, frames[0] if frames else anchor, alphas, corners, boxes, mask_pixels)


def visibility(tracks: list[Track], num_frames: int, size: int) -> np.ndarray:
  """float [T, K]: the share of each object's whole mask seen, nan off screen.

  Hidden is behind a nearer object's mask or outside the image; an outlined
  shape hides only what its rim covers.
  """
  seen = np.full((num_frames, len(tracks)), np.nan)
  nearest_first = sorted(range(len(tracks)), key=lambda k: -tracks[k].sprite.depth)
  for t in range(num_frames):
    covered = np.zeros((size, size), bool)
    for k in nearest_first:
      track = tracks[k]
      if not track.start <= t < track.stop:
        continue
      i = t - track.start
      alpha, (x0, y0) = track.alphas[i], track.corners[i]
      window = _window(x0, y0, alpha.shape, size)
      if window is None:
        seen[t, k] = 0.0
        continue
      mask = alpha[window[1]] >= MASK_ALPHA
      shown = mask & ~covered[window[0]]
      seen[t, k] = shown.sum() / max(track.mask_pixels[i], 1)
      covered[window[0]] |= mask
  return seen


def _texture(rng, n: int, sigma: float) -> np.ndarray:
  """float32 [n, n], periodic smooth noise: mean 0.5, sd 0.25, clipped to [0, 1]."""
  noise = ndimage.gaussian_filter(rng.standard_normal((n, n)), sigma=sigma, mode='wrap')
  return np.clip(0.5 + (noise - noise.mean()) / (4 * noise.std() + 1e-12), 0, 1).astype(np.float32)


def _direction(rng, towards: np.ndarray | None = None) -> np.ndarray:
  """[3] a random unit vector, leaning to `towards` if given."""
  v = rng.normal(size=3) if towards is None else 0.5 * rng.normal(size=3) + towards
  return v / np.linalg.norm(v)


def sample_background(rng, num_frames: int, size: int) -> Background:
  """Two textures about twice the frame, their colour axes, and a pan that turns slowly."""
  n = 2 * size
  textures = np.stack([_texture(rng, n, rng.uniform(*COARSE_SIGMA)),
                       _texture(rng, n, rng.uniform(*FINE_SIGMA))])
  middle = rng.uniform(70, 185, size=3)
  grey = np.full(3, 3 ** -0.5)  # The coarse texture is mostly light and shade.
  axes = np.stack([_direction(rng, grey) * rng.uniform(*COARSE_SPREAD),
                   _direction(rng) * rng.uniform(*FINE_SPREAD)])
  heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.04, num_frames))
  velocity = rng.uniform(*PAN_SPEED) * np.stack([np.cos(heading), np.sin(heading)], axis=1)
  offset = rng.uniform(0, n, size=2) + np.cumsum(velocity, axis=0)
  return Background(textures, middle, axes, offset)


def render_background(background: Background, size: int) -> np.ndarray:
  """float32 [T, H, W, 3] in 0..255: the panning background alone."""
  out = background.middle.astype(np.float32)
  for texture, axis in zip(background.textures, background.axes):
    out = out + render_backdrop(Backdrop(texture, np.stack([-axis / 2, axis / 2]),
                                         background.offset), size)
  return np.clip(out, 0, 255)


def luma_spread(background: Background) -> float:
  """The background's luma standard deviation (each texture has sd 0.25)."""
  return 0.25 * float(np.hypot(*(background.axes @ LUMA)))


def sample_colour(rng, background: Background) -> np.ndarray:
  """[3] RGB at least `MIN_COLOUR_DISTANCE` from every background colour (or the farthest drawn).

  With probability `CAMOUFLAGED`, also within `CAMOUFLAGE_SD` standard
  deviations of the background's mean luma: such an object differs from the
  ground in hue alone.
  """
  a, b = np.meshgrid(np.linspace(-0.5, 0.5, 9), np.linspace(-0.5, 0.5, 9))
  ground = np.clip(background.middle + a.reshape(-1, 1) * background.axes[0]
                   + b.reshape(-1, 1) * background.axes[1], 0, 255)  # [81, 3]
  band = CAMOUFLAGE_SD * luma_spread(background)
  camouflaged = rng.uniform() < CAMOUFLAGED
  best, best_distance = None, -1.0
  for attempt in range(400):
    colour = rng.uniform(0, 255, size=3)
    if camouflaged and attempt < 300 and abs(colour @ LUMA - background.middle @ LUMA) > band:
      continue
    distance = np.linalg.norm(ground - colour, axis=1).min()
    if distance >= MIN_COLOUR_DISTANCE:
      return colour
    if distance > best_distance:
      best, best_distance = colour, distance
  return best


def render(tracks: list[Track], background: Background, num_frames: int, size: int,
           noise_seed: int | None = None) -> np.ndarray:
  """uint8 [T, H, W, 3]: the background, then the tracks far to near, then noise if seeded."""
  frames = render_background(background, size)
  for track in sorted(tracks, key=lambda tr: tr.sprite.depth):
    colour = track.sprite.colour.astype(np.float32)
    for i, alpha in enumerate(track.alphas):
      x0, y0 = track.corners[i]
      window = _window(x0, y0, alpha.shape, size)
      if window is None:
        continue
      a = alpha[window[1]][..., None]
      region = frames[track.start + i][window[0]]
      frames[track.start + i][window[0]] = region * (1 - a) + colour * a
  if noise_seed is not None:
    rng = np.random.default_rng(noise_seed)
    frames += NOISE_SIGMA * rng.standard_normal(frames.shape, dtype=np.float32)
  return np.clip(np.rint(frames), 0, 255).astype(np.uint8)
