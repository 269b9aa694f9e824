"""Labels as classes: whatever the label column holds (strings of any Arrow type, integers, booleans,
whole-number floats, lists of them, ``ClassLabel``) becomes one ``ClassLabel`` (or a list of them,
multi-label) shared by every split, with the checks that make a mistake a one-line error."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Optional, Union

import datasets
import pyarrow.compute as pc

from textcnn.errors import UserInputError

log = logging.getLogger(__name__)

AnySplits = Union[datasets.DatasetDict, datasets.IterableDatasetDict]


def list_item_feature(feature: datasets.features.FeatureType) -> Optional[datasets.features.FeatureType]:
    """The feature of each item of a list column (``Sequence``/``List``/``LargeList``); None for other columns."""
    return feature.feature if isinstance(feature, (datasets.List, datasets.LargeList)) else None


def label_names(splits: AnySplits, column: str) -> list[str]:
    """Names of the classes, from the label column's ``ClassLabel`` (see :func:`as_class_labels`)."""
    feature = splits["train"].features[column]
    item = list_item_feature(feature)
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    if isinstance(item, datasets.ClassLabel):
        empty = [index for index, name in enumerate(item.names) if not name.strip()]
        if empty:
            raise UserInputError(
                f"data.label_column {column!r}: class {empty[0]} of {item.names} has an empty name; "
                "give every class a non-empty name in the Sequence(ClassLabel(names=...)) feature"
            )
        return list(item.names)
    if item is not None:
        raise UserInputError(
            f"data.label_column {column!r} holds lists of {item} values, not class ids; for multi-label "
            "data use a Sequence(ClassLabel(names=...)) column (or lists of strings / non-negative integers)"
        )
    raise UserInputError(
        f"data.label_column {column!r} holds {feature} values, not class ids; "
        "use a column whose feature is a datasets.ClassLabel (or strings / non-negative integers)"
    )


def is_multi_label(splits: AnySplits, column: str) -> bool:
    return list_item_feature(splits["train"].features[column]) is not None


def _label_values(split: datasets.Dataset, column: str):
    """The label column as one flat Arrow array: a multi-label column's lists are concatenated."""
    values = split.data.column(column)
    return pc.list_flatten(values) if list_item_feature(split.features[column]) is not None else values


def as_class_labels(splits: datasets.DatasetDict, column: str, names: Optional[list[str]] = None) -> datasets.DatasetDict:
    """Cast string or non-negative integer labels (or lists of them) to a ``ClassLabel`` shared by all splits.

    ``names``: the classes in id order (integer labels: their names; string labels: their order);
    by default the training split's strings, sorted, or ``"0"``, ``"1"``, … for integers; a
    ``ClassLabel`` column's classes are reordered or extended to ``names`` by name (a model continued
    on a dataset that lacks some of its classes). A label that is not a class (a string the training
    split never has, an integer past the names) is refused."""
    feature = splits["train"].features[column]
    item = list_item_feature(feature)
    if isinstance(item or feature, datasets.ClassLabel):
        if names is None or list(names) == list((item or feature).names):
            return splits
        splits = _names_of_class_ids(splits, column)
        feature = splits["train"].features[column]
        item = list_item_feature(feature)
    dtype = getattr(item or feature, "dtype", None)
    if names is not None and (len(set(names)) != len(names) or not all(isinstance(n, str) and n.strip() for n in names)):
        raise UserInputError(f"data.label_names must be distinct, non-empty names, got {names}")
    if dtype in ("string", "large_string"):  # pandas 3 and the CSV builder write large_string
        known = sorted(pc.unique(_label_values(splits["train"], column)).to_pylist()) if names is None else names
        for role, split in splits.items():
            unseen = sorted(set(pc.unique(_label_values(split, column)).to_pylist()) - set(known))
            if unseen:
                where = "the training split never has" if names is None else "are not in data.label_names"
                raise UserInputError(
                    f"the {role} split has label(s) {', '.join(map(repr, unseen[:5]))} in column {column!r} that "
                    f"{where} (classes: {', '.join(known[:20])}); fix or drop those rows"
                )
        names = known
    elif dtype is not None and dtype.startswith(("int", "uint")):
        values = [pc.min_max(_label_values(split, column)).as_py() for split in splits.values()]
        values = [v for v in values if v["min"] is not None]
        if values and min(v["min"] for v in values) < 0:
            raise UserInputError(
                f"data.label_column {column!r} has negative values (unlabelled rows?); "
                "drop them or pick a labelled split"
            )
        largest = max((v["max"] for v in values), default=-1)
        if names is not None and largest >= len(names):
            raise UserInputError(
                f"data.label_column {column!r} has label {largest}, but data.label_names names {len(names)} "
                f"classes (ids 0 to {len(names) - 1}); name every class"
            )
        names = names or [str(i) for i in range(largest + 1)]
    else:
        return splits  # label_names reports the unusable type
    class_label = datasets.ClassLabel(names=names)
    return splits.cast_column(column, class_label if item is None else datasets.List(class_label))


