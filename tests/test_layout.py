"""The house rules a reader relies on, checked: small modules, one-way imports, no task branches.

A module over 400 lines, a model importing the data or the loop, or a
`config.task ==` branch outside the task registry are how a codebase turns
into one that cannot take a new task without a renovation.
"""
import ast
import pathlib

from tests.conftest import REPO

PACKAGE = REPO / 'vidjax'
MAX_LINES = 400


def _modules():
  return sorted(p for p in PACKAGE.rglob('*.py') if '__pycache__' not in p.parts)


def _imports(path: pathlib.Path) -> set[str]:
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f'{node.module}.{alias.name}' for alias in node.names)
  return names


def test_no_module_is_over_400_lines():
  long = {str(p.relative_to(REPO)): n for p in _modules()
          if (n := len(p.read_text().splitlines())) > MAX_LINES}
  assert not long, long


def test_models_know_nothing_of_tasks_data_config_or_the_loop():
  forbidden = ('vidjax.tasks', 'vidjax.data', 'vidjax.config', 'vidjax.train', 'vidjax.steps')
  for path in (PACKAGE / 'models').glob('*.py'):
    bad = [name for name in _imports(path) if name.startswith(forbidden)]
    assert not bad, (path.name, bad)


def test_the_loop_and_the_trained_model_code_import_no_concrete_task():
  for name in ('train.py', 'steps.py', 'predict.py', 'main.py', 'summary.py', 'checkpoint.py'):
    bad = [n for n in _imports(PACKAGE / name) if n.startswith('vidjax.tasks.')]
    assert not bad, (name, bad)


def test_no_task_branch_outside_the_task_registry():
  registry = PACKAGE / 'tasks' / '__init__.py'
  for path in _modules():
    if path != registry:
      text = path.read_text()
      assert 'config.task ==' not in text and 'config.task !=' not in text, path
