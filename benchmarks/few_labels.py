"""Few labels, much unlabelled text: the default recipe on a few hundred labelled rows, without and with
the rest of the training split as ``unlabeled`` text, against TF-IDF + LR and fastText on the same rows.

For each dataset and seed a seeded sample of N training rows is labelled (90% train, 10% validation, stratified:
the same rows for every model); the other training texts, without their labels, are the unlabelled
text; the test split is the dataset's own and is never used as unlabelled text.

    python scripts/benchmark_few_labels.py --output runs/few_labels.md
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np

from benchmarks import DATA_DIR, mean_sd, write_outputs
from benchmarks.baselines import fasttext_bigrams, tfidf_logreg

# dataset → (folder, label column, labelled rows); IMDB: reviews, the document recipe
SETS = {"chnsenticorp": ("chnsenticorp", "label", 500), "trec": ("trec", "coarse_label", 500),
        "mr": ("rotten_tomatoes", "label", 1000), "imdb": ("imdb", "label", 1000)}


def splits(name: str, seed: int = 0) -> dict:
    from sklearn.model_selection import train_test_split

    folder, label_column, rows = SETS[name]
    data = datasets.load_dataset(str(DATA_DIR / folder))
    train = data["train"].shuffle(seed=seed)
    labelled, unlabeled = train.select(range(rows)), train.select(range(rows, len(train)))
    texts, labels = list(labelled["text"]), list(labelled[label_column])
    fit_texts, val_texts, fit_labels, val_labels = train_test_split(texts, labels, test_size=0.1, stratify=labels,
                                                                    random_state=seed)
    return {"train": (fit_texts, fit_labels), "validation": (val_texts, val_labels),
            "test": (list(data["test"]["text"]), list(data["test"][label_column])),
            "unlabeled": list(unlabeled["text"]), "names": data["train"].features[label_column].names}


def textcnn_accuracy(split: dict, seed: int, root: Path, unlabeled: bool) -> dict:
    import textcnn

    names = split["names"]
    as_pair = lambda part: (part[0], [names[i] for i in part[1]])  # noqa: E731 (labels as a CSV holds them)
    started = time.monotonic()
    decisions, logger = _Decisions(), logging.getLogger("textcnn")
    level = logger.level
    logger.addHandler(decisions)
    logger.setLevel(logging.INFO)
    try:
        result = textcnn.train(as_pair(split["train"]), as_pair(split["validation"]), as_pair(split["test"]),
                               unlabeled=split["unlabeled"] if unlabeled else None,
                               **{"seed_everything": seed, "trainer.default_root_dir": str(root),
                                  "trainer.enable_progress_bar": False})
    finally:
        logger.removeHandler(decisions)
        logger.setLevel(level)
    return {"test_accuracy": result.metrics["test"]["accuracy"],
            "validation_accuracy": result.metrics["validation"]["accuracy"], "seconds": round(time.monotonic() - started, 1),
            "decisions": decisions.lines}


class _Decisions(logging.Handler):
    """The recipe's lines about the unlabelled text: which model each lever kept."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(("unlabelled text: validation", "self-training:")):
            self.lines.append(message)


def run(name: str, seeds: Sequence[int], root: Path) -> dict:
    """Each seed samples its own labelled rows: the baselines and both textcnn variants train on them."""
    results: dict = {"runs": []}
    for seed in seeds:
        split = splits(name, seed)
        test_labels = np.asarray(split["test"][1])
        found = {"seed": seed, "labelled": len(split["train"][0]) + len(split["validation"][0]),
                 "unlabeled": len(split["unlabeled"])}
        for baseline in (tfidf_logreg, fasttext_bigrams):
            predicted = baseline(split["train"], split["validation"], split["test"][0], seed=seed)
            found[predicted.name] = {"test_accuracy": float(np.mean(predicted.test_predictions == test_labels)),
                                     "setting": predicted.setting}
        for variant, unlabeled in (("textcnn", False), ("textcnn + unlabelled text", True)):
            found[variant] = textcnn_accuracy(split, seed, root / name / str(seed), unlabeled)
        results["runs"].append(found)
        print(json.dumps({name: found}), flush=True)
    return results


COLUMNS = ("TF-IDF 1-2-gram + LR", "fastText bigrams", "textcnn", "textcnn + unlabelled text")


def table(results: dict) -> str:
    lines = ["| set | labelled rows | unlabelled texts | " + " | ".join(COLUMNS) + " |", "|---|---|---|---|---|---|---|"]
    for name, found in results.items():
        runs = found["runs"]
        cells = " | ".join(mean_sd([run[column] for run in runs], "test_accuracy") for column in COLUMNS)
        lines.append(f"| {name} | {runs[0]['labelled']:,} | {runs[0]['unlabeled']:,} | {cells} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=list(SETS), default=list(SETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", help="write the Markdown table (and the JSON beside it) here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="textcnn-few-labels-") as root:
        results = {name: run(name, args.seeds, Path(root)) for name in args.datasets}
    write_outputs(args.output, table(results), results)
    print(table(results))


if __name__ == "__main__":
    main()
