"""Keep training a model on new data (``--init_from``) against training from scratch on that data.

TREC (6 coarse classes): a model trained on the questions of the four classes other than NUM and
LOC is continued on 1,000 questions of all six classes; the same 1,000 questions train a model from
scratch. Both are scored on the whole TREC test split. Labels are written as strings, as a
practitioner's CSV holds them, so the first model knows four classes only.

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

from benchmarks import DATA_DIR, write_outputs

LEFT_OUT = ("NUM", "LOC")


def as_frame(split: datasets.Dataset):
    names = split.features["coarse_label"].names
    frame = split.to_pandas()[["text", "coarse_label"]]
    frame["label"] = [names[i] for i in frame.pop("coarse_label")]
    return frame


def run(new_rows: int, seed: int, root: Path) -> dict:
    import textcnn

    trec = datasets.load_dataset(str(DATA_DIR / "trec"))
    train, test = as_frame(trec["train"].shuffle(seed=seed)), as_frame(trec["test"])
    old, new = train.iloc[new_rows:], train.iloc[:new_rows]  # disjoint: the new rows are not in the first model
    old = old[~old["label"].isin(LEFT_OUT)]
    results = {}
    started = time.monotonic()
    first = textcnn.train(old, test=test[~test["label"].isin(LEFT_OUT)],
                          **{"seed_everything": seed, "trainer.default_root_dir": str(root / "first")})
    results["first"] = {"rows": len(old), "classes": first.predictor.label_names,
                        "test_accuracy_on_its_classes": first.metrics["test"]["accuracy"],
                        "seconds": round(time.monotonic() - started, 1)}
    for name, init_from in (("continued", first.checkpoint), ("scratch", None)):
        started = time.monotonic()
        result = textcnn.train(new, test=test, init_from=init_from,
                               **{"seed_everything": seed, "trainer.default_root_dir": str(root / name)})
        predicted = {p["label"] for p in result.predictor.predict(list(test["text"]))}
        results[name] = {"rows": len(new), "classes": result.predictor.label_names,
                         "test_accuracy": result.metrics["test"]["accuracy"],
                         "classes_predicted_on_test": sorted(predicted),
                         "vocabulary": result.predictor.tokenizer.get_vocab_size(),
                         "seconds": round(time.monotonic() - started, 1)}
        print(json.dumps({name: results[name]}), flush=True)
    return results


def table(results: dict) -> str:
    first, continued, scratch = results["first"], results["continued"], results["scratch"]
    return "\n".join([
        "| model | trained on | classes | TREC test accuracy (500 questions, 6 classes) | classes predicted | vocabulary |",
        "|---|---|---|---|---|---|",
        f"| first | {first['rows']:,} questions without NUM and LOC | {len(first['classes'])} | "
        f"{first['test_accuracy_on_its_classes']:.1%} on its 4 classes' test questions | — | — |",
        f"| continued (`--init_from` the first) | {continued['rows']:,} questions of all classes | "
        f"{len(continued['classes'])} | **{continued['test_accuracy']:.1%}** | "
        f"{len(continued['classes_predicted_on_test'])} | {continued['vocabulary']:,} |",
        f"| from scratch | the same {scratch['rows']:,} questions | {len(scratch['classes'])} | "
        f"{scratch['test_accuracy']:.1%} | {len(scratch['classes_predicted_on_test'])} | {scratch['vocabulary']:,} |",
    ])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="write the Markdown table (and the JSON beside it) here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="textcnn-continue-") as root:
        results = run(args.new_rows, args.seed, Path(root))
    write_outputs(args.output, table(results), results)
    print(table(results))


if __name__ == "__main__":
    main()
