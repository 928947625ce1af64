"""Space-time attention: each pattern sees what it should, on real model outputs.

Small sizes throughout (4 frames of 16x16x3, patch 4 -> 16 patches per frame,
hidden 32) so the file runs in seconds on 2 CPU cores.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidjax.models.space_time_attention import (EncoderBlock, FactorizedBlock,
                                                SpaceTimeTransformer)

B, T, S, C = 2, 4, 16, 3
SMALL = dict(patch_size=4, hidden_size=32, num_layers=2, num_temporal_layers=1, num_heads=2,
             mlp_dim=64)


def _model(attention, **overrides):
  return SpaceTimeTransformer(5, attention=attention, **{**SMALL, **overrides})


def _init(model, *args, **kwargs):
  """Random parameters with the model's tree, drawn in numpy.

  Cheaper on CPU than `model.init` (which compiles every initialiser), and the
  embeddings and CLS tokens come out far from their near-zero init, so order
  effects are large. The properties tested hold for any parameters.
  """
  shapes = jax.eval_shape(lambda key: model.init(key, *args, **kwargs), jax.random.key(0))
  rng = np.random.default_rng(0)
  def draw(path, leaf):
    fan_in = np.prod(leaf.shape[:-1]) if leaf.ndim > 1 else 16
    x = rng.normal(size=leaf.shape) / np.sqrt(fan_in)
    if 'scale' in jax.tree_util.keystr(path):  # LayerNorm scales near 1
      x = 1 + x
    return jnp.asarray(x, leaf.dtype)
  return jax.tree_util.tree_map_with_path(draw, shapes)


def _video(seed=0, shape=(B, T, S, S, C)):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


@pytest.mark.parametrize('attention, time_embedding, order_blind', [
    ('space_only', None, True),    # official TimeSformer space-only: no time embedding
    ('divided', False, True),      # every attention is equivariant over frames...
    ('divided', None, False),      # ...so order comes only from the time embedding
    ('joint', None, False),
])
def test_frame_shuffle(attention, time_embedding, order_blind):
  model = _model(attention, time_embedding=time_embedding)
  video = _video()
  params = _init(model, video)
  apply = jax.jit(model.apply)
  shuffled = video[:, np.array([2, 0, 3, 1])]
  diff = np.abs(apply(params, video) - apply(params, shuffled)).max()
  if order_blind:
    assert diff < 1e-5  # only float reassociation of the mean over frames
  else:
    assert diff > 1e-3


@pytest.mark.parametrize('with_cls', [False, True])
def test_divided_block_without_temporal_attention_is_the_space_only_block(with_cls):
  """FactorizedBlock(temporal=False) == EncoderBlock applied to each frame.

  With a CLS token, divided copies it into every frame for spatial attention
  and averages it back before the MLP, so the patch tokens match exactly and
  the CLS token matches up to the attention step.
  """
  d, n = 32, 16
  x = _video(1, (B, T, n, d))
  cls = _video(2, (B, 1, d)) if with_cls else None
  divided = FactorizedBlock(num_heads=2, mlp_dim=64, temporal=False)
  space_only = EncoderBlock(num_heads=2, mlp_dim=64)
  params = _init(divided, x, cls)['params']
  assert not any('temporal' in k for k in params)
  renamed = {'attention': params['spatial_attention'],
             'norm_attention': params['norm_spatial_attention'],
             'mlp': params['mlp'], 'norm_mlp': params['norm_mlp']}
  assert set(renamed) == set(jax.eval_shape(space_only.init, jax.random.key(0), x)['params'])

  x_out, _ = jax.jit(divided.apply)({'params': params}, x, cls)
  frames = x
  if with_cls:
    frames = jnp.concatenate([jnp.broadcast_to(cls[:, None], (B, T, 1, d)), x], axis=2)
  y = jax.jit(space_only.apply)({'params': renamed}, frames)  # [B, T, (1 +) N, D]
  np.testing.assert_allclose(x_out, y[:, :, 1:] if with_cls else y, atol=1e-5, rtol=1e-5)


def test_factorized_encoder_encodes_frames_independently():
  """ViViT model 2: the spatial encoder's tokens for frame t depend on frame t only.

  Perturb one frame at a time and read the spatial encoder's output (captured
  as an intermediate): only that frame's tokens move, bit for bit. The
  temporal encoder then mixes the frames: the logits move whichever frame
  changed.
  """
  model = _model('factorized_encoder')
  video = _video(shape=(1, T, S, S, C))
  params = _init(model, video)

  @jax.jit
  def run(video):
    logits, state = model.apply(params, video,
                                capture_intermediates=lambda m, _: m.name == 'spatial_encoder',
                                mutable=['intermediates'])
    return logits, state['intermediates']['spatial_encoder']['__call__'][0]  # [1, T, 1+N, D]

  logits, tokens = run(video)
  for u in range(T):
    new_logits, new_tokens = run(video.at[:, u].add(1.0))
    for t in range(T):
      if t == u:
        assert np.abs(new_tokens[:, t] - tokens[:, t]).max() > 1e-3
      else:
        np.testing.assert_array_equal(new_tokens[:, t], tokens[:, t])
    assert np.abs(new_logits - logits).max() > 1e-4


def test_factorized_self_attention_is_divided_in_the_other_order():
  """ViViT model 3 has divided's parameters; only the order (spatial first) differs."""
  video = _video()
  model3, divided = _model('factorized_self_attention'), _model('divided')
  params = _init(model3, video)
  assert jax.tree.structure(params) == jax.tree.structure(_init(divided, video))
  logits3 = jax.jit(model3.apply)(params, video)
  assert logits3.shape == (B, 5) and np.isfinite(logits3).all()
  assert np.abs(logits3 - jax.jit(divided.apply)(params, video)).max() > 1e-3
  # With one of the two attentions gone, the order cannot matter.
  x, cls = _video(1, (B, T, 16, 32)), _video(2, (B, 1, 32))
  block = FactorizedBlock(num_heads=2, mlp_dim=64, temporal=False)
  block_params = _init(block, x, cls)
  for a, b in zip(jax.jit(block.apply)(block_params, x, cls),
                  jax.jit(block.clone(spatial_first=True).apply)(block_params, x, cls)):
    np.testing.assert_array_equal(a, b)


