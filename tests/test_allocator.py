"""The huge-page re-exec: when it applies, and that a run under it is the same run."""
import os
import subprocess
import sys

from vidjax import allocator


def test_tunable_is_added_once_and_respects_the_opt_out(monkeypatch):
  monkeypatch.setattr(allocator, '_glibc_at_least', lambda *_: True)
  monkeypatch.setattr(allocator, '_transparent_huge_pages', lambda: True)
  monkeypatch.setattr(allocator.sys, 'platform', 'linux')
  env = allocator.environment_with_huge_pages({'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2'})
  assert env['GLIBC_TUNABLES'] == 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1'
  assert allocator.environment_with_huge_pages(env) is None  # Already set: no second exec.
  assert allocator.environment_with_huge_pages({'VIDJAX_HUGEPAGES': '0'}) is None
  monkeypatch.setattr(allocator, '_transparent_huge_pages', lambda: False)
  assert allocator.environment_with_huge_pages({}) is None


def test_not_where_it_cannot_help(monkeypatch):
  monkeypatch.setattr(allocator.platform, 'libc_ver', lambda: ('glibc', '2.31'))
  assert not allocator._glibc_at_least(2, 35)
  monkeypatch.setattr(allocator.platform, 'libc_ver', lambda: ('', ''))
  assert not allocator._glibc_at_least(2, 35)
  monkeypatch.setattr(allocator.sys, 'platform', 'darwin')
  assert allocator.environment_with_huge_pages({}) is None


def test_only_training_runs_reexec():
  assert allocator.trains(['--config', 'c.py']) and allocator.trains(['--mode=train'])
  assert not allocator.trains(['--mode', 'evaluate']) and not allocator.trains(['--mode=predict'])


def test_reexec_keeps_the_pid_the_arguments_and_the_streams():
  code = ('import os, sys; from vidjax import allocator; pid = os.getpid(); '
          'allocator.reexec_with_huge_pages(); '
          'print(pid, os.environ.get("GLIBC_TUNABLES", ""), sys.argv[1:])')
  env = {**os.environ, 'GLIBC_TUNABLES': '', 'VIDJAX_HUGEPAGES': '1'}
  process = subprocess.Popen([sys.executable, '-c', code, 'a', '--b=1'], env=env,
                             stdout=subprocess.PIPE, text=True)
  out = process.communicate(timeout=60)[0].split(' ', 2)
  assert process.returncode == 0 and int(out[0]) == process.pid  # Signals still reach it.
  expected = allocator.environment_with_huge_pages(env)
  assert out[1] == ('' if expected is None else allocator.TUNABLE)
  assert out[2].strip() == "['a', '--b=1']"
