"""A multi-label dataset built from real single-label text: each example joins texts of different
classes (e.g. TREC questions) and is labelled with the set of their classes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import datasets
import numpy as np

from textcnn.data.datamodule import TextDataModule
from textcnn.errors import UserInputError

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
