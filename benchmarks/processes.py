"""One process against two torchrun "nodes" on the same machine: the same config, the whole command.

Each run is a fresh command timed from launch to exit (start-up and the final test scoring included);
``benchmarks.whole_command.PhaseClock`` stamps when training starts and ends, so the training
throughput (examples per second of the training phase, all processes together) is shown apart from
start-up. The two-node run is ``scripts/torchrun_two_nodes.sh`` on loopback (gloo), each process
with ``OMP_NUM_THREADS`` threads. Run on an idle machine:

    .venv/bin/python scripts/benchmark_processes.py --epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import ROOT
from benchmarks.whole_command import PHASE_LOG


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def timed_run(processes: int, args: list[str], run_dir: Path, threads: int) -> dict:
    """One training command with 1 process (``python -m textcnn``) or 2 (the torchrun script)."""
    log = run_dir / f"phases-{processes}.jsonl"
    overrides = [*args, f"--trainer.default_root_dir={run_dir / f'runs-{processes}'}",
                 "--trainer.callbacks+=benchmarks.whole_command.PhaseClock"]
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, PHASE_LOG: str(log), "OMP_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "PATH": os.pathsep.join([str(venv_bin), os.environ["PATH"]]), "TORCHRUN": str(venv_bin / "torchrun")}
    command = ([sys.executable, "-m", "textcnn", "train", *overrides] if processes == 1 else
               [str(ROOT / "scripts" / "torchrun_two_nodes.sh"), str(free_port()), *overrides])
    launched = time.time()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=3600)
    exited = time.time()
    if result.returncode:
        raise SystemExit(f"{processes}-process run failed:\n{result.stderr[-3000:]}")
    stamps: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():  # both processes stamp the same file
        name, at = json.loads(line)
        stamps.setdefault(name, []).append(at)
    report = json.loads(result.stdout[result.stdout.index("{"):])
    train_rows = int(re.search(r"data: train ([\d,]+)", result.stderr).group(1).replace(",", ""))  # the data module's own count
    return {"processes": processes, "wall_s": exited - launched, "train_rows": train_rows,
            "training_s": max(stamps["train_end"]) - min(stamps["first_step"]),
            "test_accuracy": report["accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/sst2.yaml")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each process")
    parser.add_argument("--train-args", nargs="*", default=[], help="extra overrides for textcnn train")
    args = parser.parse_args()
    common = ["--config", args.config, f"--trainer.max_epochs={args.epochs}", "--early_stopping.patience=100",
              "--trainer.enable_progress_bar=false", *args.train_args]
    with tempfile.TemporaryDirectory(prefix="processes-") as run_dir:
        runs = [timed_run(n, common, Path(run_dir), args.threads) for n in (1, 2)]
    print(f"`{args.config}`, {args.epochs} epochs, {os.cpu_count()} CPU cores shared by all processes, "
          f"OMP_NUM_THREADS={args.threads} per process; whole command, launch to exit:\n")
    print("| processes | wall time | training phase | training examples/s | test accuracy |\n|---|---|---|---|---|")
    for run in runs:
        rate = run["train_rows"] * args.epochs / run["training_s"]
        print(f"| {run['processes']} | {run['wall_s']:.1f} s | {run['training_s']:.1f} s | {rate:.0f} | "
              f"{run['test_accuracy']:.1%} |")
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
