"""`pip install -e .` gives what the checkout gives: the same pins, configs and command."""
import fnmatch
import os
import re
import subprocess
import sys
import tomllib

from tests.conftest import REPO
from vidjax import config as config_lib

PYPROJECT = tomllib.loads((REPO / 'pyproject.toml').read_text())
TEST_ONLY = {'pytest', 'pytest-xdist', 'execnet'}  # requirements.txt's pins that are not runtime dependencies.


def _requirement_pins() -> list[str]:
  lines = (line.split('#', 1)[0].strip() for line in (REPO / 'requirements.txt').open())
  return [line for line in lines if line]


def _name(pin: str) -> str:
  return re.split(r'[=<>!~\[; ]', pin, maxsplit=1)[0].lower()


def test_pyproject_dependencies_are_the_requirements_runtime_pins():
  pins = _requirement_pins()
  runtime = [p for p in pins if _name(p) not in TEST_ONLY]
  assert sorted(PYPROJECT['project']['dependencies']) == sorted(runtime)
  assert sorted(PYPROJECT['project']['optional-dependencies']['test']) == sorted(
      p for p in pins if _name(p) in TEST_ONLY)
  assert 'scipy' in {_name(p) for p in runtime}  # vidjax/data/synthetic_actions.py imports it.


def test_every_vidjax_package_ships():
  """Found by pattern, so a new subpackage ships without editing pyproject.toml."""
  include = PYPROJECT['tool']['setuptools']['packages']['find']['include']
  inits = (REPO / 'vidjax').rglob('__init__.py')
  packages = {'.'.join(p.parent.relative_to(REPO).parts) for p in inits}
  assert {'vidjax', 'vidjax.configs', 'vidjax.models', 'vidjax.data', 'vidjax.tasks'} <= packages
  assert [p for p in packages if not any(fnmatch.fnmatchcase(p, i) for i in include)] == []


def _python(args, cwd) -> subprocess.CompletedProcess:
  """Python in `cwd` with vidjax importable but not the current directory, as when installed."""
  env = {**os.environ, 'PYTHONPATH': str(REPO)}
  return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=120)


def test_import_and_configs_work_from_any_directory(tmp_path):
  code = ('import vidjax, vidjax.config\n'
          "print(vidjax.config.load('configs/default.py').model.name)\n"
          "print(vidjax.config.load('moving_mnist_fc_lstm.py').model.name)\n")
  result = _python(['-c', code], tmp_path)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == ['lrcn', 'fc_lstm']


def test_the_vidjax_command_is_python_m_vidjax_main(tmp_path):
  """The console script calls what `python -m vidjax.main` runs; both behave the same."""
  assert PYPROJECT['project']['scripts'] == {'vidjax': 'vidjax.main:main'}
  args = ['--config', 'configs/default.py', '--workdir', str(tmp_path / 'run'),
          '--config.optim.lerning_rate=1']
  script = ('import pkgutil, sys\n'
            "sys.argv[0] = 'vidjax'\n"
            "sys.exit(pkgutil.resolve_name('vidjax.main:main')())\n")
  command = _python(['-c', script, *args], tmp_path)
  module = _python(['-m', 'vidjax.main', *args], tmp_path)
  expected = ("error: unknown config key 'optim.lerning_rate' "
              "(did you mean 'optim.learning_rate'?)")
  for result in (command, module):
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == expected


def test_the_checkout_configs_are_the_packaged_ones():
  """`--config configs/NAME.py` from the checkout reads the very files an install ships."""
  assert (REPO / 'configs').is_symlink()
  assert (REPO / 'configs').resolve() == config_lib.CONFIGS_DIR
  assert (config_lib.CONFIGS_DIR / '__init__.py').is_file()  # A package, so it ships.
