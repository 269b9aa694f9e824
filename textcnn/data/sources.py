"""Where the examples come from: a local dataset directory or a Hub id, read into checked splits.

Everything here takes its settings as arguments and leaves the process as it found it: whether
the Hugging Face Hub may be contacted is decided per call (:func:`hub_offline` is scoped and restored),
never by writing ``HF_HUB_OFFLINE`` into the environment.

The splits come out as ``train`` / ``validation`` / (``test``) with the text and label columns
only, labels as a ``ClassLabel`` (or ``Sequence(ClassLabel)`` for multi-label) shared by all splits,
checked for range; a missing validation split is carved from train (seeded, stratified when
single-label; with streaming, by a hash of each text).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union
from urllib.parse import urlparse

import datasets
import huggingface_hub.constants
import pyarrow.compute as pc
import pyarrow.dataset

from textcnn.data.files import read_layout
from textcnn.data.streaming import in_carved_validation
from textcnn.errors import UserInputError

log = logging.getLogger(__name__)

HUB_TIMEOUT_S = 3.0
DATA_FILE_SUFFIXES = {".parquet", ".csv", ".tsv", ".json", ".jsonl", ".txt", ".arrow"}
AnySplits = Union[datasets.DatasetDict, datasets.IterableDatasetDict]


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Within the block, ``datasets`` uses only local files and its cache; the previous settings
    (of both ``datasets`` and ``huggingface_hub``) are restored afterwards."""
    saved = datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved


def hub_reachable(timeout_s: float = HUB_TIMEOUT_S) -> bool:
    """One TCP connection to the Hub's endpoint (``HF_ENDPOINT``), so an offline machine is told in
    seconds instead of after ``datasets``' retries."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _parquet_stream_options(local: Path) -> dict:
    """How to stream a directory of parquet files with flat memory.

    pyarrow's defaults pre-buffer column chunks and hand over whole row groups, and reading ahead
    holds far more than the rows in use: a bare loop over IMDB × 32 (800,000 reviews, 657 MB of
    parquet in 10,000-row groups) peaked at 1,555 MB resident and grew with the rows read; with
    no pre-buffering, a 1 MiB buffered stream and 1,000-row batches it stayed between 450 and
    570 MB (``scripts/benchmark_streaming.py``, README). Other file types keep their defaults.
    """
    data_files = [file for file in local.rglob("*") if file.suffix in DATA_FILE_SUFFIXES]
    if not data_files or any(file.suffix != ".parquet" for file in data_files):
        return {}
    scan = pyarrow.dataset.ParquetFragmentScanOptions(pre_buffer=False, use_buffered_stream=True, buffer_size=1 << 20)
    return {"fragment_scan_options": scan, "batch_size": 1000}


def load_dataset_dict(path: str, streaming: bool = False, offline: Optional[bool] = None) -> AnySplits:
    """A local dataset directory, or a Hub id. ``offline``: True never contacts the Hub; None (the
    default) checks once whether it is reachable, so offline a Hub id fails in seconds, not after
    retries. A local directory never needs the Hub.

    ``streaming``: iterable splits read as they are iterated (``datasets`` streaming)."""
    local = Path(path).expanduser()
    if local.exists():
        if not local.is_dir():
            raise UserInputError(f"data.path {path} is a file; pass the dataset's directory or a Hub id")
        try:
            if (local / "dataset_dict.json").exists():
                splits = datasets.load_from_disk(str(local))
                if streaming:
                    return datasets.IterableDatasetDict({name: s.to_iterable_dataset() for name, s in splits.items()})
                return splits
            options = _parquet_stream_options(local) if streaming else {}
            return datasets.load_dataset(str(local), streaming=streaming, **options)
        except Exception as error:  # datasets raises many types for unreadable, empty or odd files
            reason = str(error).splitlines()[0] if str(error) else ""
            raise UserInputError(
                f"cannot load a dataset from {path} ({type(error).__name__}: {reason}); pass a directory of "
                "parquet/csv/json split files or one written by Dataset.save_to_disk"
            ) from None
    if path.startswith((".", "/", "~")) or path.count("/") > 1:
        raise UserInputError(f"data.path {path}: no such directory; pass an existing dataset directory or a Hub id")
    if offline is None:
        offline = datasets.config.HF_HUB_OFFLINE or not hub_reachable()
    try:
        with hub_offline() if offline else contextlib.nullcontext():
            return datasets.load_dataset(path, streaming=streaming)
    except (ConnectionError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as error:
        if offline:
            raise UserInputError(
                f"data.path {path!r} is not a local directory, the Hugging Face Hub is unreachable "
                "and it is not in the local cache; pass a local dataset directory (e.g. "
                "../shared/data/sst2) or connect to the internet"
            ) from None
        raise UserInputError(f"cannot load dataset {path!r} from the Hub: {error}") from None


# -- labels -------------------------------------------------------------------------------------------
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
    by default the training split's strings, sorted, or ``"0"``, ``"1"``, … for integers. A label
    that is not a class (a string the training split never has, an integer past the names) is refused."""
    feature = splits["train"].features[column]
    item = list_item_feature(feature)
    if isinstance(item or feature, datasets.ClassLabel):
        return splits
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


