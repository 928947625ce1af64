"""Video denoising: noisy frames -> the clean centre frame, scored as FastDVDnet and RVRT do.

A model reads a window of `data.num_frames` (5) noisy frames and the noise
level as a map (`noise_map`, sigma / 255 per pixel; zeros in blind mode) and
returns the clean centre frame (vidjax/models/denoisers.py). Training crops
`data.height x data.width` patches out of clean videos (`data.train_crop =
'random'`) and adds the noise on the device, inside the pure loss, from the
step's key: a new draw every step, never stored. Evaluation
(denoising_eval.py) adds the protocol's fixed, seeded noise to every frame of
every test sequence at each sigma and reports PSNR and SSIM per frame,
averaged per sequence, then over sequences (vidjax/metrics/restoration.py).

Units: frames in [0, 1]; sigma on the 0-255 scale; noisy input not clipped
(FastDVDnet's protocol), the output clipped to [0, 1] before scoring.
"""
from __future__ import annotations

import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import ml_collections

from vidjax import parallel
from vidjax.data import pipeline, registry
from vidjax.data.records import NoTargets
from vidjax.errors import UserError
from vidjax.metrics import restoration
from vidjax.models import build_denoiser
from vidjax.models.denoisers import ALIGN_MODES, elbo_loss
from vidjax.tasks import denoising_eval, denoising_report

NOISE_MODELS = ('gaussian', 'poisson_gaussian')


def default_config() -> ml_collections.ConfigDict:
  """`config.denoise`: the noise, the protocol's sigmas, the VAE's KL weight, predict's options."""
  return ml_collections.ConfigDict(dict(
      noise='gaussian',  # gaussian (AWGN) | poisson_gaussian (variance a * x + b).
      train_sigma=(5.0, 55.0),  # Training draws sigma (0-255 scale) uniformly in this range.
      eval_sigmas=(10, 20, 30, 40, 50),  # The protocol's sigmas, final evaluation.
      periodic_sigmas=(30,),  # Evaluated every train.eval_every steps (and early stopping).
      blind=False,  # True: the model never sees the noise level (its noise map is zeros).
      poisson_a=0.01,  # poisson_gaussian: signal-dependent variance, per unit intensity.
      poisson_b=0.0004,  # poisson_gaussian: constant variance (0.02**2: sigma 5.1 / 255).
      # ELBO: the KL term's weight (denoising_vae only); 2 s^2 is the exact ELBO of a Gaussian
      # likelihood of std s (models/denoisers.py). 1.0 let the KL win: 17 dB, under the noisy input.
      vae_beta=1e-3,
      eval_max_frames=0,  # Frames of each evaluated sequence, from its start; 0 = all.
      add_noise_sigma=0.0,  # --mode predict: add this much AWGN to the (clean) video first.
      predict_sigma=0.0,  # --mode predict: the input's noise level, for the noise map; 0 = add_noise_sigma.
  ))


# ----------------------------------------------------------------------------
# Pure pieces.
# ----------------------------------------------------------------------------

def to_unit(video):
  """uint8 [..., H, W, C] -> float32 in [0, 1]."""
  return video.astype(jnp.float32) / 255.0


def noise_map_like(frames, sigma_255, blind: bool):
  """[B] sigmas -> the model's noise map [B, H, W, 1] (zeros when blind)."""
  b, h, w = frames.shape[0], frames.shape[-3], frames.shape[-2]
  level = jnp.zeros((b,)) if blind else jnp.asarray(sigma_255, jnp.float32) / 255.0
  return jnp.broadcast_to(level[:, None, None, None], (b, h, w, 1)).astype(jnp.float32)


def noisy_training_input(clean, key, *, noise: str, train_sigma, poisson_a: float,
                         poisson_b: float):
  """(noisy [B, T, H, W, C], sigma [B] on the 0-255 scale) for a clean batch in [0, 1].

  Gaussian: each clip's sigma uniform in `train_sigma`, FastDVDnet's training.
  Poisson-Gaussian: the map carries each clip's mean noise std instead.
  """
  sigma_key, noise_key = jax.random.split(key)
  b = clean.shape[0]
  if noise == 'gaussian':
    low, high = train_sigma
    sigma = jax.random.uniform(sigma_key, (b,), minval=low, maxval=high)
    std = sigma[:, None, None, None, None] / 255.0
    return clean + std * jax.random.normal(noise_key, clean.shape), sigma
  del sigma_key
  noisy = restoration.add_poisson_gaussian_noise(clean, poisson_a, poisson_b, noise_key)
  sigma = 255.0 * jnp.sqrt(poisson_a * clean.mean(axis=(1, 2, 3, 4)) + poisson_b)
  return noisy, sigma


