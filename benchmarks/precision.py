"""Does bf16 keep the default recipe's accuracy? fp32 against bf16-mixed training, same seeds and splits.

Each run is the default recipe (``configs/sst2.yaml``'s model on a dataset's own columns and splits,
as the accuracy benchmark trains it), in a fresh process, scored on the test split by its best
validation epoch; the table gives the mean and std over seeds and the mean training time:

    .venv/bin/python scripts/benchmark_precision.py --datasets sst2 trec --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import DATA_DIR, ROOT
from benchmarks.protocol import DATASETS, recipe_args

PRECISIONS = ("32-true", "bf16-mixed")


def train_once(dataset: str, seed: int, precision: str, run_dir: str) -> dict:
    args = ["--config", str(ROOT / "configs" / "sst2.yaml"), *recipe_args(DATASETS[dataset], DATA_DIR / dataset),
            f"--seed_everything={seed}", f"--trainer.precision={precision}", f"--trainer.default_root_dir={run_dir}"]
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "textcnn", "train", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{dataset} seed {seed} {precision} failed: {result.stderr[-2000:]}")
    report = json.loads(result.stdout[result.stdout.index("{"):])
    return {"test_accuracy": report["accuracy"], "seconds": time.monotonic() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["sst2", "trec"], choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="precision-") as run_dir:
        for dataset in args.datasets:
            runs: dict[str, list[dict]] = {precision: [] for precision in PRECISIONS}
            for seed in args.seeds:  # the precisions interleaved, so the machine's load hits both alike
                for precision in PRECISIONS:
                    runs[precision].append(train_once(dataset, seed, precision, f"{run_dir}/{dataset}-{seed}-{precision}"))
                    print(f"{dataset} seed {seed} {precision}: {runs[precision][-1]}", file=sys.stderr)
            rows.append((dataset, runs))
    print(f"Default recipe, test accuracy % (mean ± std over seeds {', '.join(map(str, args.seeds))}) and the "
          "mean wall time of the whole training command:\n")
    print("| dataset | fp32 | bf16-mixed | difference | fp32 time | bf16 time |\n|---|---|---|---|---|---|")
    for dataset, runs in rows:
        accuracy = {p: [100 * r["test_accuracy"] for r in runs[p]] for p in PRECISIONS}
        seconds = {p: statistics.fmean(r["seconds"] for r in runs[p]) for p in PRECISIONS}
        spread = {p: statistics.stdev(accuracy[p]) if len(accuracy[p]) > 1 else 0.0 for p in PRECISIONS}
        mean = {p: statistics.fmean(accuracy[p]) for p in PRECISIONS}
        print(f"| {DATASETS[dataset].name} | {mean['32-true']:.1f} ± {spread['32-true']:.1f} | "
              f"{mean['bf16-mixed']:.1f} ± {spread['bf16-mixed']:.1f} | {mean['bf16-mixed'] - mean['32-true']:+.1f} | "
              f"{seconds['32-true']:.0f} s | {seconds['bf16-mixed']:.0f} s |")
