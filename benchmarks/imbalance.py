"""What ``model.class_weights: balanced`` buys on imbalanced data: SST-2 with positives cut to one
in ten (train, validation and test alike, seeded), the default recipe trained as it is and with
balanced class weights (checkpoints chosen by ``val_macro_f1``), beside the linear baselines on the
same splits: fastText bigrams and TF-IDF + LR as the accuracy benchmark runs them (chosen on
validation accuracy), and TF-IDF + LR with balanced class weights, ``C`` chosen on validation
macro-F1; macro-F1 and accuracy on test.

    python scripts/benchmark_imbalance.py --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np

from benchmarks import DATA_DIR, ROOT
from benchmarks.baselines import fasttext_bigrams, tfidf_logreg
from textcnn.training.run import fit_and_evaluate

SETTINGS = {
    "plain": [],
    "balanced": ["--model.class_weights=balanced", "--checkpoint.monitor=val_macro_f1",
                 "--early_stopping.monitor=val_macro_f1", "--checkpoint.filename=best-{epoch}-{val_macro_f1:.4f}"],
}


def imbalanced_sst2(directory: Path, positive_share: float = 0.1, seed: int = 0) -> Path:
    """SST-2 with every negative sentence and positives cut to ``positive_share`` of each split."""
    full = datasets.load_dataset(str(DATA_DIR / "sst2"))
    rng = np.random.default_rng(seed)
    for split, rows in full.items():
        labels = np.asarray(rows["label"])
        negatives, positives = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
        keep = round(len(negatives) * positive_share / (1 - positive_share))
        chosen = np.sort(np.concatenate([negatives, rng.choice(positives, size=keep, replace=False)]))
        rows.select(chosen).to_parquet(str(directory / f"{split}.parquet"))
    return directory


def scores(predictions: Sequence[int], labels: Sequence[int]) -> dict[str, float]:
    """Macro-F1, accuracy and the rare (positive) class's F1 of binary predictions."""
    from sklearn.metrics import accuracy_score, f1_score

    return {"macro_f1": float(f1_score(labels, predictions, average="macro")),
            "accuracy": float(accuracy_score(labels, predictions)),
            "positive_f1": float(f1_score(labels, predictions, pos_label=1))}


def macro_f1(predictions: Sequence[int], labels: Sequence[int]) -> float:
    return scores(predictions, labels)["macro_f1"]


def baselines(data: Path, seed: int) -> dict[str, dict[str, float]]:
    """The linear baselines' test scores on the imbalanced splits (fastText's depends on the seed)."""
    splits = datasets.load_dataset(str(data))
    train, validation = ((splits[s]["text"], splits[s]["label"]) for s in ("train", "validation"))
    texts, labels = splits["test"]["text"], splits["test"]["label"]
    results = [fasttext_bigrams(train, validation, texts, seed=seed), tfidf_logreg(train, validation, texts),
               tfidf_logreg(train, validation, texts, class_weight="balanced", score=macro_f1)]
    return {result.name: scores(result.test_predictions, labels) for result in results}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--max-epochs", type=int, default=15)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        data = imbalanced_sst2(Path(scratch))
        counts = {split: np.bincount(datasets.load_dataset(str(data), split=split)["label"]).tolist()
                  for split in ("train", "validation", "test")}
        print(json.dumps({"rows per class (negative, positive)": counts}))
        results: dict[str, list[dict]] = {name: [] for name in SETTINGS}
        for seed in args.seeds:
            for name, extra in SETTINGS.items():
                report = fit_and_evaluate([
                    "--config", str(ROOT / "configs" / "sst2.yaml"), f"--data.path={data}", f"--seed_everything={seed}",
                    f"--trainer.max_epochs={args.max_epochs}", f"--trainer.default_root_dir={Path(scratch) / name / str(seed)}",
                    "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", *extra])
                results[name].append({"seed": seed, "macro_f1": report["macro_f1"], "accuracy": report["accuracy"],
                                      "positive_f1": report["per_class"]["positive"]["f1"]})
                print(json.dumps({"setting": name, **results[name][-1]}))
            for name, result in baselines(data, seed).items():
                results.setdefault(name, []).append({"seed": seed, **result})
                print(json.dumps({"setting": name, **results[name][-1]}))
    for name, runs in results.items():
        summary = {key: round(100 * statistics.mean(run[key] for run in runs), 1)
                   for key in ("macro_f1", "accuracy", "positive_f1")}
        print(json.dumps({"setting": name, "seeds": len(runs), "mean %": summary}))


if __name__ == "__main__":
    main()
