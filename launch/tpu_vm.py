"""Train on a Cloud TPU VM or pod slice: create it, install, run, stream logs, delete it.

  launch/tpu_vm.sh --name vj --zone us-central2-b --accelerator-type v4-32 [--dry-run] \
      -- --config configs/default.py --workdir /mnt/shared/runs/v4-32 [--config.KEY=VALUE ...]

Everything after `--` goes to `python -m vidjax.main` unchanged, on every
worker: on a slice of several hosts vidjax finds its peers itself
(`parallel.initialize` calls `jax.distributed.initialize()`), so the
command is the one used on a laptop. In order, this script:

1. creates the VM (`gcloud compute tpus tpu-vm create`);
2. puts this checkout on every worker (`--worker=all`): a tarball of the
   working tree, or `git clone` of `--repo`;
3. installs as the README says (`pip install -r requirements.txt` plus
   `jax[tpu]` at the pinned jax version) into a Python 3.11 venv;
4. optionally mounts an NFS share (`--nfs SERVER:/EXPORT` at /mnt/shared):
   with several workers the workdir must be one directory they all see, as
   orbax writes each host's shards of a checkpoint there;
5. runs vidjax on all workers at once; gcloud streams their output here;
6. optionally copies the workdir back from worker 0 (`--fetch DIR`);
7. deletes the VM, also after a failure or Ctrl-C (`--keep` to keep it).

`--dry-run` prints these commands, in order, and runs none. Only the
standard library is needed, and gcloud to run for real.
"""
from __future__ import annotations

import argparse
import pathlib
import re
import shlex
import signal
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parent.parent
REMOTE_DIR = 'vidjax'  # In each worker's home directory.
SHARED_MOUNT = '/mnt/shared'
# The runtime image per TPU generation (Ubuntu 22.04 based).
RUNTIMES = {'v2': 'tpu-ubuntu2204-base', 'v3': 'tpu-ubuntu2204-base', 'v4': 'tpu-ubuntu2204-base',
            'v5litepod': 'v2-alpha-tpuv5-lite', 'v5p': 'v2-alpha-tpuv5', 'v6e': 'v2-alpha-tpuv6e'}


