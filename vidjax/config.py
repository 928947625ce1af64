"""Loads an experiment config and checks it against the one home of defaults.

Every key a run may set is declared, with its default, in `vidjax/configs/default.py`
(which composes each model family's block from beside its module).
An experiment config starts from those defaults and changes values; it never
invents keys. So a misspelt key, in a config file or on the command line,
is a one-line `ConfigError` that names the closest valid key, instead of a
silently ignored setting (scenic's `config.datset_configs` problem).
"""
from __future__ import annotations

import ast
import difflib
import importlib.util
import pathlib
from typing import Any, Iterable

import ml_collections

from vidjax.errors import UserError

# Inside the package, so an installed vidjax has them; the checkout's `configs` links here.
CONFIGS_DIR = pathlib.Path(__file__).resolve().parent / 'configs'
DEFAULTS_PATH = CONFIGS_DIR / 'default.py'


class ConfigError(UserError):
  """A user mistake in a config; its message is one line naming the fix."""


def _flatten(config: ml_collections.ConfigDict, prefix: str = '') -> dict[str, Any]:
  flat = {}
  for key, value in config.items():
    path = f'{prefix}{key}'
    if isinstance(value, ml_collections.ConfigDict):
      flat.update(_flatten(value, path + '.'))
    else:
      flat[path] = value
  return flat


def _closest(key: str, candidates: Iterable[str]) -> str:
  candidates = list(candidates)
  match = difflib.get_close_matches(key, candidates, n=1, cutoff=0.5)
  if not match:  # Compare the last component too: `model.lrcn.hiden` vs `...hidden_size`.
    leaf = key.rsplit('.', 1)[-1]
    by_leaf = {c.rsplit('.', 1)[-1]: c for c in candidates if c.rsplit('.', 1)[0] == key.rsplit('.', 1)[0]}
    leaf_match = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.5)
    match = [by_leaf[leaf_match[0]]] if leaf_match else []
  return f" (did you mean '{match[0]}'?)" if match else ''


def _load_module(path: pathlib.Path):
  # Config files start from the defaults with `from vidjax.configs import default`.
  spec = importlib.util.spec_from_file_location(f'vidjax_config_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_defaults() -> ml_collections.ConfigDict:
  return _load_module(DEFAULTS_PATH).get_config()


def _find(path: str) -> pathlib.Path:
  """The file at `path`, else the packaged config it names: `configs/NAME.py` or `NAME.py`.

  So the README's `--config configs/default.py` works from the checkout (where
  it is a path) and, with vidjax installed, from any directory.
  """
  file = pathlib.Path(path)
  if file.is_file():
    return file
  packaged = CONFIGS_DIR / file.name
  if not file.is_absolute() and file.parent.name in ('', 'configs') and packaged.is_file():
    return packaged
  configs = sorted(p.name for p in CONFIGS_DIR.glob('*.py') if p.stem != '__init__')
  raise ConfigError(f"config file '{path}' not found; the configs are in "
                    f"{CONFIGS_DIR}: {', '.join(configs)}")


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """Loads `path/to/config.py[:variant]`, calling `get_config(variant)`."""
  path, _, variant = spec.partition(':')
  module = _load_module(_find(path).resolve())
  if not hasattr(module, 'get_config'):
    raise ConfigError(f"config file '{path}' has no get_config() function")
  try:
    return module.get_config(variant) if variant else module.get_config()
  except (AttributeError, KeyError, ValueError) as e:  # A typo or a bad variant.
    message = str(e).strip('\'"').replace('\\n', ' ').replace('\n', ' ')
    raise ConfigError(f"config file '{path}': {message}") from None


def _a(value_type: type) -> str:
  name = value_type.__name__
  return f"an {name}" if name[0] in 'aeiou' else f"a {name}"


def _parse_value(text: str, default: Any, key: str) -> Any:
  """Parses a command-line value to the type of the default it replaces."""
  if isinstance(default, bool):
    lowered = text.lower()
    if lowered in ('true', '1', 'yes'):
      return True
    if lowered in ('false', '0', 'no'):
      return False
    raise ConfigError(f"config key '{key}' needs true or false, got '{text}'")
  if isinstance(default, str) or default is None:
    if default is None:
      try:
        return ast.literal_eval(text)
      except (ValueError, SyntaxError):
        return text
    return text
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    raise ConfigError(f"config key '{key}' needs {_a(type(default))}, got '{text}'") from None
  return value


def _check_type(key: str, value: Any, default: Any) -> Any:
  if default is None or value is None:
    return value
  if isinstance(default, bool) != isinstance(value, bool):
    raise ConfigError(f"config key '{key}' needs {_a(type(default))}, got {value!r}")
  if isinstance(default, float) and isinstance(value, int):
    return float(value)
  if isinstance(default, (tuple, list)) and isinstance(value, (tuple, list)):
    return tuple(value)
  if isinstance(default, (int, float)) and isinstance(value, (int, float)) and not isinstance(default, bool):
    if isinstance(default, int) and isinstance(value, float):
      if not value.is_integer():
        raise ConfigError(f"config key '{key}' needs an int, got {value!r}")
      return int(value)
    return value
  if not isinstance(value, type(default)):
    raise ConfigError(f"config key '{key}' needs {_a(type(default))}, got {value!r}")
  return value


def _set(config: ml_collections.ConfigDict, key: str, value: Any) -> None:
  *parents, leaf = key.split('.')
  node = config
  for part in parents:
    node = node[part]
  with node.unlocked():
    node[leaf] = value


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> None:
  """Applies `a.b=value` strings, each to a key that must already exist."""
  flat = _flatten(config)
  for override in overrides:
    key, sep, text = override.partition('=')
    if not sep:
      raise ConfigError(f"override '--config.{override}' needs a value: --config.{override}=VALUE")
    if key not in flat:
      raise ConfigError(f"unknown config key '{key}'{_closest(key, flat)}")
    value = _check_type(key, _parse_value(text, flat[key], key), flat[key])
    _set(config, key, value)
    flat[key] = value


def validate(config: ml_collections.ConfigDict,
             defaults: ml_collections.ConfigDict | None = None) -> None:
  """Every key must be declared in the defaults, with a value of its type."""
  defaults = load_defaults() if defaults is None else defaults
  known = _flatten(defaults)
  given = _flatten(config)
  for key, value in given.items():
    if key not in known:
      raise ConfigError(f"unknown config key '{key}'{_closest(key, known)}")
    coerced = _check_type(key, value, known[key])
    if coerced is not value:
      _set(config, key, coerced)
  for key in known:
    if key not in given:
      raise ConfigError(f"config is missing key '{key}'; start experiment configs from "
                        'vidjax/configs/default.py get_config()')


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
  """Pulls `--config.a.b=v` out of argv (as 'a.b=v'), leaving the rest for absl."""
  overrides, rest = [], []
  for arg in argv:
    if arg.startswith('--config.'):
      overrides.append(arg[len('--config.'):])
    else:
      rest.append(arg)
  return overrides, rest


def load(spec: str, overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
  """The one way a run gets its config: file, then overrides, then checks."""
  config = load_config_file(spec)
  validate(config)
  apply_overrides(config, overrides)
  config.lock()
  return config
