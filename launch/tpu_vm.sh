#!/usr/bin/env bash
# Train on a Cloud TPU VM or pod slice: create, install, run on every worker, delete.
# The steps and their options are in launch/tpu_vm.py (--help); --dry-run prints them.
#   launch/tpu_vm.sh --name vj --zone us-central2-b --accelerator-type v4-32 --dry-run \
#       -- --config configs/default.py --workdir /mnt/shared/runs/v4-32
exec python3 "$(dirname "$0")/tpu_vm.py" "$@"