def workers(accelerator_type: str) -> int | None:
  """Hosts of a slice: v4-32 -> 4. None for a type this table does not know.

  v2/v3 count TensorCores, 8 per host; v4/v5p count TensorCores, 2 per chip,
  4 chips per host; v5e (v5litepod) and v6e count chips, up to 8 on one
  host, else 4 per host.
  """
  match = re.fullmatch(r'(v2|v3|v4|v5p|v5litepod|v6e)-(\d+)', accelerator_type)
  if not match:
    return None
  generation, size = match.group(1), int(match.group(2))
  if generation in ('v2', 'v3', 'v4', 'v5p'):
    return max(1, size // 8)
  return 1 if size <= 8 else size // 4


def pinned_jax_version() -> str:
  """The jax version requirements.txt pins, for `jax[tpu]==` of the same."""
  text = (REPO / 'requirements.txt').read_text()
  match = re.search(r'^jax==(\S+)', text, re.MULTILINE)
  if not match:
    raise SystemExit('requirements.txt pins no jax version (a line jax==X)')
  return match.group(1)


def vidjax_workdir(vidjax_args: list[str]) -> str | None:
  for i, arg in enumerate(vidjax_args):
    if arg == '--workdir' and i + 1 < len(vidjax_args):
      return vidjax_args[i + 1]
    if arg.startswith('--workdir='):
      return arg.split('=', 1)[1]
  return None


def plan(args: argparse.Namespace, vidjax_args: list[str]) -> tuple[list[list[str]], list[str]]:
  """(the commands that set up and run, in order; the command that deletes)."""
  where = [f'--zone={args.zone}'] + ([f'--project={args.project}'] if args.project else [])
  tpu = ['gcloud', 'compute', 'tpus', 'tpu-vm']

  def on_all(command: str) -> list[str]:
    return [*tpu, 'ssh', args.name, *where, '--worker=all', '--command', command]

  version = args.version or RUNTIMES[args.accelerator_type.split('-')[0]]
  steps = [[*tpu, 'create', args.name, *where, f'--accelerator-type={args.accelerator_type}',
            f'--version={version}', *(['--spot'] if args.spot else [])]]
  if args.repo:
    branch = [f'--branch={args.branch}'] if args.branch else []
    steps.append(on_all(shlex.join(['rm', '-rf', REMOTE_DIR]) + ' && ' +
                        shlex.join(['git', 'clone', '--depth=1', *branch, args.repo, REMOTE_DIR])))
  else:
    tarball = f'{tempfile.gettempdir()}/vidjax-{args.name}.tar.gz'
    steps.append(['tar', '-czf', tarball, '--exclude=.git', '--exclude=runs', '--exclude=.venv',
                  '--exclude=__pycache__', '-C', str(REPO), '.'])
    steps.append([*tpu, 'scp', tarball, f'{args.name}:vidjax.tar.gz', *where, '--worker=all'])
    steps.append(on_all(f'rm -rf {REMOTE_DIR} && mkdir -p {REMOTE_DIR} && '
                        f'tar -xzf vidjax.tar.gz -C {REMOTE_DIR}'))
  apt = 'sudo DEBIAN_FRONTEND=noninteractive apt-get'
  # The README's install, plus jax[tpu] at the pinned version, in Python 3.11
  # (the runtime images ship 3.10).
  steps.append(on_all(
      f'cd {REMOTE_DIR} && {apt} update -q && {apt} install -y -q python3.11 python3.11-venv && '
      f'python3.11 -m venv .venv && '
      f'.venv/bin/pip install -q -r requirements.txt "jax[tpu]=={pinned_jax_version()}"'))
  if args.nfs:
    steps.append(on_all(f'{apt} install -y -q nfs-common && sudo mkdir -p {SHARED_MOUNT} && '
                        f'sudo mount -t nfs {shlex.quote(args.nfs)} {SHARED_MOUNT}'))
  steps.append(on_all(f'cd {REMOTE_DIR} && .venv/bin/python -m vidjax.main ' +
                      shlex.join(vidjax_args)))
  if args.fetch:
    workdir = vidjax_workdir(vidjax_args)
    if workdir is None:
      raise SystemExit('--fetch needs the vidjax arguments to name a --workdir')
    remote = workdir if workdir.startswith('/') else f'{REMOTE_DIR}/{workdir}'
    steps.append([*tpu, 'scp', '--recurse', f'{args.name}:{remote}', args.fetch, *where,
                  '--worker=0'])
  delete = [*tpu, 'delete', args.name, *where, '--quiet']
  return steps, delete


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
  if '--' in argv:
    split = argv.index('--')
    argv, vidjax_args = argv[:split], argv[split + 1:]
  else:
    vidjax_args = []
  parser = argparse.ArgumentParser(
      prog='launch/tpu_vm.sh', description=__doc__.split('\n\n')[0],
      epilog='Arguments after -- go to python -m vidjax.main on every worker.')
  parser.add_argument('--name', required=True, help='TPU VM name.')
  parser.add_argument('--zone', required=True, help='e.g. us-central2-b')
  parser.add_argument('--accelerator-type', required=True, help='e.g. v4-8, v4-32, v5litepod-16')
  parser.add_argument('--version', default='', help='TPU runtime; default: by generation.')
  parser.add_argument('--project', default='', help='GCP project; default: gcloud config.')
  parser.add_argument('--spot', action='store_true', help='A Spot VM (cheaper, preemptible).')
  parser.add_argument('--repo', default='', help='git URL to clone; default: this working tree.')
  parser.add_argument('--branch', default='', help='With --repo: branch or tag.')
  parser.add_argument('--nfs', default='', help=f'SERVER:/EXPORT to mount at {SHARED_MOUNT}.')
  parser.add_argument('--fetch', default='', help='Copy the workdir from worker 0 to this directory.')
  parser.add_argument('--keep', action='store_true', help='Do not delete the VM at the end.')
  parser.add_argument('--dry-run', action='store_true', help='Print the commands; run none.')
  args = parser.parse_args(argv)
  if args.accelerator_type.split('-')[0] not in RUNTIMES and not args.version:
    parser.error(f'unknown accelerator type {args.accelerator_type}; pass --version RUNTIME')
  if not vidjax_args:
    parser.error('give the vidjax arguments after --, e.g. -- --config configs/default.py '
                 '--workdir runs/tpu')
  return args, vidjax_args


def _terminated(signum, frame):
  raise KeyboardInterrupt(f'signal {signum}')


def main(argv: list[str]) -> int:
  args, vidjax_args = parse(argv)
  steps, delete = plan(args, vidjax_args)
  hosts = workers(args.accelerator_type)
  if (hosts or 2) > 1 and not args.nfs:
    print(f'warning: {args.accelerator_type} has {hosts or "several"} workers; --workdir must be '
          f'one directory they all share (mount one with --nfs)', file=sys.stderr)
  if args.dry_run:
    print(f'# {args.accelerator_type}: {hosts or "?"} worker(s); commands in order:')
    for command in steps + ([] if args.keep else [delete]):
      print(shlex.join(command))
    return 0
  signal.signal(signal.SIGTERM, _terminated)  # A killed launcher still deletes the VM.
  # Also when started in the background by a shell, which would leave SIGINT ignored.
  signal.signal(signal.SIGINT, signal.default_int_handler)
  code = 0
  try:
    for command in steps:
      print('+ ' + shlex.join(command), flush=True)
      code = subprocess.run(command).returncode
      if code:
        print(f'failed (exit code {code}): {shlex.join(command)}', file=sys.stderr, flush=True)
        break
  except KeyboardInterrupt:
    print('interrupted', file=sys.stderr, flush=True)
    code = 130
  finally:
    if args.keep:
      print(f'kept {args.name}; delete it with: {shlex.join(delete)}', flush=True)
    else:
      signal.signal(signal.SIGINT, signal.SIG_IGN)  # Let the delete finish.
      print('+ ' + shlex.join(delete), flush=True)
      if subprocess.run(delete).returncode:
        print(f'could not delete {args.name}: check `gcloud compute tpus tpu-vm list '
              f'--zone={args.zone}`', file=sys.stderr, flush=True)
        code = code or 1
  return code


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
