"""What a user waits for: the whole ``textcnn train`` command against a tutorial-style script.

Each run is a fresh process timed from its launch to its exit, start-up included, with the same
number of epochs: ``benchmarks/tutorial_textcnn.py`` (Kim CNN-rand as tutorials write it) and
``textcnn train --config CONFIG --trainer.max_epochs=EPOCHS``. For textcnn, a callback stamps the
phases (imports; config, data, tokenizer and vectors; sanity check up to the first step; training;
the final evaluation of the best checkpoint), so the seconds before the first step and after the
last are visible. Run on an idle machine:

    .venv/bin/python scripts/benchmark_whole_command.py --epochs 5 --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from pytorch_lightning import Callback

from benchmarks import DATA_DIR, ROOT

PHASE_LOG = "TEXTCNN_BENCHMARK_PHASE_LOG"
CHILD = (
    "import json, os, sys, time\n"
    f"sys.path.insert(0, {str(ROOT)!r})\n"
    "def stamp(name):\n"
    f"    with open(os.environ[{PHASE_LOG!r}], 'a') as log: log.write(json.dumps([name, time.time()]) + '\\n')\n"
    "from textcnn.cli import exit_after, main\n"
    "import textcnn.training.run\n"
    "stamp('imported')\n"
    "exit_after(lambda: (main(['train', *sys.argv[1:]]), stamp('evaluated')))\n"  # as the textcnn command ends
)
PHASES = [  # (label, from stamp, to stamp)
    ("python + imports", "launched", "imported"),
    ("config, data, tokenizer, vectors", "imported", "setup"),
    ("sanity check, first batch", "setup", "first_step"),
    ("training", "first_step", "train_end"),
    ("final evaluation", "train_end", "evaluated"),
    ("exit", "evaluated", "exited"),
]


class PhaseClock(Callback):
    """Appends ``[phase, unix time]`` lines to the file named by the environment variable."""

    def __init__(self):
        self.stepped = False

    def _stamp(self, name: str) -> None:
        with open(os.environ[PHASE_LOG], "a") as log:
            log.write(json.dumps([name, time.time()]) + "\n")

    def setup(self, trainer, pl_module, stage):
        self._stamp("setup")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not self.stepped:
            self.stepped = True
            self._stamp("first_step")

    def on_train_epoch_end(self, trainer, pl_module):
        self._stamp("epoch_end")

    def on_train_end(self, trainer, pl_module):
        self._stamp("train_end")


def run_textcnn(config: str, epochs: Optional[int], seed: int, run_dir: Path, extra: list[str]) -> dict:
    """One ``textcnn train`` command timed from launch to exit; ``epochs`` None: the config's own."""
    log = run_dir / f"phases-{seed}.jsonl"
    args = ["--config", config, *([f"--trainer.max_epochs={epochs}"] if epochs else []), f"--seed_everything={seed}",
            f"--trainer.default_root_dir={run_dir / f'textcnn-{seed}'}",
            "--trainer.callbacks+=benchmarks.whole_command.PhaseClock", *extra]
    launched = time.time()
    result = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True,
                            env={**os.environ, PHASE_LOG: str(log), "PYTHONPATH": str(ROOT)})
    exited = time.time()
    if result.returncode != 0:
        raise SystemExit(f"textcnn train failed: {result.stderr[-2000:]}")
    stamps: dict[str, float] = {"launched": launched, "exited": exited}
    epoch_ends = []
    for line in log.read_text().splitlines():
        name, at = json.loads(line)
        if name == "epoch_end":
            epoch_ends.append(at)
        stamps.setdefault(name, at)
    report = json.loads(result.stdout[result.stdout.index("{"):])
    phases = {label: stamps[end] - stamps[start] for label, start, end in PHASES}
    return {"total_s": exited - launched, "phases": phases, "epochs": len(epoch_ends),
            "test_accuracy": report["accuracy"], "checkpoint": report["checkpoint"]}


def run_tutorial(dataset: str, epochs: int, seed: int) -> dict:
    launched = time.time()
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tutorial_textcnn.py"), dataset, str(epochs),
                             str(seed)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the tutorial script failed: {result.stderr[-2000:]}")
    accuracy = float(result.stdout.split("test_accuracy")[-1])
    return {"total_s": time.time() - launched, "test_accuracy": accuracy}


def mean(values) -> float:
    return statistics.fmean(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "sst2.yaml"))
    parser.add_argument("--dataset", default=str(DATA_DIR / "sst2"), help="the tutorial script's data (the config's)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--textcnn-args", nargs="*", default=[], help="extra overrides for textcnn train")
    args = parser.parse_args()
    tutorial, textcnn = [], []
    with tempfile.TemporaryDirectory(prefix="whole-command-") as run_dir:
        for seed in args.seeds:  # interleaved, so a change in the machine's load hits both alike
            tutorial.append(run_tutorial(args.dataset, args.epochs, seed))
            textcnn.append(run_textcnn(args.config, args.epochs, seed, Path(run_dir), args.textcnn_args))
            print(f"seed {seed}: tutorial {tutorial[-1]['total_s']:.1f} s {tutorial[-1]['test_accuracy']:.2%}, "
                  f"textcnn {textcnn[-1]['total_s']:.1f} s {textcnn[-1]['test_accuracy']:.2%}", file=sys.stderr)
    tutorial_s, textcnn_s = mean(r["total_s"] for r in tutorial), mean(r["total_s"] for r in textcnn)
    print(f"Whole command, {args.epochs} epochs, mean of seeds {', '.join(map(str, args.seeds))}, "
          f"each a fresh process timed from launch to exit:\n")
    print("| command | wall time | test accuracy |\n|---|---|---|")
    print(f"| tutorial-style script | {tutorial_s:.1f} s | {mean(r['test_accuracy'] for r in tutorial):.1%} |")
    print(f"| `textcnn train` | {textcnn_s:.1f} s | {mean(r['test_accuracy'] for r in textcnn):.1%} |")
    print(f"| speed-up | {tutorial_s / textcnn_s:.2f}× | |\n")
    print("Where the textcnn command's seconds go (mean):\n\n| phase | seconds |\n|---|---|")
    for label, _, _ in PHASES:
        print(f"| {label} | {mean(r['phases'][label] for r in textcnn):.2f} |")
    print(f"| epochs run (early stopping may end sooner) | {mean(r['epochs'] for r in textcnn):.1f} |")
