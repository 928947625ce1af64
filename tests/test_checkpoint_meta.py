"""vidjax/checkpoint_meta.py: which config changes refuse a checkpoint, and how that is said."""
import pytest

from vidjax.checkpoint_meta import CheckpointError, check_compatible, model_identity

SAVED = {'model': {'name': 'convlstm', 'dtype': 'float32',
                   'convlstm': {'hidden_sizes': [32, 32], 'unroll': 64},
                   'lrcn': {'cnn_features': [16, 32]}},
         'class_names': ['a', 'b'], 'optim': {'name': 'adamw', 'learning_rate': 1e-3}}


def _with(model=None, **changes):
  return {**SAVED, 'model': {**SAVED['model'], **(model or {})}, **changes}


def test_a_new_family_or_another_familys_settings_break_no_checkpoint():
  check_compatible(SAVED, _with({'yolo': {'widths': [16, 32]}}), 'w')  # A family added later.
  check_compatible(SAVED, _with({'lrcn': {'cnn_features': [8]}}), 'w')  # Not the one in use.
  check_compatible(SAVED, _with(optim={'name': 'adamw', 'learning_rate': 5e-4}), 'w')
  assert model_identity(SAVED['model']) == {'name': 'convlstm', 'dtype': 'float32',
                                            'convlstm': {'hidden_sizes': [32, 32], 'unroll': 64}}


@pytest.mark.parametrize('current, message', [
    (_with({'convlstm': {'hidden_sizes': [64, 64], 'unroll': 64}}),
     "w holds a checkpoint with model.convlstm.hidden_sizes=[32, 32], but this config has "
     "model.convlstm.hidden_sizes=[64, 64]; use a new --workdir or the same config"),
    (_with({'name': 'lrcn'}), "w holds a checkpoint with model.name='convlstm', but this config "
                              "has model.name='lrcn'"),
    (_with(class_names=['a', 'c']), "class_names=['a', 'b'], but this config has "
                                    "class_names=['a', 'c']"),
    (_with(optim={'name': 'sgd'}), "w was trained with optim.name='adamw', but this config has "
                                   "optim.name='sgd'; rerun with --config.optim.name=adamw"),
])
def test_what_differs_is_named_in_one_line(current, message):
  with pytest.raises(CheckpointError) as e:
    check_compatible(SAVED, current, 'w')
  assert message in str(e.value) and '\n' not in str(e.value)