def prepare_labels(splits: datasets.DatasetDict, source: SplitSource) -> datasets.DatasetDict:
    """Labels as a shared ``ClassLabel`` (or a list of them): rows without a label dropped (counted in
    a warning), whole-number floats (integers with gaps, as pandas reads them) back to integers,
    ``label_separator`` strings split into lists, ``label_names`` as the classes (see
    :func:`as_class_labels`). Empty or missing texts are kept as empty texts, counted in a warning."""
    column = source.label_column
    for role, split in list(splits.items()):
        missing = split.data.column(column).null_count
        if missing:
            log.warning("%s: dropped %d of %d rows with no label in column %r", role, missing, len(split), column)
            split = split.filter(lambda labels: [label is not None for label in labels], input_columns=column,
                                 batched=True)
        texts = split.data.column(source.text_column)
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
    if source.label_separator:
        if dtype not in ("string", "large_string"):
            raise UserInputError(f"data.label_separator is set but data.label_column {column!r} holds {feature}, not strings")
        separator = source.label_separator
        splits = splits.map(
            lambda labels: {column: [sorted({part.strip() for part in text.split(separator) if part.strip()})
                                     for text in labels]},
            input_columns=column, batched=True, features=datasets.Features(
                {**splits["train"].features, column: datasets.List(datasets.Value("string"))}))
    elif dtype == "bool":
        splits = splits.cast_column(column, datasets.Value("int64"))
        if not source.label_names:
            return splits.cast_column(column, datasets.ClassLabel(names=["false", "true"]))
    return as_class_labels(splits, column, list(source.label_names) if source.label_names else None)


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


# -- splits -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitSource:
    """Which dataset, columns and splits to read, and how to carve a missing validation split."""

    path: str
    text_column: str
    label_column: str
    split_names: dict[str, str]  # role (train / validation / test) → the dataset's split name
    validation_fraction: float
    seed: int
    files: dict[str, Optional[str]] = field(default_factory=dict)  # role → the user's own file for it
    format: Optional[str] = None
    csv_delimiter: Optional[str] = None
    label_names: Optional[tuple[str, ...]] = None  # names of integer / boolean labels, in id order
    label_separator: Optional[str] = None  # multi-label: classes joined in one string column

    def read(self) -> datasets.DatasetDict:
        """The raw splits, keyed by the dataset's split names: the user's own files or a dataset directory / Hub id."""
        own = read_layout(self.path, self.files, self.format, self.text_column, self.label_column, self.csv_delimiter)
        if own is None:
            return load_dataset_dict(self.path)
        return datasets.DatasetDict({self.split_names[role]: split for role, split in own.items()})

    @property
    def where(self) -> str:
        """The data as the user named it, for messages."""
        return self.files.get("train") or self.path

    def check_columns(self, raw: AnySplits) -> None:
        train_name = self.split_names["train"]
        if train_name not in raw:
            raise UserInputError(
                f"{self.where} has no split {train_name!r} (splits: {', '.join(raw)}); set data.train_split"
            )
        columns = raw[train_name].column_names
        for key, column in (("text_column", self.text_column), ("label_column", self.label_column)):
            if column not in columns:
                raise UserInputError(
                    f"data.{key} {column!r} is not a column of {self.where} "
                    f"(columns: {', '.join(columns)}); set --data.{key}=<one of them>"
                )
        if raw[train_name].features[self.text_column].dtype not in ("string", "large_string"):
            raise UserInputError(f"data.text_column {self.text_column!r} does not hold strings; pick the text column")

    def by_role(self, raw: AnySplits) -> dict:
        """The splits this source names, keyed by role, with the text and label columns only."""
        return {role: raw[name].select_columns([self.text_column, self.label_column])
                for role, name in self.split_names.items() if name in raw}