def _names_of_class_ids(splits: datasets.DatasetDict, column: str) -> datasets.DatasetDict:
    """A ``ClassLabel`` column (or a list of them) as the class names it stands for."""
    feature = splits["train"].features[column]
    item = list_item_feature(feature)
    to_name = (item or feature).int2str
    strings = datasets.Value("string")
    return datasets.DatasetDict({
        role: split.map(lambda labels: {column: [to_name(label) if item is None else [to_name(i) for i in label]
                                                 for label in labels]},
                        input_columns=column, batched=True,
                        features=datasets.Features({**split.features, column: strings if item is None
                                                    else datasets.List(strings)}))
        for role, split in splits.items()})


def prepare_labels(splits: datasets.DatasetDict, text_column: str, column: str, names: Optional[list[str]] = None,
                   separator: Optional[str] = None) -> datasets.DatasetDict:
    """Labels as a shared ``ClassLabel`` (or a list of them): rows without a label dropped (counted in
    a warning), whole-number floats (integers with gaps, as pandas reads them) back to integers,
    ``label_separator`` strings split into lists, ``label_names`` as the classes (see
    :func:`as_class_labels`). Empty or missing texts are kept as empty texts, counted in a warning."""
    for role, split in list(splits.items()):
        missing = split.data.column(column).null_count
        if missing:
            log.warning("%s: dropped %d of %d rows with no label in column %r", role, missing, len(split), column)
            # flatten_indices: the checks below read the Arrow table (``split.data``), which a bare
            # filter leaves whole behind an indices mapping, nulls included.
            split = split.filter(lambda labels: [label is not None for label in labels], input_columns=column,
                                 batched=True).flatten_indices()
        texts = split.data.column(text_column)
        empty = texts.null_count + (pc.sum(pc.equal(pc.utf8_length(texts), 0)).as_py() or 0)
        if empty:
            log.warning("%s: %d of %d rows have an empty or missing text; they are kept as empty texts",
                        role, empty, len(split))
        splits[role] = split
    feature = splits["train"].features[column]
    dtype = getattr(feature, "dtype", None)
    if dtype in ("float16", "float32", "float64"):  # integer labels with gaps read by pandas as floats
        values = [pc.all(pc.equal(pc.floor(split.data.column(column)), split.data.column(column))).as_py()
                  for split in splits.values() if len(split)]
        if not all(value is not False for value in values):
            raise UserInputError(
                f"data.label_column {column!r} holds fractional numbers; labels must be classes "
                "(strings, integers or booleans)"
            )
        splits, dtype = splits.cast_column(column, datasets.Value("int64")), "int64"
    if separator:
        if dtype not in ("string", "large_string"):
            raise UserInputError(f"data.label_separator is set but data.label_column {column!r} holds {feature}, not strings")
        splits = splits.map(
            lambda labels: {column: [sorted({part.strip() for part in text.split(separator) if part.strip()})
                                     for text in labels]},
            input_columns=column, batched=True, features=datasets.Features(
                {**splits["train"].features, column: datasets.List(datasets.Value("string"))}))
    elif dtype == "bool":
        splits = splits.cast_column(column, datasets.Value("int64"))
        if not names:
            return splits.cast_column(column, datasets.ClassLabel(names=["false", "true"]))
    return as_class_labels(splits, column, names)


def _label_out_of_range(split_name: str, label, column: str, num_classes: int) -> UserInputError:
    return UserInputError(
        f"split {split_name!r} has label {label} in column {column!r}, outside the {num_classes} classes; "
        "drop unlabelled rows or pick another split"
    )


def check_label_range(split: datasets.Dataset, split_name: str, column: str, num_classes: int) -> None:
    """Every label of a loaded split is a class id (checked on the whole column at once)."""
    if not len(split):
        return
    bounds = pc.min_max(_label_values(split, column)).as_py()
    if bounds["min"] is None:  # multi-label split whose rows all have no labels
        return
    for label in (bounds["min"], bounds["max"]):
        if not 0 <= label < num_classes:
            raise _label_out_of_range(split_name, label, column, num_classes)


def check_labels(labels: Iterable, split_name: str, column: str, num_classes: int) -> None:
    """Every label of a batch of rows is a class id: what a stream can check as it meets them."""
    for row_labels in labels:
        for label in row_labels if isinstance(row_labels, list) else [row_labels]:
            if label is None or not 0 <= label < num_classes:
                raise _label_out_of_range(split_name, label, column, num_classes)
