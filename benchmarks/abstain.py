"""How well ``--min-precision`` keeps its promise: the default recipe trained on each dataset's train
split (validation carved from it where the dataset has none), then its test split predicted with
``min_precision`` P through ``Predictor.predict`` (what ``textcnn predict --min-precision`` runs):
the accuracy on the answered test texts against P, and the share answered.

    python scripts/benchmark_abstain.py --datasets sst2 trec chnsenticorp --output runs/abstain.md
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import datasets

from benchmarks import DATA_DIR, write_outputs
from textcnn.inference.selective import row_for_precision

LABEL_COLUMNS = {"trec": "coarse_label"}
PRECISIONS = (0.90, 0.95, 0.99)


def run(name: str, seed: int, root: Path) -> dict:
    import textcnn

    splits = datasets.load_dataset(str(DATA_DIR / name))
    column = LABEL_COLUMNS.get(name, "label")
    started = time.monotonic()
    result = textcnn.train(splits["train"], splits.get("validation"), splits["test"], label_column=column,
                           **{"seed_everything": seed, "trainer.default_root_dir": str(root / name)})
    seconds = time.monotonic() - started
    test = splits["test"]
    texts, labels = [text or "" for text in test["text"]], test[column]
    names = test.features[column].names
    table = result.predictor.risk_coverage
    rows = []
    for precision in PRECISIONS:
        try:
            predictions = result.predictor.predict(texts, min_precision=precision)
        except textcnn.UserInputError as error:  # not reached on validation
            rows.append({"precision": precision, "reached": False, "why": str(error)})
            continue
        answered = [(p["label"], names[label]) for p, label in zip(predictions, labels) if not p["abstained"]]
        right = sum(given == truth for given, truth in answered)
        rows.append({"precision": precision, "reached": True, "coverage": len(answered) / len(texts),
                     "accuracy": right / len(answered) if answered else None,
                     "validation": {name: table[name][row_for_precision(table, precision)]
                                    for name in ("coverage", "accuracy")}})
    return {"dataset": name, "seed": seed, "test_rows": len(texts), "validation_rows": table["num_examples"],
            "test_accuracy": result.metrics["test"]["accuracy"], "train_seconds": round(seconds, 1),
            "targets": rows}


def table(results: list[dict]) -> str:
    lines = ["| dataset | test accuracy (all answered) | target precision | test: accuracy on answered / coverage "
             "| validation: accuracy / coverage |", "|---|---|---|---|---|"]
    for r in results:
        for row in r["targets"]:
            if not row["reached"]:
                cells = "not reached on validation | —"
            else:
                accuracy = "—" if row["accuracy"] is None else f"{row['accuracy']:.1%}"
                cells = (f"**{accuracy}** / {row['coverage']:.1%} | {row['validation']['accuracy']:.1%} / "
                         f"{row['validation']['coverage']:.1%}")
            lines.append(f"| {r['dataset']} ({r['test_rows']:,} test, {r['validation_rows']:,} validation) | "
                         f"{r['test_accuracy']:.1%} | {row['precision']:.2f} | {cells} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["sst2", "trec", "chnsenticorp"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="write the Markdown table (and the JSON beside it) here")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="textcnn-abstain-") as root:
        for name in args.datasets:  # each dataset's figures printed and written as soon as they are in
            results.append(run(name, args.seed, Path(root)))
            print(json.dumps(results[-1]), flush=True)
            write_outputs(args.output, table(results), results)
    print(table(results))


if __name__ == "__main__":
    main()