def load_splits(source: SplitSource) -> datasets.DatasetDict:
    """The splits in memory: checked columns, ``ClassLabel`` labels in range, validation carved if missing."""
    raw = source.read()
    source.check_columns(raw)
    train_name = source.split_names["train"]
    if not len(raw[train_name]):
        raise UserInputError(f"the {train_name!r} split of {source.where} is empty; nothing to train on")
    splits = prepare_labels(datasets.DatasetDict(source.by_role(raw)), source)
    num_classes = len(label_names(splits, source.label_column))
    for role, split in splits.items():
        check_label_range(split, source.split_names[role], source.label_column, num_classes)
    if "validation" not in splits:
        multi_label = is_multi_label(splits, source.label_column)
        log.info("no %r split: carving %.0f%% of train%s", source.split_names["validation"],
                 100 * source.validation_fraction, " (multi-label: not stratified)" if multi_label else "")
        try:
            carved = splits["train"].train_test_split(
                test_size=source.validation_fraction,
                stratify_by_column=None if multi_label else source.label_column,
                seed=source.seed,
            )
        except ValueError as error:
            raise UserInputError(f"cannot carve a stratified validation split: {error}") from None
        splits["train"], splits["validation"] = carved["train"], carved["test"]
    return splits


def load_stream_splits(source: SplitSource) -> datasets.IterableDatasetDict:
    """The splits as streams: checked columns, label names from the features, validation carved by hash.

    The classes must be declared in the files (a ``ClassLabel`` feature): finding them otherwise
    would mean reading the whole corpus first."""
    if any(source.files.values()) or (Path(source.path).expanduser().is_file()):
        raise UserInputError(
            "data.streaming reads a directory of parquet files or a Hub id; convert the files to parquet "
            "(with a ClassLabel label column) or set data.streaming=false"
        )
    raw = load_dataset_dict(source.path, streaming=True)
    train_name = source.split_names["train"]
    if train_name in raw and raw[train_name].features is None:
        raise UserInputError(
            f"data.streaming: {source.path} does not declare its columns and features; stream parquet files "
            "(or a Hub dataset) whose label column is a ClassLabel, or set data.streaming=false"
        )
    source.check_columns(raw)
    feature = raw[train_name].features[source.label_column]
    if not isinstance(list_item_feature(feature) or feature, datasets.ClassLabel):
        raise UserInputError(
            f"data.streaming needs the classes before reading the corpus, but data.label_column "
            f"{source.label_column!r} holds {feature}; store it as a datasets.ClassLabel (or "
            "Sequence(ClassLabel)) feature in the files, or set data.streaming=false"
        )
    splits = datasets.IterableDatasetDict(source.by_role(raw))
    label_names(splits, source.label_column)  # empty class names are refused here
    if next(iter(splits["train"].take(1)), None) is None:
        raise UserInputError(f"the {train_name!r} split of {source.path} is empty; nothing to train on")
    if "validation" not in splits:
        log.info("no %r split: carving about %.0f%% of train by a hash of each text",
                 source.split_names["validation"], 100 * source.validation_fraction)
        carve = functools.partial(in_carved_validation, text_column=source.text_column,
                                  fraction=source.validation_fraction, seed=source.seed)
        train = splits["train"]
        splits["train"] = train.filter(functools.partial(carve, keep=False), batched=True)
        splits["validation"] = train.filter(functools.partial(carve, keep=True), batched=True)
    return splits