def loss(params, batch: dict, dropout_key, *, model, noise: str, train_sigma, poisson_a: float,
         poisson_b: float, blind: bool, vae_beta: float):
  """(ELBO or MSE of the centre frame, {'psnr', 'kl'}); pure: the noise comes from the key."""
  clean = to_unit(batch['video'])  # [B, T, H, W, C]
  noise_key, model_key = jax.random.split(dropout_key)
  noisy, sigma = noisy_training_input(clean, noise_key, noise=noise, train_sigma=train_sigma,
                                      poisson_a=poisson_a, poisson_b=poisson_b)
  out = model.apply(params, noisy, noise_map_like(noisy, sigma, blind), train=True,
                    rngs={'dropout': model_key})
  target = clean[:, clean.shape[1] // 2]  # [B, H, W, C]
  value = elbo_loss(out['denoised'], target, out['kl'], vae_beta)
  psnr = restoration.psnr(target, jnp.clip(out['denoised'], 0.0, 1.0)).mean()
  return value, {'psnr': psnr, 'kl': out['kl'].mean()}


def denoise_step(params, noisy, noise_map, *, model):
  """The clean centre frames [B, H, W, C] of noisy windows [B, T, H, W, C], clipped to [0, 1]."""
  out = model.apply(params, noisy, noise_map, train=False)
  return jnp.clip(out['denoised'], 0.0, 1.0)


def model_meta(config: ml_collections.ConfigDict) -> dict:
  """What must match for a checkpoint to be resumed or used."""
  return {'model': json.loads(config.model.to_json()), 'num_frames': config.data.num_frames,
          'blind': bool(config.denoise.blind), 'noise': config.denoise.noise}


# ----------------------------------------------------------------------------
# The task.
# ----------------------------------------------------------------------------

class Denoising:
  """`config.task = 'denoising'`: see vidjax/tasks/__init__.py for the protocol."""
  name = 'denoising'
  # The eval split at `denoise.periodic_sigmas` only, while training (and for early stopping);
  # the final splits at every sigma of `denoise.eval_sigmas`.
  periodic_split = 'eval_periodic'
  final_splits = ('eval', 'test')

  def __init__(self, config: ml_collections.ConfigDict):
    data, denoise = config.data, config.denoise
    if denoise.noise not in NOISE_MODELS:
      raise UserError(f"denoise.noise is '{denoise.noise}'; use one of {', '.join(NOISE_MODELS)}")
    if data.num_frames % 2 == 0:
      raise UserError(f'data.num_frames must be odd (a centre frame), got {data.num_frames}')
    if data.height % 4 or data.width % 4:
      raise UserError(f'data.height and data.width must be multiples of 4 (two 2x '
                      f'downsamplings), got {data.height}x{data.width}')
    align = config.model.fastdvdnet.get('align', 'none') if 'fastdvdnet' in config.model else 'none'
    if config.model.name == 'fastdvdnet' and align not in ALIGN_MODES:
      raise UserError(f"model.fastdvdnet.align is '{align}'; use one of {', '.join(ALIGN_MODES)}")
    low, high = denoise.train_sigma
    if not 0 <= low <= high:
      raise UserError(f'denoise.train_sigma must be (low, high) with 0 <= low <= high, '
                      f'got {tuple(denoise.train_sigma)}')
    self.config = config
    self.input_shape = (data.num_frames, data.height, data.width, 3)
    self.apply_kwargs = {'noise_map': jnp.zeros((1, data.height, data.width, 1), jnp.float32)}
    self.split_names = {'eval_periodic': data.eval_split, 'eval': data.eval_split,
                        'test': data.test_split}
    self.class_names: list[str] = []
    self.train_failures: pipeline.FailureCounter | None = None
    self._sets: dict[str, registry.Split] = {}

  # Input.
  def train_iterator(self, batch_size: int):
    data, seed = self.config.data, self.config.seed
    train_set = registry.load_split(data, data.train_split, seed)
    self._split('eval')  # A missing eval split fails now, not after training.
    self.train_failures = pipeline.FailureCounter('train', data.max_failed_fraction)
    return iter(pipeline.train_dataset(
        train_set.records, data, batch_size=batch_size, seed=seed, failures=self.train_failures,
        targets=NoTargets(), process_index=jax.process_index(),
        process_count=jax.process_count()))

  def _split(self, name: str) -> registry.Split:
    split = self.split_names[name]  # 'eval' and 'eval_periodic' read the same split.
    if split not in self._sets:
      found = registry.load_split(self.config.data, split, self.config.seed)
      if not found.records:
        raise UserError(f"the '{split}' split of {self.config.data.dataset} has no sequences")
      self._sets[split] = found
    return self._sets[split]

  # Model.
  def meta(self, saved: dict | None = None) -> dict:
    del saved
    return model_meta(self.config)

  def build_model(self, meta: dict):
    del meta
    return build_denoiser(self.config.model)

  def summary_model(self, num_classes: int | None = None):
    del num_classes
    return build_denoiser(self.config.model)

  def on_start(self, workdir: pathlib.Path) -> None:
    del workdir

  # Update.
  def loss_fn(self, model):
    d = self.config.denoise
    return functools.partial(loss, model=model, noise=d.noise, train_sigma=tuple(d.train_sigma),
                             poisson_a=d.poisson_a, poisson_b=d.poisson_b, blind=d.blind,
                             vae_beta=d.vae_beta)

  def describe_train(self, summary: dict) -> str:
    kl = f", KL {summary['kl']:.1f}" if summary.get('kl') else ''
    return f"loss {summary['loss']:.5f}, PSNR {summary['psnr']:.2f} dB{kl}"

  # Evaluation.
  def evaluator(self, model, mesh, params_sharding=None):
    """evaluate(params, split): PSNR / SSIM per sigma (see `periodic_split`)."""
    batch_sharding = parallel.batch_sharding(mesh)
    shardings = None
    if params_sharding is not None:
      shardings = (params_sharding, batch_sharding, batch_sharding)
    step = jax.jit(functools.partial(denoise_step, model=model), in_shardings=shardings,
                   out_shardings=batch_sharding)

    def evaluate(params, split: str) -> dict:
      d = self.config.denoise
      sigmas = d.periodic_sigmas if split == self.periodic_split else d.eval_sigmas
      return denoising_eval.evaluate_sequences(
          step, params, self._split(split).records, self.config, mesh, sigmas=tuple(sigmas),
          split=split)
    return evaluate

  def eval_scalars(self, split: str, result: dict) -> dict:
    scalars = {f'{split}/loss': result['loss']}
    for sigma, r in result['sigmas'].items():
      scalars[f'{split}/psnr_sigma{sigma}'] = r['psnr']
      scalars[f'{split}/ssim_sigma{sigma}'] = r['ssim']
    return scalars

  def describe_eval(self, result: dict) -> str:
    parts = [f"sigma {s}: PSNR {r['psnr']:.2f} dB (noisy {r['noisy_psnr']:.2f}), SSIM {r['ssim']:.4f}"
             for s, r in result['sigmas'].items()]
    return '; '.join(parts) + f" ({result['num_sequences']} sequences)"

  def selection_metric(self, result: dict) -> float:
    return result['loss']

  # Report.
  def report(self, workdir: pathlib.Path, final: dict, *, evaluate, params, history_path):
    del evaluate, params
    failed = len(self.train_failures.failed) if self.train_failures is not None else 0
    return denoising_report.write_report(workdir, final, self.config, history_path, failed)

  # Using a trained model.
  def evaluate_rows(self, results: dict) -> list:
    return denoising_report.summary_rows(results, self.split_names)

  def evaluation_fields(self, results: dict) -> dict:
    return denoising_report.results_fields(results, self.split_names)

  def predict(self, paths: list[str], restore, workdir: pathlib.Path) -> list:
    return denoising_report.predict(paths, restore, pathlib.Path(workdir), self.config,
                                    denoise_step)

