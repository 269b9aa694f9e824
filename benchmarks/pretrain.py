"""Time and peak memory of what unlabelled text adds to a run, on files of growing size.

For each ``--sizes-mb`` a plain text file (one text per line) is written to a temporary directory by
cycling through a dataset's texts (IMDB's 50,000 reviews by default), so its vocabulary stays that
of the dataset while the file grows. A fresh child process then does, on the file streamed, what
``textcnn train --data.unlabeled_file`` and ``textcnn pretrain`` do with it, each stage timed:

* the digest that names the cached vectors (the file's bytes hashed);
* self-training's pass, a seeded sample of 20,000 texts (a reservoir);
* gensim's vectors with the recipe's settings (``--epochs`` sets the passes: the recipe's 5, or
  fewer to time a large file).

Each child reports its peak resident memory (``ru_maxrss``) and the floor after its imports. Run
with nothing else on the machine for stable figures:

    .venv/bin/python scripts/benchmark_pretrain.py --sizes-mb 100 1000 --epochs 1 --output runs/pretrain.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import DATA_DIR, run_in_child, write_outputs


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def write_corpus(path: Path, megabytes: float, dataset: str) -> int:
    """``megabytes`` of the dataset's texts, one a line, cycled; returns the number of lines."""
    import datasets

    loaded = datasets.load_dataset(str(DATA_DIR / dataset))
    texts = [" ".join(text.split()) for split in loaded.values() for text in split["text"]]
    target, written, lines = int(megabytes * 1e6), 0, 0
    with open(path, "w", encoding="utf-8") as handle:
        while written < target:
            for text in texts:
                handle.write(text + "\n")
                written, lines = written + len(text.encode("utf-8")) + 1, lines + 1
                if written >= target:
                    break
    return lines


def child(path: str, epochs: int) -> dict:
    """The stages, timed, in this fresh process."""
    from textcnn.training.pretrain import VectorRecipe, digest, train_vectors, unlabeled_texts
    from textcnn.training.self_training import sample_pool

    floor, found = peak_rss_mb(), {}
    texts = unlabeled_texts(path)
    started = time.monotonic()
    digest(path, lambda: [], VectorRecipe(epochs=epochs))
    found["digest_s"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    sample_pool(texts(), set())
    found["sample_s"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    vectors = train_vectors([texts], VectorRecipe(epochs=epochs))
    found["vectors_s"] = round(time.monotonic() - started, 1)
    found.update(words=len(vectors), floor_mb=round(floor), peak_rss_mb=round(peak_rss_mb()))
    return found


def table(results: list[dict]) -> str:
    lines = ["| unlabelled file | texts | vectors' epochs | digest | self-training's sample | vectors | words kept "
             "| peak RSS (floor after imports) |", "|---|---|---|---|---|---|---|---|"]
    for found in results:
        lines.append(f"| {found['megabytes']:,.0f} MB | {found['texts']:,} | {found['epochs']} | {found['digest_s']} s "
                     f"| {found['sample_s']} s | {found['vectors_s']} s | {found['words']:,} "
                     f"| {found['peak_rss_mb']:,} MB ({found['floor_mb']:,} MB) |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[100, 1000])
    parser.add_argument("--epochs", type=int, default=5, help="the vectors' passes (the recipe's: 5)")
    parser.add_argument("--dataset", default="imdb", help="a folder of the data directory with a text column")
    parser.add_argument("--output", help="write the Markdown table (and the JSON beside it) here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.epochs)))
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="textcnn-pretrain-") as folder:
        for megabytes in args.sizes_mb:
            path = Path(folder) / f"unlabelled-{megabytes:g}mb.txt"
            texts = write_corpus(path, megabytes, args.dataset)
            found = run_in_child("pretrain", ["--child", str(path), "--epochs", str(args.epochs)])
            results.append({"megabytes": os.path.getsize(path) / 1e6, "texts": texts, "epochs": args.epochs, **found})
            print(json.dumps(results[-1]), flush=True)
            path.unlink()
    write_outputs(args.output, table(results), results)
    print(table(results))


if __name__ == "__main__":
    main()
