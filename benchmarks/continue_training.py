"""Keep training a model on new data (``--init_from``) against training from scratch on that data.

Two experiments, the default recipe throughout, labels written as strings as a practitioner's CSV
holds them:

* ``classes`` — TREC (6 coarse classes): a model trained on the questions of the four classes other
  than NUM and LOC is continued on 1,000 other questions of all six classes, with its vocabulary
  grown by the new questions' words and with it kept; the same 1,000 questions train a model from
  scratch. All are scored on the whole TREC test split.
* ``domain`` — SST-2 → MR: a model trained on SST-2 is continued on 1,000 MR reviews (MR's
  ``neg`` / ``pos`` written as SST-2's ``negative`` / ``positive``), without and with
  ``--data.replay_file`` (SST-2's training sentences: as many of them mixed in as there are new
  rows); against a model from scratch on the 1,000 MR reviews, and one from scratch on both
  (SST-2's training sentences and the 1,000 reviews). Each is scored on MR's test split (the new
  domain) and SST-2's (the old one).

    python scripts/benchmark_continue_training.py --output runs/continue_training.md
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import datasets
import pandas

from benchmarks import DATA_DIR, mean_sd, write_outputs

LEFT_OUT = ("NUM", "LOC")
KEEP_VOCABULARY = {"data.min_frequency": 10 ** 9}  # no word of the new data occurs this often


def as_frame(split: datasets.Dataset, label_column: str = "label", names: Sequence[str] | None = None):
    """``text`` and the label as a string (``names`` in the column's id order, else its own)."""
    names = names or split.features[label_column].names
    frame = split.to_pandas()[["text", label_column]]
    frame["label"] = [names[i] for i in frame.pop(label_column)]
    return frame


def trained(name: str, data, root: Path, seed: int, **settings):
    import textcnn

    started = time.monotonic()
    result = textcnn.train(data, **settings, **{"seed_everything": seed,
                                                "trainer.default_root_dir": str(root / f"{name}-{seed}")})
    return result, round(time.monotonic() - started, 1)


def accuracy(result, frame) -> float:
    predictions = result.predictor.predict(list(frame["text"]))
    return sum(p["label"] == gold for p, gold in zip(predictions, frame["label"])) / len(frame)


def new_classes(new_rows: int, seeds: Sequence[int], root: Path) -> dict:
    trec = datasets.load_dataset(str(DATA_DIR / "trec"))
    train, test = as_frame(trec["train"].shuffle(seed=0), "coarse_label"), as_frame(trec["test"], "coarse_label")
    old, new = train.iloc[new_rows:], train.iloc[:new_rows]  # disjoint: the new rows are not in the first model
    old = old[~old["label"].isin(LEFT_OUT)]
    first, seconds = trained("first", old, root, 0, test=test[~test["label"].isin(LEFT_OUT)])
    results = {"first": {"rows": len(old), "classes": first.predictor.label_names, "seconds": seconds,
                         "vocabulary": first.predictor.tokenizer.get_vocab_size(),
                         "test_accuracy_on_its_classes": first.metrics["test"]["accuracy"]}}
    variants = {"continued": {"init_from": first.checkpoint},
                "continued, vocabulary kept": {"init_from": first.checkpoint, **KEEP_VOCABULARY},
                "scratch": {}}
    for name, settings in variants.items():
        runs = []
        for seed in seeds:
            result, seconds = trained(name.replace(", ", "-").replace(" ", "-"), new, root, seed, test=test, **settings)
            predicted = {p["label"] for p in result.predictor.predict(list(test["text"]))}
            runs.append({"seed": seed, "test_accuracy": result.metrics["test"]["accuracy"], "seconds": seconds,
                         "classes": len(result.predictor.label_names), "classes_predicted_on_test": len(predicted),
                         "vocabulary": result.predictor.tokenizer.get_vocab_size()})
            print(json.dumps({name: runs[-1]}), flush=True)
        results[name] = {"rows": len(new), "runs": runs}
    return results


def new_domain(new_rows: int, seeds: Sequence[int], root: Path) -> dict:
    sst2 = datasets.load_dataset(str(DATA_DIR / "sst2"))
    names = sst2["train"].features["label"].names  # negative, positive: MR's neg, pos in the same order
    mr = datasets.load_dataset(str(DATA_DIR / "rotten_tomatoes"))
    old_train, old_test = as_frame(sst2["train"]), as_frame(sst2["test"])
    new, new_test = as_frame(mr["train"].shuffle(seed=0), names=names).iloc[:new_rows], as_frame(mr["test"], names=names)
    root.mkdir(parents=True, exist_ok=True)
    replay = root / "sst2-train.csv"
    old_train.to_csv(replay, index=False)
    first, seconds = trained("first", old_train, root, 0, validation=as_frame(sst2["validation"]), test=old_test)
    results = {"first": {"rows": len(old_train), "seconds": seconds, "old_test_accuracy": accuracy(first, old_test),
                         "new_test_accuracy": accuracy(first, new_test)}}
    variants = {"continued": (new, {"init_from": first.checkpoint}),
                "continued with replay": (new, {"init_from": first.checkpoint, "data.replay_file": str(replay)}),
                "scratch on the new rows": (new, {}),
                "scratch on both": (pandas.concat([old_train, new], ignore_index=True), {})}
    for name, (data, settings) in variants.items():
        runs = []
        for seed in seeds:
            result, seconds = trained(name.replace(" ", "-"), data, root, seed, **settings)
            runs.append({"seed": seed, "rows": len(data), "seconds": seconds,
                         "new_test_accuracy": accuracy(result, new_test), "old_test_accuracy": accuracy(result, old_test)})
            print(json.dumps({name: runs[-1]}), flush=True)
        results[name] = {"runs": runs}
    return results


def classes_table(results: dict) -> str:
    first = results["first"]
    lines = [
        "| model | trained on | TREC test accuracy (500 questions, 6 classes) | classes predicted on test | vocabulary |",
        "|---|---|---|---|---|",
        f"| first | {first['rows']:,} questions without NUM and LOC | {first['test_accuracy_on_its_classes']:.1%} "
        f"on its 4 classes' test questions | — | {first['vocabulary']:,} |",
    ]
    for name, label in (("continued", "continued (`--init_from` the first), vocabulary grown"),
                        ("continued, vocabulary kept", "continued, vocabulary kept"), ("scratch", "from scratch")):
        runs = results[name]["runs"]
        lines.append(f"| {label} | {results[name]['rows']:,} questions of all classes | {mean_sd(runs, 'test_accuracy')} | "
                     f"{min(run['classes_predicted_on_test'] for run in runs)}–"
                     f"{max(run['classes_predicted_on_test'] for run in runs)} | {runs[0]['vocabulary']:,} |")
    return "\n".join(lines)


def domain_table(results: dict) -> str:
    first = results["first"]
    lines = [
        "| model | trained on | MR test (new domain) | SST-2 test (old domain) |",
        "|---|---|---|---|",
        f"| first | SST-2 train ({first['rows']:,} sentences) | {first['new_test_accuracy']:.1%} | "
        f"{first['old_test_accuracy']:.1%} |",
    ]
    for name, trained_on in (("continued", "the first, continued on 1,000 MR reviews"),
                             ("continued with replay", "the same, with `--data.replay_file` SST-2 train"),
                             ("scratch on the new rows", "from scratch on the 1,000 MR reviews"),
                             ("scratch on both", "from scratch on SST-2 train and the 1,000 MR reviews")):
        runs = results[name]["runs"]
        lines.append(f"| {name} | {trained_on} | {mean_sd(runs, 'new_test_accuracy')} | "
                     f"{mean_sd(runs, 'old_test_accuracy')} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", choices=["classes", "domain"], default=["classes", "domain"])
    parser.add_argument("--new-rows", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds of the continued and scratch runs (the first model: seed 0)")
    parser.add_argument("--output", help="write the Markdown tables (and the JSON beside them) here")
    args = parser.parse_args(argv)
    results, tables = {}, []
    with tempfile.TemporaryDirectory(prefix="textcnn-continue-") as root:
        if "classes" in args.experiments:
            results["classes"] = new_classes(args.new_rows, args.seeds, Path(root) / "classes")
            tables.append(classes_table(results["classes"]))
        if "domain" in args.experiments:
            results["domain"] = new_domain(args.new_rows, args.seeds, Path(root) / "domain")
            tables.append(domain_table(results["domain"]))
    write_outputs(args.output, "\n\n".join(tables), results)
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
