#!/usr/bin/env bash
# Two torchrun "nodes" on one machine: the multi-node recipe, run on loopback with gloo so that it can
# be tested without a cluster (tests/test_multinode.py runs this script). On real nodes, run the same
# torchrun line once per node with the rendezvous endpoint on the first node's address, and the
# tokenizer cache on storage every node can read (docs/scaling.md).
#
#   scripts/torchrun_two_nodes.sh PORT [textcnn train arguments...]
#
# Each node runs one process (--nproc-per-node=1) on the CPU; the config's trainer is told the same
# (num_nodes=2, devices=1, ddp). Rank 0 prints the results; if either node fails, the other is stopped.
set -euo pipefail

port=${1:?usage: $0 PORT [textcnn train arguments...]}
shift
TORCHRUN=${TORCHRUN:-torchrun}

node() {
    "$TORCHRUN" --nnodes=2 --nproc-per-node=1 --rdzv-backend=c10d --rdzv-endpoint="127.0.0.1:$port" \
        --rdzv-id=textcnn-two-nodes -m textcnn train \
        --trainer.num_nodes=2 --trainer.devices=1 --trainer.strategy=ddp --trainer.accelerator=cpu "$@"
}

node "$@" &
first=$!
node "$@" &
second=$!
trap 'kill "$first" "$second" 2>/dev/null || true' EXIT
status=0
wait -n "$first" "$second" || status=$?
if [ "$status" -ne 0 ]; then
    exit "$status"
fi
wait "$first" "$second" || status=$?
trap - EXIT
exit "$status"
