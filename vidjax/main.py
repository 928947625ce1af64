"""The one entry point: flags -> validated config -> train, evaluate or predict.

  python -m vidjax.main --config configs/default.py --workdir runs/default
  python -m vidjax.main --config configs/default.py --workdir runs/default \
      --mode predict --video clip.mp4 [--video more.mp4 ...]
  python -m vidjax.main --config configs/default.py --workdir runs/default \
      --mode predict --video clips/ --split test   # a folder's videos and a split's; one
      # JSON line each in runs/default/predictions/classes.jsonl, unreadable ones listed
  python -m vidjax.main --config configs/moving_mnist_convlstm.py --workdir runs/mm \
      --mode predict --video sequence.npy   # frame prediction: writes the next frames
  python -m vidjax.main --config configs/untrimmed_backbone.py --workdir runs/backbone \
      --mode extract --config.extract.out_dir=runs/features   # snippet features
  python -m vidjax.main --config configs/default.py --workdir runs/default \
      --mode export   # runs/default/export/: a jax.export inference function (vidjax/export.py)

Config overrides are `--config.a.b=value`. A user mistake (a misspelt key, a
missing file, an incompatible checkpoint) ends with one line and exit code 2.
"""
from __future__ import annotations

import logging
import os
import sys

from absl import app, flags
from absl import logging as absl_logging

from vidjax import console_log, preemption
from vidjax.errors import UserError

_CONFIG = flags.DEFINE_string('config', None, 'Config file, optionally path.py:variant.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where checkpoints, logs and results go.')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'evaluate', 'predict', 'extract', 'export'], 'What to do.')
_VIDEO = flags.DEFINE_multi_string('video', [], 'Video file(s) for --mode predict or extract '
                                       '(predict: also folders, searched recursively); '
                                       'frame prediction also reads .npy sequences.')
_SPLIT = flags.DEFINE_string('split', '', "--mode predict: also the files of this split of the "
                             "config's dataset, e.g. test.")
_COORDINATOR = flags.DEFINE_string('coordinator_address', '', 'host:port of process 0, for multi-host.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', 0, 'Processes in a multi-host run.')
_PROCESS_ID = flags.DEFINE_integer('process_id', -1, 'This process, in a multi-host run.')

USER_ERROR_EXIT = 2


def run(argv_rest: list[str], overrides: list[str]) -> None:
  del argv_rest
  from vidjax import config as config_lib
  from vidjax import parallel
  if not _CONFIG.value or not _WORKDIR.value:
    raise config_lib.ConfigError('--config and --workdir are required, e.g. '
                                 '--config configs/default.py --workdir runs/default')
  config = config_lib.load(_CONFIG.value, overrides)
  parallel.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  if _MODE.value == 'train':
    from vidjax import train
    train.train_and_evaluate(config, _WORKDIR.value)
  elif _MODE.value == 'evaluate':
    from vidjax import predict
    predict.evaluate(config, _WORKDIR.value)
  elif _MODE.value == 'extract':
    from vidjax import extract
    extract.extract(config, _WORKDIR.value, _VIDEO.value)
  elif _MODE.value == 'export':
    from vidjax import export
    export.export(config, _WORKDIR.value)
  else:
    from vidjax import predict
    if not _VIDEO.value and not _SPLIT.value:
      raise config_lib.ConfigError('--mode predict needs --video PATH or FOLDER (repeat for '
                                   'more) or --split NAME')
    predict.predict(config, _WORKDIR.value, _VIDEO.value, _SPLIT.value)


# When a run stops while decode workers hold batches in shared memory (a preemption, a dead
# worker), multiprocessing's resource tracker frees the segments at exit and warns about each
# "leak" in a multi-line warning after the run's one-line message; the freeing is what we want.
_QUIET_TRACKER = 'ignore::UserWarning:multiprocessing.resource_tracker'


def main() -> None:
  from vidjax import allocator
  allocator.reexec_with_huge_pages()  # Before anything starts: glibc reads it at exec.
  from vidjax.config import split_overrides
  warnings = os.environ.get('PYTHONWARNINGS', '')
  if _QUIET_TRACKER not in warnings:  # Read by the tracker process, started later.
    os.environ['PYTHONWARNINGS'] = ','.join(filter(None, [warnings, _QUIET_TRACKER]))
  overrides, argv = split_overrides(sys.argv)

  def _main(argv_rest):
    # Libraries (orbax, grain) log through absl at INFO; only their warnings show.
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger('vidjax').setLevel(logging.INFO)
    preempted = False
    # Everything printed from here on, by this process, its workers and C++ code, is also
    # appended to workdir/console.log (console_log.py).
    with console_log.tee(_WORKDIR.value, max(_PROCESS_ID.value, 0)):
      try:
        run(argv_rest, overrides)
      except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(USER_ERROR_EXIT)
      except preemption.Preempted as e:
        print(str(e), file=sys.stderr)
        preempted = True
    if preempted:
      # Everything is saved (or nothing needed saving). Leave at once: the interpreter's
      # own shutdown can crash in native code when a signal cut a dataset generation's
      # worker pool short, and decode workers exit with their parent (data/workers.py).
      logging.shutdown()
      sys.stdout.flush()
      sys.stderr.flush()
      os._exit(preemption.PREEMPTED_EXIT_CODE)

  app.run(_main, argv=argv)


if __name__ == '__main__':
  main()
