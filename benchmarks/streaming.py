"""Peak memory and training speed with ``data.streaming`` on and off, each in a fresh child process.

For each setting one child draws ``--batches`` training batches from the data module alone (the data
pipeline's memory), and another trains the config's model for ``--batches`` batches (no
validation). Each reports its peak resident memory (``ru_maxrss``), and the training child the
seconds until the first batch (loading, tokenizer, encoding) and training examples/s. The
resident memory after the imports (torch, Lightning, datasets) is the floor under every figure.
``--repeat K`` trains on K copies of the training split, written to a temporary directory in
parquet row groups of 10,000 rows, to show how memory grows with the corpus. Run with
``OMP_NUM_THREADS=1`` for stable figures:

    OMP_NUM_THREADS=1 .venv/bin/python scripts/benchmark_streaming.py --config configs/imdb_streaming.yaml --batches 200 --repeat 4
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from benchmarks import run_in_child

START = time.monotonic()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def child(config_path: str, data_path: str, streaming: bool, batches: int, train: bool) -> dict:
    """One figure, in a fresh process: draw ``batches`` batches from the config's data module alone,
    or (``train``) train its model for ``batches`` steps without validation."""
    import pytorch_lightning as pl

    from textcnn.training.build import build, build_data

    floor = peak_rss_mb()
    times = {}

    class Clock(pl.Callback):
        def on_train_start(self, trainer, module):
            times["start"] = time.monotonic()

        def on_train_end(self, trainer, module):
            times["end"] = time.monotonic()

    with tempfile.TemporaryDirectory() as root:  # every child trains its own tokenizer, and keeps nothing
        args = ["--config", config_path, f"--data.path={data_path}", f"--data.streaming={str(streaming).lower()}",
                f"--trainer.default_root_dir={root}"]
        if not train:
            drawn = sum(1 for _, _ in zip(range(batches), build_data(args).train_dataloader()))
            return {"streaming": streaming, "batches": drawn, "rss_after_imports_mb": round(floor),
                    "peak_rss_mb": round(peak_rss_mb())}
        cli = build([*args, f"--trainer.max_steps={batches}", "--trainer.limit_val_batches=0",
                     "--trainer.num_sanity_val_steps=0", "--trainer.logger=false", "--trainer.accelerator=cpu",
                     "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"],
                    callbacks=[Clock()], model_selection=False)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    examples = batches * cli.datamodule.hparams.batch_size
    return {
        "streaming": streaming, "batches": batches, "examples": examples,
        "rss_after_imports_mb": round(floor), "peak_rss_mb": round(peak_rss_mb()),
        "seconds_to_first_batch": round(times["start"] - START, 1),
        "train_examples_per_s": round(examples / (times["end"] - times["start"]), 1),
    }


def repeated_copy(data_path: str, repeat: int, target: Path) -> str:
    """``repeat`` copies of the training split (and the test split once) as parquet, 10,000-row groups."""
    import datasets

    splits = datasets.load_dataset(data_path)
    datasets.concatenate_datasets([splits["train"]] * repeat).to_parquet(str(target / "train.parquet"), batch_size=10000)
    splits["test"].to_parquet(str(target / "test.parquet"), batch_size=10000)
    return str(target)


def run_child(args: argparse.Namespace, data_path: str, mode: str, part: str) -> dict:
    return run_in_child("streaming", ["--config", args.config, "--batches", str(args.batches), "--data-path", data_path,
                                      "--child", mode, "--part", part])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/imdb_streaming.yaml")
    parser.add_argument("--batches", type=int, default=200, help="training batches per run")
    parser.add_argument("--repeat", type=int, default=1, help="train on this many copies of the training split")
    parser.add_argument("--modes", nargs="+", choices=["in-memory", "streaming"], default=["in-memory", "streaming"],
                        help="e.g. only streaming for corpora too large to load")
    parser.add_argument("--data-path", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["streaming", "in-memory"], help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=["data", "train"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.config, args.data_path, args.child == "streaming", args.batches, args.part == "train")))
        return
    from textcnn.training.build import data_settings

    data_path = data_settings(["--config", args.config])["path"]
    with tempfile.TemporaryDirectory(prefix="textcnn-streaming-") as scratch:
        if args.repeat > 1:
            data_path = repeated_copy(data_path, args.repeat, Path(scratch))
        print(f"{args.config}, data {data_path} (train × {args.repeat}), {args.batches} batches")
        print("| data.streaming | peak RSS, data only | peak RSS, training | RSS after imports | s to first batch "
              "| training examples/s |")
        print("|---|---|---|---|---|---|")
        for mode in args.modes:
            alone, trained = run_child(args, data_path, mode, "data"), run_child(args, data_path, mode, "train")
            print(f"| {str(trained['streaming']).lower()} | {alone['peak_rss_mb']:,} MB | {trained['peak_rss_mb']:,} MB "
                  f"| {trained['rss_after_imports_mb']:,} MB | {trained['seconds_to_first_batch']} "
                  f"| {trained['train_examples_per_s']} |", flush=True)


if __name__ == "__main__":
    main()
