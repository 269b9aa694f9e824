"""Multi-label classification: per-class decision thresholds, metrics, and a multi-label set built
from real single-label text.

A multi-label model scores every class independently (sigmoid of its logit) and predicts the set
of classes whose probability reaches that class's threshold. Thresholds are tuned on the validation
split, per class, to maximise that class's F1 over :data:`THRESHOLD_GRID`. A class that the
validation split cannot tune keeps 0.5: fewer than :data:`MIN_POSITIVES` positive examples, or F1 = 0
at every threshold. (For a class the model has barely learned, the F1-optimal threshold is to
predict it for nearly every text, Lipton et al. 2014; measured on a few positives that choice
costs micro-F1 far more than it gains the class.)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multilabel_exact_match,
    multilabel_f1_score,
    multilabel_precision,
    multilabel_recall,
)

from textcnn.errors import UserInputError

DEFAULT_THRESHOLD = 0.5
THRESHOLD_GRID = torch.arange(1, 20) / 20  # 0.05, 0.10, …, 0.95: coarse enough not to fit noise
MIN_POSITIVES = 20  # positive validation examples a class needs for its threshold to be tuned


def tune_thresholds(
    precision: torch.Tensor, recall: torch.Tensor, grid: torch.Tensor, positives: torch.Tensor
) -> torch.Tensor:
    """(C,) thresholds maximising each class's F1, from a precision-recall curve over ``grid``.

    ``precision`` and ``recall`` are (C, len(grid) + 1), as torchmetrics'
    ``MultilabelPrecisionRecallCurve(thresholds=grid)`` returns them (the last column is the
    curve's end point, not a threshold); ``positives`` (C,) counts each class's positive examples.
    Ties go to the lowest threshold.
    """
    precision, recall = precision[:, : len(grid)].nan_to_num(0.0), recall[:, : len(grid)].nan_to_num(0.0)
    f1 = (2 * precision * recall / (precision + recall)).nan_to_num(0.0)  # (C, T)
    thresholds = grid.to(f1.device)[f1.argmax(dim=1)]
    untunable = (f1.amax(dim=1) == 0) | (positives.to(f1.device) < MIN_POSITIVES)
    return torch.where(untunable, torch.full_like(thresholds, DEFAULT_THRESHOLD), thresholds)


def decide(probabilities: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """(N, C) bool: class c is predicted when its probability reaches ``thresholds[c]``."""
    return probabilities >= thresholds.to(probabilities)


def multilabel_report(
    probabilities: torch.Tensor, targets: torch.Tensor, thresholds: torch.Tensor, label_names: list[str]
) -> dict[str, Any]:
    """Metrics of (N, C) sigmoid probabilities against (N, C) multi-hot targets at ``thresholds``.

    ``at_threshold_0.5`` repeats the headline metrics without tuned thresholds, to show what tuning
    bought.
    """
    num_labels, targets = len(label_names), targets.int()
    predictions = decide(probabilities, thresholds).int()
    kwargs = dict(num_labels=num_labels, zero_division=0)

    def f1(preds: torch.Tensor, average: str) -> torch.Tensor:
        return multilabel_f1_score(preds, targets, average=average, **kwargs)

    precision = multilabel_precision(predictions, targets, average="none", **kwargs)
    recall = multilabel_recall(predictions, targets, average="none", **kwargs)
    per_class_f1 = f1(predictions, "none")
    untuned = decide(probabilities, torch.full((num_labels,), DEFAULT_THRESHOLD)).int()
    return {
        "num_examples": int(targets.shape[0]),
        "micro_f1": float(f1(predictions, "micro")),
        "macro_f1": float(f1(predictions, "macro")),
        "exact_match": float(multilabel_exact_match(predictions, targets, num_labels=num_labels)),
        "mean_labels_true": float(targets.sum(dim=1).float().mean()),
        "mean_labels_predicted": float(predictions.sum(dim=1).float().mean()),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s), "threshold": float(t)}
            for name, p, r, f, s, t in zip(label_names, precision, recall, per_class_f1, targets.sum(dim=0), thresholds)
        },
        "at_threshold_0.5": {"micro_f1": float(f1(untuned, "micro")), "macro_f1": float(f1(untuned, "macro"))},
    }


# -- a multi-label dataset from real single-label text --------------------------------------------------

DEFAULT_SIZES = {"train": 8000, "validation": 1000, "test": 1000}


def build_joined_dataset(
    source: str,
    output_dir: Union[str, Path],
    text_column: str = "text",
    label_column: str = "label",
    max_parts: int = 3,
    sizes: Mapping[str, int] = DEFAULT_SIZES,
    validation_fraction: float = 0.1,
    seed: int = 42,
) -> dict[str, Any]:
    """Write a multi-label parquet dataset (``train/validation/test.parquet``) to ``output_dir``;
    return what was written (rows and mean labels per split, label names).

    Each example joins 1 to ``max_parts`` texts of *different* classes of a single-label dataset
    (e.g. TREC questions); its labels are the set of their classes, saved as
    ``Sequence(ClassLabel(names=<the source's names>))`` in column ``labels``. Each split draws
    only from its own source texts: test from the source's test split, validation from its
    validation split (or a seeded stratified ``validation_fraction`` of train), train from the rest
    of train. Texts that occur in a later split of test → validation → train are dropped from the
    earlier one's pool (TREC has questions in both train and test), so no text is in two splits.
    """
    import datasets  # here, not at the top: predicting with thresholds needs neither datasets nor data.py

    from textcnn.data import TextDataModule

    if max_parts < 1:
        raise UserInputError(f"max_parts must be a positive integer, got {max_parts}")
    if set(sizes) != {"train", "validation", "test"} or min(sizes.values()) < 1:
        raise UserInputError(
            f"sizes must give a positive number of examples for train, validation and test, got {dict(sizes)}"
        )
    source_data = TextDataModule(path=source, text_column=text_column, label_column=label_column,
                                 validation_fraction=validation_fraction, seed=seed)
    if source_data.multi_label or not source_data.has_test_split:
        raise UserInputError(
            f"{source} must be a single-label dataset with train and test splits to build a multi-label set from"
        )
    names = source_data.label_names
    if max_parts > len(names):
        raise UserInputError(f"max_parts {max_parts} is more than the {len(names)} classes of {source}")
    features = datasets.Features({"text": datasets.Value("string"),
                                  "labels": datasets.List(datasets.ClassLabel(names=names))})
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written, taken = {}, set()
    for offset, role in enumerate(("test", "validation", "train")):
        split, count = source_data.splits[role], sizes[role]
        pool = [(text or "", label) for text, label in zip(split[text_column], split[label_column])
                if (text or "") not in taken]
        taken.update(text for text, _ in pool)
        texts, labels = [text for text, _ in pool], [label for _, label in pool]
        if not texts:
            raise UserInputError(f"the {role} split of {source} has no texts that are not in another split")
        joined = _join_texts(texts, labels, count, max_parts, np.random.default_rng(seed + offset))
        datasets.Dataset.from_dict(joined, features=features).to_parquet(str(output_dir / f"{role}.parquet"))
        written[role] = {"rows": count, "source_texts": len(texts),
                         "mean_labels": float(np.mean([len(labels) for labels in joined["labels"]]))}
    splits = {role: written[role] for role in ("train", "validation", "test")}
    return {"output": str(output_dir), "source": source, "label_names": names, "splits": splits}


def _join_texts(texts: list[str], labels: list[int], count: int, max_parts: int, rng: np.random.Generator) -> dict:
    """``count`` examples of 1..max_parts texts with distinct labels, drawn at random (a text may recur)."""
    max_parts = min(max_parts, len(set(labels)))
    joined = {"text": [], "labels": []}
    for _ in range(count):
        parts, classes = [], []
        for _ in range(int(rng.integers(1, max_parts + 1))):
            index = int(rng.integers(len(texts)))
            while labels[index] in classes:
                index = int(rng.integers(len(texts)))
            parts.append(texts[index])
            classes.append(labels[index])
        joined["text"].append(" ".join(parts))
        joined["labels"].append(sorted(classes))
    return joined
