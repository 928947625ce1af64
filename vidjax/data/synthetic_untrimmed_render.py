"""What an untrimmed synthetic video looks like: continuous sprite motion over a panning texture.

Everything here is continuous in time; the labelled timeline of actions is
`synthetic_untrimmed`'s. synthetic_actions' `render_from_params` draws a
sprite over a flat colour. A flat, still background would make an untrimmed
video too easy (any pixel change is the sprite's), so here the background is
a smooth periodic noise texture in two close colours that pans with a drift of
its own, turning at random times unrelated to the actions. The sprite
(`Sprite`: idle drift and wobble, plus whatever an action adds) is drawn by
`render_from_params` as white ink on black (coverage times opacity) and
blended over the texture: one renderer for both datasets, and no code that
could draw a cut.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from vidjax.data import synthetic_actions as sa

_LUMA = np.array([0.299, 0.587, 0.114])
TEXTURE_SPREAD = (24.0, 40.0)  # RGB distance of each texture colour from the middle one.
MIN_INK_CONTRAST = 48.0  # Luma between the sprite and either texture colour.
DRIFT_SPEED = (0.15, 0.6)  # Texture pan, px / frame at 64 px.
DRIFT_SPELL = (30, 200)  # Frames between changes of the pan's direction.
DRIFT_EASE = 16  # Frames over which the pan turns to its new direction.
# The idle sprite: centre velocity decay, kick (px/frame) and pull to the middle,
# and wobble amplitudes of log scale, angle (degrees) and opacity.
IDLE_DAMPING, IDLE_KICK, IDLE_PULL = 0.9, 0.06, 0.0008
SCALE_WOBBLE, ANGLE_WOBBLE, ALPHA_WOBBLE = 0.02, 2.5, 0.08


@dataclasses.dataclass(frozen=True, eq=False)
class Backdrop:
  """The moving background: a periodic texture seen through a sliding window."""
  texture: np.ndarray  # [N, N] float32 in [0, 1], periodic; N = 2 * frame size
  colours: np.ndarray  # [2, 3] RGB at texture values 0 and 1
  offset: np.ndarray  # [T, 2] (x, y) of the frame's top-left corner on the texture


@dataclasses.dataclass(frozen=True, eq=False)
class VideoParams:
  """Everything random about one untrimmed video, one value per frame where it varies.

  `sprite` is synthetic_actions' per-frame state for the whole video (its
  `class_index` is -1: the labels are the segments `sample_video` returns);
  its `background` is the texture's middle colour, which only the ink-only
  rendering below replaces.
  """
  sprite: sa.ClipParams
  backdrop: Backdrop

  @property
  def num_frames(self) -> int:
    return self.sprite.num_frames


def _wobble(rng, num_frames: int, amplitude: float) -> np.ndarray:
  """[T] a smooth wiggle within +-amplitude: two sines of 15-60 frame periods."""
  t = np.arange(num_frames)
  freq, phase = 1 / rng.uniform(15, 60, size=2), rng.uniform(0, 2 * np.pi, size=2)
  return amplitude * np.sin(2 * np.pi * freq[:, None] * t + phase[:, None]).mean(axis=0)


class Sprite:
  """The sprite's continuous state, stepped one frame at a time.

  Idle, the centre's velocity decays, takes random kicks and is pulled to the
  middle; an action's `step` fixes the velocity along one axis (`move`), or
  ramps the log scale or the angle, while everything else keeps idling.
  Scale, angle and opacity wobble on top (`params`), actions or not.
  """

  def __init__(self, rng, num_frames: int, size: int, base: float):
    self.size, self.base, self.unit = size, base, size / 64
    self.log_set = rng.uniform(np.log(0.8), np.log(1.25))  # Scale, less its wobble.
    self.angle_set = rng.uniform(-20, 20)
    self.pos = sa.centre_in_frame(rng, size, self.margin())
    self.vel = np.zeros(2)
    self.kicks = rng.normal(0, IDLE_KICK * self.unit, size=(num_frames, 2))
    self.centre = np.empty((num_frames, 2))
    self.log_scale = np.empty(num_frames)
    self.angle = np.empty(num_frames)
    self.t = 0

  def margin(self) -> float:
    """Centre-to-edge distance that keeps the ink inside at the widest wobble."""
    return sa.INK_HALF_EXTENT * self.base * np.exp(self.log_set + SCALE_WOBBLE)

  def step(self, frames: int, move=None, log_rate: float = 0.0, turn: float = 0.0) -> None:
    """Idles for `frames`, except along `move` = (axis, px/frame) and by the given rates."""
    middle = self.size / 2
    for _ in range(frames):
      self.vel = IDLE_DAMPING * self.vel + self.kicks[self.t] + IDLE_PULL * (middle - self.pos)
      delta = self.vel.copy()
      if move is not None:
        delta[move[0]] = move[1]
      self.log_set += log_rate
      self.angle_set += turn
      m = self.margin()
      pos = np.clip(self.pos + delta, m, self.size - m)
      self.vel[pos != self.pos + delta] *= -1  # Bounce off the margin.
      self.pos = pos
      self.centre[self.t], self.log_scale[self.t] = pos, self.log_set
      self.angle[self.t] = self.angle_set
      self.t += 1

  def params(self, rng, background: np.ndarray, colour: np.ndarray, digit_label: np.ndarray,
             digit_instance: np.ndarray) -> sa.ClipParams:
    """The stepped states with their wobble, as `render_from_params` takes them."""
    n = self.t
    scale = self.base * np.exp(self.log_scale[:n] + _wobble(rng, n, SCALE_WOBBLE))
    angle = self.angle[:n] + _wobble(rng, n, ANGLE_WOBBLE)
    alpha = np.clip(0.9 + _wobble(rng, n, ALPHA_WOBBLE), 0, 1)
    return sa.ClipParams(-1, self.size, background, colour, digit_label, digit_instance,
                         self.centre[:n], scale, angle, alpha)


def _texture_colours(rng, middle: np.ndarray, ink: np.ndarray) -> np.ndarray:
  """[2, 3]: two colours either side of `middle`, both far from `ink` in luma."""
  for _ in range(100):
    delta = rng.normal(size=3)
    delta *= rng.uniform(*TEXTURE_SPREAD) / np.linalg.norm(delta)
    ends = np.clip(middle + np.stack([delta, -delta]), 0, 255)
    if np.all(np.abs(ends @ _LUMA - ink @ _LUMA) >= MIN_INK_CONTRAST):
      return ends
  return np.stack([middle, middle])  # A flat background rather than an illegible sprite.


def _drift(rng, num_frames: int, unit: float) -> np.ndarray:
  """[T, 2] pan velocity: constant spells in random directions, eased between."""
  spells = []
  while sum(len(s) for s in spells) < num_frames:
    speed, heading = rng.uniform(*DRIFT_SPEED) * unit, rng.uniform(0, 2 * np.pi)
    velocity = speed * np.array([np.cos(heading), np.sin(heading)])
    spells.append(np.tile(velocity, (rng.integers(*DRIFT_SPELL), 1)))
  velocity = np.concatenate(spells)[:num_frames]
  padded = np.pad(velocity, ((DRIFT_EASE // 2, DRIFT_EASE // 2), (0, 0)), mode='edge')
  kernel = np.ones(DRIFT_EASE + 1) / (DRIFT_EASE + 1)
  return np.stack([np.convolve(padded[:, a], kernel, mode='valid') for a in (0, 1)], axis=1)


def sample_backdrop(rng, num_frames: int, size: int, middle: np.ndarray,
                    ink: np.ndarray) -> Backdrop:
  """A texture about twice the frame, low in contrast next to the `ink` colour, and its pan."""
  unit = size / 64
  n = 2 * size
  noise = rng.standard_normal((n, n))
  smooth = ndimage.gaussian_filter(noise, sigma=rng.uniform(3, 6) * unit, mode='wrap')
  texture = ((smooth - smooth.min()) / (np.ptp(smooth) + 1e-12)).astype(np.float32)
  colours = _texture_colours(rng, middle, ink)
  offset = rng.uniform(0, n, size=2) + np.cumsum(_drift(rng, num_frames, unit), axis=0)
  return Backdrop(texture, colours, offset)


def render_backdrop(backdrop: Backdrop, size: int, start: int = 0,
                    stop: int | None = None) -> np.ndarray:
  """float32 [T, H, W, 3] in 0..255: frames start..stop of the texture alone.

  Bilinear sampling of the periodic texture, so sub-pixel pans are smooth.
  """
  offset = backdrop.offset[start:stop]  # [T, 2]
  n = backdrop.texture.shape[0]
  whole = np.floor(offset).astype(np.int64)
  fx, fy = (offset - whole).astype(np.float32).T  # [T] each
  cols = (whole[:, :1] + np.arange(size + 1)) % n  # [T, W + 1]
  rows = (whole[:, 1:] + np.arange(size + 1)) % n  # [T, H + 1]
  patch = backdrop.texture[rows[:, :, None], cols[:, None, :]]  # [T, H + 1, W + 1]
  fx, fy = fx[:, None, None], fy[:, None, None]
  value = ((1 - fy) * ((1 - fx) * patch[:, :-1, :-1] + fx * patch[:, :-1, 1:])
           + fy * ((1 - fx) * patch[:, 1:, :-1] + fx * patch[:, 1:, 1:]))  # [T, H, W]
  low, high = backdrop.colours.astype(np.float32)
  return low + (high - low) * value[..., None]


def render_video(video: VideoParams, digits: np.ndarray, chunk: int = 256) -> np.ndarray:
  """uint8 [T, H, W, 3]; frame t depends on the frame-t parameters only.

  `digits` is float [10, N, 28, 28] (`sa.load_digits`). The blend runs in
  chunks of `chunk` frames, so a 2,000-frame video needs tens of MB, not hundreds.
  """
  size = video.sprite.size
  ink_only = dataclasses.replace(video.sprite, background=np.zeros(3),
                                 colour=np.full(3, 255.0))
  coverage = sa.render_from_params(ink_only, digits)[..., :1]  # [T, H, W, 1] 255 * ink * alpha
  colour = video.sprite.colour.astype(np.float32)
  frames = np.empty((video.num_frames, size, size, 3), np.uint8)
  for start in range(0, video.num_frames, chunk):
    stop = min(start + chunk, video.num_frames)
    ink = coverage[start:stop].astype(np.float32) / 255
    back = render_backdrop(video.backdrop, size, start, stop)
    frames[start:stop] = np.clip(np.rint(back * (1 - ink) + colour * ink), 0, 255)
  return frames
