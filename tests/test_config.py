"""Configs are checked when loaded: typos and wrong types are one-line errors."""
import ast
import pathlib
import sys

import pytest

from tests.conftest import REPO
from vidjax import config as config_lib
from vidjax import models
from vidjax.data import moving_mnist
from vidjax.tasks import localization

DEFAULT = str(REPO / 'configs' / 'default.py')


def _all_config_specs():
  specs = []
  for path in sorted((REPO / 'configs').glob('*.py')):
    if path.stem == '__init__':
      continue
    module = config_lib._load_module(path)
    variants = getattr(module, 'PATTERNS', None) or getattr(module, 'VARIANTS', None) or ('',)
    specs += [f'{path}:{v}' if v else str(path) for v in variants]
  return specs


@pytest.mark.parametrize('spec', _all_config_specs(), ids=lambda s: s.split('/')[-1])
def test_every_config_file_validates(spec):
  config = config_lib.load(spec)
  assert config.model.name and config.data.dataset


def test_bad_variant_is_a_config_error():
  with pytest.raises(config_lib.ConfigError, match="unknown attention pattern 'jiont'"):
    config_lib.load(str(REPO / 'configs' / 'space_time_attention.py:jiont'))


def test_override_sets_typed_values():
  config = config_lib.load(DEFAULT, ['optim.learning_rate=1', 'train.num_steps=10',
                                     'model.lrcn.cnn_features=(4, 8)', 'model.name=single_frame',
                                     'model.lrcn.bidirectional=true'])
  assert config.optim.learning_rate == 1.0 and isinstance(config.optim.learning_rate, float)
  assert config.train.num_steps == 10
  assert config.model.lrcn.cnn_features == (4, 8)
  assert config.model.name == 'single_frame'
  assert config.model.lrcn.bidirectional is True


def test_typo_in_override_names_the_closest_key():
  with pytest.raises(config_lib.ConfigError) as e:
    config_lib.load(DEFAULT, ['optim.lerning_rate=1'])
  assert str(e.value) == "unknown config key 'optim.lerning_rate' (did you mean 'optim.learning_rate'?)"


def test_wrong_type_in_override():
  with pytest.raises(config_lib.ConfigError, match="'train.num_steps' needs an int"):
    config_lib.load(DEFAULT, ['train.num_steps=1.5'])
  with pytest.raises(config_lib.ConfigError, match="'train.num_steps' needs an int, got 'ten'"):
    config_lib.load(DEFAULT, ['train.num_steps=ten'])
  with pytest.raises(config_lib.ConfigError, match='needs true or false'):
    config_lib.load(DEFAULT, ['train.progress_bar=maybe'])


def test_override_without_value():
  with pytest.raises(config_lib.ConfigError, match='needs a value'):
    config_lib.load(DEFAULT, ['train.num_steps'])


def test_unknown_key_in_a_config_file(tmp_path):
  path = tmp_path / 'bad.py'
  path.write_text(f"import importlib.util, sys\n"
                  f"spec = importlib.util.spec_from_file_location('d', {DEFAULT!r})\n"
                  "d = importlib.util.module_from_spec(spec); spec.loader.exec_module(d)\n"
                  "def get_config():\n"
                  "  c = d.get_config()\n"
                  "  c.train.num_stepz = 5\n"
                  "  return c\n")
  with pytest.raises(config_lib.ConfigError, match="unknown config key 'train.num_stepz' "
                                                   r"\(did you mean 'train.num_steps'\?\)"):
    config_lib.load(str(path))


def test_missing_config_file_lists_configs():
  with pytest.raises(config_lib.ConfigError, match="config file 'nope.py' not found.*default.py"):
    config_lib.load('nope.py')


def test_config_is_locked_after_load():
  config = config_lib.load(DEFAULT)
  with pytest.raises(AttributeError):
    config.train.new_key = 1


def test_defaults_compose_the_blocks_declared_beside_their_code():
  defaults = config_lib.load_defaults()
  for name, family in models.FAMILIES.items():
    assert defaults.model[name].to_dict() == family.default_config().to_dict(), name
  assert defaults.data.moving_mnist.to_dict() == moving_mnist.default_config().to_dict()
  assert defaults.localization.to_dict() == localization.default_config().to_dict()
  assert (set(models.CLASSIFIERS) | set(models.FORECASTERS) | set(models.DETECTORS)
          | set(models.BOX_DETECTORS) | set(models.DENOISERS) == set(models.FAMILIES))
  assert models.CLASSIFIERS['lrcn'] is models.FAMILIES['lrcn'].cls


def test_typo_in_a_family_block_names_the_closest_key():
  with pytest.raises(config_lib.ConfigError) as e:
    config_lib.load(DEFAULT, ['model.space_time_attention.num_head=2'])
  assert str(e.value) == ("unknown config key 'model.space_time_attention.num_head' "
                          "(did you mean 'model.space_time_attention.num_heads'?)")


def test_family_modules_know_nothing_of_configs_data_or_training():
  """A model module is its class and its keys; the config composes them, not the reverse."""
  forbidden = ('vidjax.tasks', 'vidjax.data', 'vidjax.config', 'vidjax.train')
  for family in models.FAMILIES.values():
    source = pathlib.Path(sys.modules[family.cls.__module__].__file__).read_text()
    nodes = list(ast.walk(ast.parse(source)))
    imported = [n.module or '' for n in nodes if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in nodes if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith(forbidden)], family.cls.__module__


def test_packaged_configs_are_found_from_any_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # As an installed vidjax run elsewhere: no configs/ here.
  assert config_lib.load('configs/default.py').model.name == 'lrcn'
  assert config_lib.load('single_frame.py').model.name == 'single_frame'
  with pytest.raises(config_lib.ConfigError, match="config file 'other/default.py' not found") as e:
    config_lib.load('other/default.py')  # Only configs/NAME.py and NAME.py fall back.
  assert '\n' not in str(e.value)
