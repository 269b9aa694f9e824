#!/usr/bin/env bash
# A stand-in for SLURM's srun in tests/test_multinode.py: starts SLURM_NTASKS copies of the command on this
# machine, one per "node", each with the variables srun sets for its task; fails if any task fails.
set -euo pipefail
pids=()
for ((task = 0; task < SLURM_NTASKS; task++)); do
    SLURM_PROCID=$task SLURM_LOCALID=0 SLURM_NODEID=$task "$@" &
    pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=$?
done
trap - EXIT
exit "$status"
