"""How well ``textcnn audit`` finds wrong labels: a training split with a share of its labels flipped
(seeded, each to another class drawn uniformly), audited by textcnn (out-of-fold probabilities of the
default recipe, then cleanlab) and by cleanlab over TF-IDF + logistic regression out-of-fold
probabilities on the same folds; recall and precision of the flagged rows for the flipped ones.

    python scripts/benchmark_audit.py --datasets sst2 trec chnsenticorp --output runs/audit.md
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import datasets
import numpy as np

from benchmarks import DATA_DIR, write_outputs
from benchmarks.baselines import LOGREG_C, _unigrams_and_bigrams
from textcnn.training.audit import audit

LABEL_COLUMNS = {"trec": "coarse_label"}


def flipped(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` with ``share`` of them moved to another class (uniformly), and the rows moved."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    rows = rng.choice(len(labels), int(round(share * len(labels))), replace=False)
    noisy = labels.copy()
    for row in rows:
        noisy[row] = rng.choice(classes[classes != labels[row]])
    return noisy, np.sort(rows)


def tfidf_flags(texts: list[str], labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The rows cleanlab flags over TF-IDF 1-2-gram + LR out-of-fold probabilities (``C`` chosen by an
    inner 3-fold search in each fold), on the audit's folds."""
    from cleanlab.filter import find_label_issues
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    classes, ids = np.unique(labels, return_inverse=True)
    pipeline = make_pipeline(TfidfVectorizer(analyzer=_unigrams_and_bigrams, sublinear_tf=True),
                             LogisticRegression(max_iter=1000, random_state=seed))
    search = GridSearchCV(pipeline, {"logisticregression__C": list(LOGREG_C)}, cv=3)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probabilities = cross_val_predict(search, np.asarray(texts, dtype=object), ids, cv=splitter, method="predict_proba")
    return find_label_issues(labels=ids, pred_probs=probabilities, return_indices_ranked_by="self_confidence")


def scores(flagged: Sequence[int], truth: np.ndarray) -> dict[str, float]:
    found = len(set(map(int, flagged)) & set(map(int, truth)))
    return {"flagged": len(flagged), "recall": found / len(truth), "precision": found / len(flagged) if len(flagged) else 0.0}


def run(name: str, share: float, folds: int, seed: int) -> dict:
    rows = datasets.load_dataset(str(DATA_DIR / name))["train"]
    column = LABEL_COLUMNS.get(name, "label")
    texts = [text or "" for text in rows["text"]]
    noisy, truth = flipped(np.asarray(rows[column]), share, seed)
    started = time.monotonic()
    report = audit(texts, noisy, folds=folds, seed=seed)
    textcnn_seconds = time.monotonic() - started
    textcnn_flags = [s["row"] for s in report.suspects if "label" in s["issue"]]
    started = time.monotonic()
    baseline_flags = tfidf_flags(texts, noisy, folds, seed)
    baseline_seconds = time.monotonic() - started
    return {"dataset": name, "rows": len(texts), "flipped": len(truth), "folds": folds, "seed": seed,
            "textcnn": {**scores(textcnn_flags, truth), "seconds": round(textcnn_seconds, 1)},
            "tfidf_lr": {**scores(baseline_flags, truth), "seconds": round(baseline_seconds, 1)}}


def table(results: list[dict]) -> str:
    lines = ["| dataset | rows (flipped) | textcnn audit: recall / precision (flagged) | cleanlab over TF-IDF + LR: "
             "recall / precision (flagged) | seconds (textcnn, TF-IDF) |", "|---|---|---|---|---|"]
    for r in results:
        t, b = r["textcnn"], r["tfidf_lr"]
        lines.append(f"| {r['dataset']} | {r['rows']:,} ({r['flipped']}) | **{t['recall']:.3f} / {t['precision']:.3f}** "
                     f"({t['flagged']}) | {b['recall']:.3f} / {b['precision']:.3f} ({b['flagged']}) | "
                     f"{t['seconds']:.0f}, {b['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["sst2", "trec", "chnsenticorp"])
    parser.add_argument("--share", type=float, default=0.05, help="share of training labels flipped")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="write the Markdown table (and the JSON beside it) here")
    args = parser.parse_args(argv)
    results = []
    for name in args.datasets:  # each dataset's figures printed and written as soon as they are in
        results.append(run(name, args.share, args.folds, args.seed))
        print(json.dumps(results[-1]), flush=True)
        write_outputs(args.output, table(results), results)
    print(table(results))


if __name__ == "__main__":
    main()
