"""workdir/console.log: what a run prints, its children and C++ code included, appended."""
import os
import pathlib
import subprocess
import sys
import textwrap

from tests.conftest import REPO
from vidjax import console_log

_SCRIPT = textwrap.dedent('''
    import os, subprocess, sys
    from vidjax import console_log
    with console_log.tee(sys.argv[1], argv=['run', sys.argv[2]]) as path:
      print('from python', flush=True)
      os.write(2, b'from fd 2, as C++ code writes\\n')
      subprocess.run([sys.executable, '-c', 'print("from a child process")'], check=True)
      sys.stderr.write('\\rbar 1/3\\rbar 2/3\\rbar 3/3\\n')
      print('no newline at the end', end='')
    print('after the log')
''')


def _run(workdir, name):
  return subprocess.run([sys.executable, '-c', _SCRIPT, str(workdir), name], cwd=REPO,
                        capture_output=True, timeout=60)  # Bytes: \r kept.


def test_log_gets_every_writer_and_the_terminal_still_does(tmp_path):
  workdir = tmp_path / 'run'
  first, second = _run(workdir, 'first'), _run(workdir, 'second')
  for result in (first, second):
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == 'from python\nfrom a child process\nno newline at the endafter the log\n'
    assert result.stderr.decode() == 'from fd 2, as C++ code writes\n\rbar 1/3\rbar 2/3\rbar 3/3\n'
  lines = (workdir / 'console.log').read_text().splitlines()
  headers = [i for i, line in enumerate(lines) if line.startswith('=== ')]
  assert len(headers) == 2 and lines[headers[0]].endswith(' run first')
  assert lines[headers[1]].endswith(' run second')
  body = lines[headers[0] + 1:headers[1]]
  assert sorted(body) == sorted(['from python', 'from fd 2, as C++ code writes',
                                 'from a child process', 'bar 3/3', 'no newline at the end'])
  assert 'after the log' not in lines


def test_a_log_that_cannot_be_written_stops_logging_not_the_run(capfd):
  log = console_log._LineLog(pathlib.Path('/dev/full'), terminal_fd=os.dup(2))
  log.write_line('lost\n')  # ENOSPC, as on a full disk.
  log.write_line('also lost\n')
  log.close()
  assert capfd.readouterr().err.count('/dev/full is no longer written') == 1


def test_no_workdir_no_log_and_process_logs_apart(tmp_path):
  with console_log.tee(None) as path:
    assert path is None
  assert console_log.log_path(tmp_path, 0).name == 'console.log'
  assert console_log.log_path(tmp_path, 3).name == 'console.process3.log'


def test_a_run_keeps_its_console_in_the_workdir(trained_workdir):
  log = (trained_workdir / 'console.log').read_text()
  assert log.startswith('=== ') and 'vidjax.main' in log.splitlines()[0]
  assert 'test top-1 / top-5' in log  # The summary (stdout) ...
  assert 'model lrcn:' in log  # ... and absl's log lines (stderr).