def test_bfloat16_compute_is_close_to_float32():
  video = _video()
  model = _model('divided')
  params = _init(model, video)
  f32 = jax.jit(model.apply)(params, video)
  bf16 = jax.jit(model.clone(dtype='bfloat16').apply)(params, video)  # dtypes may be strings
  assert bf16.dtype == jnp.float32
  np.testing.assert_allclose(bf16, f32, atol=0.05 * np.abs(f32).max(), rtol=0)


def test_remat_gives_the_same_gradients():
  """Also in training mode: remat replays the same dropout and drop-path draws."""
  video = _video()
  model = _model('divided', num_layers=1, dropout=0.1, stochastic_depth=0.2)
  params = _init(model, video)
  # 'unsafe_rbg' keys compile far faster on CPU than threefry; any key works here.
  key = jax.random.key(1, impl='unsafe_rbg')
  def grads(m):
    loss = lambda p: m.apply(p, video, train=True, rngs={'dropout': key}).sum()
    return jax.jit(jax.grad(loss))(params)
  remat = model.clone(remat=True)
  assert jax.tree.structure(_init(remat, video)) == jax.tree.structure(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4),
               grads(model), grads(remat))


def test_parameter_counts():
  """The patterns differ in parameters exactly where the papers say they do."""
  video = _video()
  def count(attention, **kw):
    model = _model(attention, **kw)
    shapes = jax.eval_shape(model.init, jax.random.key(0), video)
    return sum(x.size for x in jax.tree.leaves(shapes))
  d, layers = SMALL['hidden_size'], SMALL['num_layers']
  # Joint and space-only have the same blocks (TimeSformer Table 1: 85.9M each);
  # the default space-only has no time embedding ([T, D]).
  assert count('joint') - count('space_only') == T * d
  # Divided adds a temporal attention (qkv 3D^2 + 3D, out D^2 + D) and its LayerNorm (2D)
  # per block (TimeSformer: 121.4M vs 85.9M; ViViT model 3 vs model 1).
  assert count('divided') - count('joint') == layers * (4 * d * d + 4 * d + 2 * d)
  assert count('factorized_self_attention') == count('divided')
  # The official TimeSformer's temporal_fc: one D x D linear per block (121.4M with it).
  assert count('divided', temporal_fc=True) - count('divided') == layers * (d * d + d)
  # Tubelets of 2 frames: a [2, 4, 4, 3, D] patch kernel and T/2 time steps.
  assert (count('joint', tubelet_size=2) - count('joint')
          == 4 * 4 * 3 * d - (T - T // 2) * d)


def test_forward_flops_match_hand_count():
  """XLA's count of the forward pass agrees with 2*m*n*k summed over the matmuls.

  Config: B=2 clips of T=4 frames, 16x16x3, patch 4 -> N=16 patches per frame,
  D=64, MLP M=256, 2 divided blocks, CLS pooling, K=5 classes.
    patch embed        2 * (B*T*N) * (4*4*3) * D             =  786,432
    per block, temporal attention over B*N=32 sequences of T=4 tokens:
      qkv              2 * 32*4 * D * 3D                       =  3,145,728
      scores + values  2 * 2 * 32 * 4*4 * D                    =    131,072
      out proj         2 * 32*4 * D * D                        =  1,048,576
    spatial attention over B*T=8 sequences of 1+N=17 tokens (CLS included):
      qkv              2 * 8*17 * D * 3D                       =  3,342,336
      scores + values  2 * 2 * 8 * 17*17 * D                   =    591,872
      out proj         2 * 8*17 * D * D                        =  1,114,112
    MLP on B*(1+T*N)=130 tokens: 2 * 130 * 2*D*M               =  8,519,680
    block total                                                = 17,893,376
    head               2 * B * D * K                           =      1,280
  total = 786,432 + 2 * 17,893,376 + 1,280                     = 36,574,464
  XLA also counts the elementwise work (LayerNorm, GELU, softmax, biases),
  about 5% here, hence the 10% tolerance.
  """
  b, t, n, d, m, k, layers = 2, 4, 16, 64, 256, 5, 2
  patch = 2 * (b * t * n) * (4 * 4 * 3) * d
  def attention(sequences, length):
    return (2 * sequences * length * d * 3 * d         # qkv
            + 2 * 2 * sequences * length * length * d  # q.k scores and weights.v
            + 2 * sequences * length * d * d)          # out projection
  block = attention(b * n, t) + attention(b * t, 1 + n) + 2 * b * (1 + t * n) * 2 * d * m
  hand = patch + layers * block + 2 * b * d * k
  assert hand == 36_574_464

  model = SpaceTimeTransformer(k, attention='divided', patch_size=4, hidden_size=d,
                               num_layers=layers, num_heads=4, mlp_dim=m)
  video = jnp.zeros((b, t, 16, 16, 3))
  params = jax.eval_shape(model.init, jax.random.key(0), video)
  cost = jax.jit(model.apply).lower(params, video).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # older jax: a list
  assert abs(cost['flops'] / hand - 1) < 0.10, (cost['flops'], hand)


def test_real_init_jit_and_dropout():
  video = _video()
  model = _model('divided', dropout=0.2, stochastic_depth=0.1, pooling='mean',
                 tubelet_size=2)
  # The real initialisers. 'unsafe_rbg' keys compile far faster on CPU than threefry.
  key = lambda seed: jax.random.key(seed, impl='unsafe_rbg')
  params = jax.jit(model.init)(key(0), video)
  assert params['params']['time_embedding'].shape == (1, T // 2, 1, 32)
  train = jax.jit(lambda p, key: model.apply(p, video, train=True, rngs={'dropout': key}))
  a, b = train(params, key(1)), train(params, key(2))
  assert a.shape == (B, 5) and a.dtype == jnp.float32 and not np.allclose(a, b)


def test_temporal_fc_is_zero_after_the_first_block_and_cls_starts_random():
  """As the official TimeSformer: later blocks start as space-only blocks; a CLS
  token at zero would give the first LayerNorm an all-zero input."""
  model = _model('divided', temporal_fc=True)
  params = model.init(jax.random.key(0), _video())['params']
  fc = {name: block['temporal_fc']['kernel'] for name, block in params['encoder'].items()
        if name.startswith('block_')}
  assert np.abs(fc['block_0']).max() > 0 and np.abs(fc['block_1']).max() == 0
  assert 0 < np.abs(params['cls']).max() < 0.2
