"""Video denoisers with one interface: a window of noisy frames -> the clean centre frame.

Every model here is called as

  model.apply(params, noisy, noise_map, train=bool, rngs=...)
  noisy      # [B, T, H, W, 3] float32 in [0, 1] plus noise (not clipped), T = model.window
  noise_map  # [B, H, W, 1] float32, sigma / 255 per pixel; zeros in blind mode

and returns {'denoised': [B, H, W, 3] float32 (the centre frame, index T // 2),
'kl': [B] float32 (the VAE's KL term; zeros for the others)}. H and W must be
divisible by 4 (two 2x downsamplings); the task pads frames to fit.

- `FastDVDNet`: Tassano et al. 2020's two-stage multi-frame U-Net, the strong
  model. With `single_frame=True` it is the same network (same parameter tree)
  fed the centre frame in every input slot, so only temporal information is
  removed: the value of time is measured, not assumed.
- `DenoisingVAE`: a convolutional VAE over the window; `elbo_loss` is its loss.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from vidjax.models import frame_align

ALIGN_MODES = ('none', 'translation')
_he = nn.initializers.he_normal()  # FastDVDnet's init (Kaiming, fan-in): keeps ReLU stacks' scale.


def pixel_shuffle(x, r: int = 2):
  """[N, H, W, C*r*r] -> [N, H*r, W*r, C] (depth to space; channel order (i, j, c))."""
  n, h, w, c = x.shape
  x = x.reshape(n, h, w, r, r, c // (r * r)).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h * r, w * r, c // (r * r))


def _check_input(noisy, noise_map, window: int):
  if noisy.ndim != 5 or noisy.shape[1] != window or noisy.shape[-1] != 3:
    raise ValueError(f'noisy must be [B, {window}, H, W, 3], got {noisy.shape}')
  b, _, h, w, _ = noisy.shape
  if h % 4 or w % 4:
    raise ValueError(f'H and W must be divisible by 4 (pad the frames), got {h}x{w}')
  if noise_map.shape != (b, h, w, 1):
    raise ValueError(f'noise_map must be [B, H, W, 1] = {(b, h, w, 1)}, got {noise_map.shape}')


class GroupedConv(nn.Module):
  """A 'SAME' conv with `groups` feature groups, run as a dense conv with a block-diagonal kernel.

  Parameters and result are those of nn.Conv(feature_group_count=groups), but
  XLA:CPU differentiates a grouped conv's kernel ~25x slower than a dense conv
  `groups` times its size, which would dominate FastDVDnet's step.
  """
  features: int
  groups: int
  use_bias: bool = True
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):  # [N, H, W, C_in] -> [N, H, W, features]
    cin, cout, g = x.shape[-1], self.features, self.groups
    kernel = self.param('kernel', _he, (3, 3, cin // g, cout), self.param_dtype)
    block = jnp.arange(cin)[:, None] // (cin // g) == jnp.arange(cout)[None, :] // (cout // g)
    kernel = jnp.tile(kernel, (1, 1, g, 1)) * block  # [3, 3, C_in, C_out], zero off the blocks
    y = jax.lax.conv_general_dilated(x.astype(self.dtype), kernel.astype(self.dtype), (1, 1),
                                     'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (cout,), self.param_dtype).astype(self.dtype)
    return y


class ConvAct(nn.Module):
  """3x3 conv -> optional GroupNorm -> ReLU, the unit every FastDVDnet block is made of.

  FastDVDnet uses BatchNorm here. It is replaced because batch statistics
  would make the train step carry a mutable `batch_stats` collection that the
  loop, its checkpoints and its exact resume do not have, and FastDVDnet's BN
  is close to an affine identity at test time anyway. `norm='group'` is
  GroupNorm (batch-independent; it trains faster here); `norm='none'` keeps
  conv biases instead.
  """
  features: int
  strides: int = 1
  groups: int = 1  # feature_group_count: FastDVDnet's first conv sees each frame apart.
  norm: str = 'group'  # group | none
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    if self.groups > 1:
      x = GroupedConv(self.features, self.groups, self.norm == 'none', self.dtype,
                      self.param_dtype, name='conv')(x)
    else:
      x = nn.Conv(self.features, (3, 3), strides=self.strides, use_bias=self.norm == 'none',
                  kernel_init=_he, dtype=self.dtype, param_dtype=self.param_dtype, name='conv')(x)
    if self.norm == 'group':
      # The largest group count <= 8 dividing the width: 90 (3 x 30) -> 6, never straddling frames.
      groups = max(g for g in range(1, 9) if self.features % g == 0)
      x = nn.GroupNorm(num_groups=groups, dtype=self.dtype, param_dtype=self.param_dtype,
                       name='norm')(x)
    elif self.norm != 'none':
      raise ValueError(f"norm must be 'none' or 'group', got '{self.norm}'")
    return nn.relu(x)


class DenBlock(nn.Module):
  """FastDVDnet's denoising block: a 3-level U-Net on 3 frames -> the middle frame.

  Input block (a conv grouped per frame, each frame with the noise map, to
  `interm` channels a frame, then a conv to features[0]); two down blocks
  (stride-2 conv + 2 convs); two up blocks (2 convs + conv to 4x the next
  width + pixel shuffle), skips added, not concatenated; an output block
  (conv + ReLU + conv to 3). It predicts the noise: out = middle - net(...).
  """
  features: Sequence[int] = (32, 64, 128)
  interm: int = 30
  norm: str = 'group'
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, frames, noise_map):  # [N, 3, H, W, 3], [N, H, W, 1] -> [N, H, W, 3]
    f0, f1, f2 = self.features
    unit = lambda c, name, **kw: ConvAct(c, norm=self.norm, dtype=self.dtype,  # noqa: E731
                                         param_dtype=self.param_dtype, name=name, **kw)
    n = frames.shape[1]
    x = jnp.concatenate([jnp.concatenate([frames[:, i], noise_map], -1) for i in range(n)], -1)
    x = x.astype(self.dtype)  # [N, H, W, 3 * (3 + 1)]: frame i and the map form group i.
    x0 = unit(f0, 'in_1')(unit(n * self.interm, 'in_0', groups=n)(x))  # [N, H, W, f0]
    x1 = unit(f1, 'down0_2')(unit(f1, 'down0_1')(unit(f1, 'down0_0', strides=2)(x0)))  # H/2
    x2 = unit(f2, 'down1_2')(unit(f2, 'down1_1')(unit(f2, 'down1_0', strides=2)(x1)))  # H/4
    conv = lambda c, name, init=_he: nn.Conv(c, (3, 3), kernel_init=init,  # noqa: E731
                                             dtype=self.dtype, param_dtype=self.param_dtype,
                                             name=name)
    x2 = pixel_shuffle(conv(4 * f1, 'up2_2')(unit(f2, 'up2_1')(unit(f2, 'up2_0')(x2))))  # H/2
    x1 = pixel_shuffle(conv(4 * f0, 'up1_2')(unit(f1, 'up1_1')(unit(f1, 'up1_0')(x1 + x2))))  # H
    # Zero-initialised: the block starts as the identity on its middle frame. Without
    # BatchNorm, a Kaiming-initialised last conv predicts noise far larger than the real
    # noise (6.6 dB PSNR at sigma 30) and Adam needs hundreds of steps just to undo it.
    noise = conv(3, 'out_1', nn.initializers.zeros)(unit(f0, 'out_0')(x0 + x1))  # [N, H, W, 3]
    return frames[:, n // 2] - noise.astype(jnp.float32)


class FastDVDNet(nn.Module):
  """FastDVDnet (Tassano, Delon, Veit, CVPR 2020) on 5 frames, without BatchNorm.

  Stage 1, one DenBlock with shared weights (`stage1`), denoises the triplets
  (0, 1, 2), (1, 2, 3), (2, 3, 4); stage 2 (`stage2`) fuses the three results
  into the centre frame. The noise map joins every frame at both stages.
  There is no motion compensation (the U-Nets learn to align implicitly)
  unless `align='translation'`: each frame is first shifted by whole pixels
  onto the centre frame (frame_align.py), DVDnet's warping reduced to one
  global translation, so the U-Nets learn only the motion it leaves.

  `single_frame=True` is the twin that measures the value of time: every
  input slot holds the centre frame, so architecture and parameters are the
  same and only the neighbouring frames are withheld. Its three stage-1
  triplets are then identical, so stage 1 runs once and its output is
  repeated (the same result, a third of the cost).

  The original is features=(32, 64, 128), interm=30 (2,477,642 parameters
  here with norm='none', as the original's convs less its BatchNorm);
  `fastdvdnet_default_config()` is a CPU-sized variant.
  """
  features: Sequence[int] = (32, 64, 128)
  interm: int = 30  # Channels per frame after the grouped input conv.
  norm: str = 'group'  # group | none (see ConvAct for why not BatchNorm).
  single_frame: bool = False
  align: str = 'none'  # none | translation: neighbours shifted onto the centre first (frame_align).
  max_shift: int = 8  # translation: the largest shift searched, in pixels per axis.
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  remat: bool = False

  window = 5  # Frames in, a class constant: two stages of triplets need exactly 5.

  @nn.compact
  def __call__(self, noisy, noise_map, *, train: bool = False):
    del train  # No dropout, no batch statistics: train and eval are the same function.
    _check_input(noisy, noise_map, self.window)
    if self.align not in ALIGN_MODES:
      raise ValueError(f"align must be one of {', '.join(ALIGN_MODES)}, got '{self.align}'")
    if self.align == 'translation' and not self.single_frame:
      noisy = frame_align.align_to_centre(noisy, self.max_shift)
    b = noisy.shape[0]
    block = nn.remat(DenBlock) if self.remat else DenBlock
    stage1 = block(self.features, self.interm, self.norm, self.dtype, self.param_dtype,
                   name='stage1')
    stage2 = block(self.features, self.interm, self.norm, self.dtype, self.param_dtype,
                   name='stage2')
    if self.single_frame:
      centre = jnp.repeat(noisy[:, 2:3], 3, axis=1)  # [B, 3, H, W, 3]
      mid = jnp.repeat(stage1(centre, noise_map)[:, None], 3, axis=1)  # [B, 3, H, W, 3]
    else:
      # The three triplets folded into the batch: one call, one set of weights.
      triplets = jnp.concatenate([noisy[:, i:i + 3] for i in range(3)], 0)  # [3B, 3, H, W, 3]
      mid = stage1(triplets, jnp.tile(noise_map, (3, 1, 1, 1)))  # [3B, H, W, 3]
      mid = mid.reshape(3, b, *mid.shape[1:]).swapaxes(0, 1)  # [B, 3, H, W, 3]
    denoised = stage2(mid, noise_map)  # [B, H, W, 3]
    return {'denoised': denoised.astype(jnp.float32), 'kl': jnp.zeros((b,), jnp.float32)}


class DenoisingVAE(nn.Module):
  """A convolutional VAE that denoises: q(z | noisy window), p(clean centre | z).

  Encoder: the window's frames and the noise map concatenated on channels
  [B, H, W, 3T + 1] -> two stride-2 conv stages -> the mean and log-variance
  of a spatial latent z [B, H/4, W/4, latent_features]. z is sampled by
  reparameterisation in training (rng stream 'dropout', which the loop
  provides) and is the mean at evaluation. Decoder: convs and two pixel-shuffle
  upsamplings from z alone to the clean centre frame.

  It predicts the clean frame directly, not a residual on the noisy centre:
  the decoder sees only z, and a residual would need z to carry the per-pixel
  noise, which a 1/4-resolution bottleneck cannot.

  Loss (`elbo_loss`): MSE(denoised, clean) + beta * kl / (H * W * 3), the
  negative ELBO per pixel with a Gaussian likelihood of fixed variance s^2,
  scaled by 2 s^2; beta = 2 s^2 is the exact ELBO, smaller beta weights the
  KL term down (beta-VAE). 'kl' is KL(q(z|x) || N(0, I)) summed over latent
  elements, per example [B].
  """
  window: int = 5
  features: Sequence[int] = (32, 64, 64)  # Full, 1/2 and 1/4 resolution.
  latent_features: int = 16
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, noisy, noise_map, *, train: bool = False):
    _check_input(noisy, noise_map, self.window)
    b, t, h, w, c = noisy.shape
    f0, f1, f2 = self.features
    conv = lambda f, name, s=1, k=3: nn.Conv(  # noqa: E731
        f, (k, k), strides=s, kernel_init=_he, dtype=self.dtype, param_dtype=self.param_dtype,
        name=name)
    x = jnp.concatenate([noisy.transpose(0, 2, 3, 1, 4).reshape(b, h, w, t * c), noise_map], -1)
    x = x.astype(self.dtype)  # [B, H, W, 3T + 1]
    x = nn.relu(conv(f0, 'enc0_1')(nn.relu(conv(f0, 'enc0_0')(x))))  # [B, H, W, f0]
    x = nn.relu(conv(f1, 'enc1_1')(nn.relu(conv(f1, 'enc1_0', 2)(x))))  # [B, H/2, W/2, f1]
    x = nn.relu(conv(f2, 'enc2_1')(nn.relu(conv(f2, 'enc2_0', 2)(x))))  # [B, H/4, W/4, f2]
    stats = conv(2 * self.latent_features, 'latent', k=1)(x).astype(jnp.float32)
    mean, logvar = jnp.split(stats, 2, axis=-1)  # [B, H/4, W/4, L] each
    logvar = jnp.clip(logvar, -10.0, 10.0)  # exp() stays finite early in training.
    kl = 0.5 * jnp.sum(mean ** 2 + jnp.exp(logvar) - 1.0 - logvar, axis=(1, 2, 3))  # [B]
    z = mean
    if train:
      z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(self.make_rng('dropout'), mean.shape)
    y = nn.relu(conv(f2, 'dec2_1')(nn.relu(conv(f2, 'dec2_0')(z.astype(self.dtype)))))
    y = nn.relu(pixel_shuffle(conv(4 * f1, 'dec2_up')(y)))  # [B, H/2, W/2, f1]
    y = nn.relu(conv(f1, 'dec1_0')(y))
    y = nn.relu(pixel_shuffle(conv(4 * f0, 'dec1_up')(y)))  # [B, H, W, f0]
    y = conv(3, 'out')(nn.relu(conv(f0, 'dec0_0')(y)))  # [B, H, W, 3]
    return {'denoised': y.astype(jnp.float32), 'kl': kl}


def elbo_loss(denoised, clean, kl, beta: float):
  """MSE(denoised, clean) + beta * mean(kl) / (H * W * 3): see DenoisingVAE. Scalar."""
  pixels = math.prod(clean.shape[1:])  # H * W * 3
  mse = jnp.mean((denoised.astype(jnp.float32) - clean.astype(jnp.float32)) ** 2)
  return mse + beta * jnp.mean(kl) / pixels


def fastdvdnet_default_config() -> ml_collections.ConfigDict:
  """`config.model.fastdvdnet`: FastDVDnet at a quarter of its widths, sized for CPU.

  The paper's model is features=(32, 64, 128), interm=30.
  """
  return ml_collections.ConfigDict(dict(
      features=(16, 32, 64),
      interm=8,
      # GroupNorm: 28.5 / 29.7 dB after 300 / 600 steps vs 27.4 / 28.4 without (photos with
      # camera motion, sigma 30, batch 8 x 64x64), for ~20% more time a step.
      norm='group',
      single_frame=False,  # True: the single-frame twin (centre frame in every slot).
      align='none',  # none (the paper's) | translation (frame_align: global whole-pixel shifts).
      max_shift=8,
  ))


def denoising_vae_default_config() -> ml_collections.ConfigDict:
  """`config.model.denoising_vae`: a small conv VAE over 5 frames, latent at 1/4 resolution."""
  return ml_collections.ConfigDict(dict(
      window=5,
      features=(32, 64, 64),
      latent_features=16,
  ))
