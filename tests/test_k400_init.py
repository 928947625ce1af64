"""The K400 configs start from the published ImageNet ViT-B/16 files: checked on their exact shapes.

The arrays are zero-stride views of the published names and shapes (no 344 MB
download, no memory): what is checked is that every parameter of the paper's
model finds its place, and how, not the numbers (tests/test_vit_import.py).
"""
import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidjax import config as config_lib
from vidjax import tasks
from vidjax.pretrained import converters, init_from, mapping

D, HEADS, MLP, DEPTH = 768, 12, 3072, 12


def _timm_vit_b16(num_classes=1000):
  """timm's jx_vit_base_p16_224-80ecf9dd.pth, the file the official TimeSformer loads."""
  shapes = {'cls_token': (1, 1, D), 'pos_embed': (1, 197, D), 'patch_embed.proj.weight': (D, 3, 16, 16),
            'patch_embed.proj.bias': (D,), 'norm.weight': (D,), 'norm.bias': (D,),
            'head.weight': (num_classes, D), 'head.bias': (num_classes,)}
  for i in range(DEPTH):
    shapes.update({f'blocks.{i}.{k}': s for k, s in {
        'norm1.weight': (D,), 'norm1.bias': (D,), 'attn.qkv.weight': (3 * D, D),
        'attn.qkv.bias': (3 * D,), 'attn.proj.weight': (D, D), 'attn.proj.bias': (D,),
        'norm2.weight': (D,), 'norm2.bias': (D,), 'mlp.fc1.weight': (MLP, D), 'mlp.fc1.bias': (MLP,),
        'mlp.fc2.weight': (D, MLP), 'mlp.fc2.bias': (D,)}.items()})
  return shapes


def _vit_paper_b16():
  """The ViT paper's imagenet21k/ViT-B_16.npz, which scenic's ViViT starts from."""
  shapes = {'cls': (1, 1, D), 'embedding/kernel': (16, 16, 3, D), 'embedding/bias': (D,),
            'Transformer/posembed_input/pos_embedding': (1, 197, D),
            'Transformer/encoder_norm/scale': (D,), 'Transformer/encoder_norm/bias': (D,),
            'pre_logits/kernel': (D, D), 'pre_logits/bias': (D,),
            'head/kernel': (D, 21843), 'head/bias': (21843,)}
  for i in range(DEPTH):
    block = f'Transformer/encoderblock_{i}'
    for norm in ('LayerNorm_0', 'LayerNorm_2'):
      shapes.update({f'{block}/{norm}/scale': (D,), f'{block}/{norm}/bias': (D,)})
    shapes.update({f'{block}/MlpBlock_3/Dense_0/kernel': (D, MLP), f'{block}/MlpBlock_3/Dense_0/bias': (MLP,),
                   f'{block}/MlpBlock_3/Dense_1/kernel': (MLP, D), f'{block}/MlpBlock_3/Dense_1/bias': (D,),
                   f'{block}/MultiHeadDotProductAttention_1/out/kernel': (HEADS, D // HEADS, D),
                   f'{block}/MultiHeadDotProductAttention_1/out/bias': (D,)})
    for p in ('query', 'key', 'value'):
      shapes.update({f'{block}/MultiHeadDotProductAttention_1/{p}/kernel': (D, HEADS, D // HEADS),
                     f'{block}/MultiHeadDotProductAttention_1/{p}/bias': (HEADS, D // HEADS)})
  return shapes


@pytest.mark.parametrize('name,published,shapes,inflated', [
    ('timesformer_divst_k400', 'jx_vit_base_p16_224-80ecf9dd.pth', _timm_vit_b16, 6 * DEPTH),
    ('vivit_b_fe_k400', 'ViT-B_16.npz', _vit_paper_b16, 1),
    ('vivit_b_k400', 'ViT-B_16.npz', _vit_paper_b16, 2),  # + the embedding tiled on 16 frames.
])
def test_k400_config_takes_the_published_vit(name, published, shapes, inflated):
  config = config_lib.load(f'configs/{name}.py')
  assert pathlib.Path(config.init.checkpoint).name == published and config.init.reinit_head
  task = tasks.get(config)
  model = task.summary_model(400)
  fresh = jax.eval_shape(functools.partial(model.init, **task.apply_kwargs), jax.random.key(0),
                         jnp.zeros((1, *task.input_shape)))
  arrays = {k: np.broadcast_to(np.float32(0.01), s) for k, s in shapes().items()}
  params, entries = converters.convert_arrays(arrays, fresh, config)
  init_from.check_head(entries, config.init.reinit_head, published)
  counts = mapping.counts(entries)
  assert counts['inflated'] == inflated, mapping.format_table(entries)
  assert counts['resampled'] == 0  # 224 / 16 = 14: the published 14x14 grid.
  new = {e.target for e in entries if e.action == 'new'}
  assert {'head/kernel', 'head/bias'} | ({'time_embedding'} if name != 'vivit_b_k400' else set()
                                         ) <= new
  if name == 'vivit_b_k400':
    assert new == {'head/kernel', 'head/bias'}, new
  if name == 'vivit_b_fe_k400':
    assert all(t.startswith(('temporal_encoder/', 'temporal_cls', 'head', 'time_embedding'))
               for t in new), new
  ignored = {e.source for e in entries if e.action == 'ignored'}
  if name == 'vivit_b_k400':  # 88.9M in the paper, with the 400-way head.
    assert 88.8e6 < sum(np.prod(s.shape) for s in jax.tree.leaves(fresh)) < 89.0e6
  assert ignored == ({'head.weight', 'head.bias'} if name.startswith('timesformer') else
                     {'head/kernel', 'head/bias', 'pre_logits/kernel', 'pre_logits/bias'})
  assert len(params) == len(jax.tree.leaves(fresh))
