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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import datasets
import huggingface_hub.constants
import pyarrow.dataset

from textcnn.data.files import file_format, read_file, read_layout
from textcnn.data.labels import (
    AnySplits,
    check_label_range,
    is_multi_label,
    label_names,
    list_item_feature,
    prepare_labels,
)
from textcnn.data.streaming import in_carved_validation
from textcnn.errors import UserInputError
from textcnn.inference import hub

log = logging.getLogger(__name__)

DATA_FILE_SUFFIXES = {".parquet", ".csv", ".tsv", ".json", ".jsonl", ".txt", ".arrow"}


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
        offline = datasets.config.HF_HUB_OFFLINE or hub.offline() or not hub.reachable()
    try:
        with hub_offline() if offline else contextlib.nullcontext():
            return datasets.load_dataset(path, streaming=streaming)
    except (ConnectionError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as error:
        if offline:
            raise UserInputError(
                f"data.path {path!r} is not a local directory, the Hugging Face Hub is unreachable "
                "and it is not in the local cache; pass a local dataset directory or connect to the internet"
            ) from None
        raise UserInputError(f"cannot load dataset {path!r} from the Hub: {error}") from None


# -- splits -------------------------------------------------------------------------------------------
NO_DATA = ("no training data given: set data.train_file=FILE (a CSV, TSV, JSON Lines or parquet file; "
           "data.test_file=FILE too for test figures), or data.path=DIR (a dataset directory) or a Hub id, "
           "or --config FILE with a data section")
@dataclass(frozen=True)
class SplitSource:
    """Which dataset, columns and splits to read, and how to carve a missing validation split."""

    path: Optional[str]  # a dataset directory or Hub id; None: the user's own files alone
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
    replay_file: Optional[str] = None  # earlier training data, a sample of it mixed into train (see mix_replay)
    replay_size: Optional[int] = None  # rows of it to mix in; None: as many as train has

    def read(self) -> datasets.DatasetDict:
        """The raw splits, keyed by the dataset's split names: the user's own files or a dataset directory / Hub id."""
        own = read_layout(self.path, self.files, self.format, self.text_column, self.label_column, self.csv_delimiter)
        if own is None:
            return load_dataset_dict(self.require_path())
        return datasets.DatasetDict({self.split_names[role]: split for role, split in own.items()})

    @property
    def where(self) -> str:
        """The data as the user named it, for messages."""
        return self.files.get("train") or self.path or "the data"

    def require_path(self) -> str:
        if self.path is None:
            raise UserInputError(NO_DATA)
        return self.path

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
        train = raw[train_name]
        empty = isinstance(train, datasets.Dataset) and len(train) and \
            train.data.column(self.text_column).null_count == len(train)  # a CSV reads it as floats (NaN)
        check_text_column(train.features[self.text_column], f"data.text_column {self.text_column!r}", self.where,
                          empty=bool(empty))

    def by_role(self, raw: AnySplits) -> dict:
        """The splits this source names, keyed by role, with the text and label columns only."""
        splits = {role: raw[name].select_columns([self.text_column, self.label_column])
                  for role, name in self.split_names.items() if name in raw}
        if self.replay_file:
            replay = read_replay(self)
            splits["replay"] = replay.select_columns([self.text_column, self.label_column])
        return splits


def check_text_column(feature: Any, name: str, where: str, empty: bool = False) -> None:
    """The text column holds strings: one clear line for numbers, nested values or an empty column
    (``empty``: every value is null, whatever type the reader gave the column)."""
    if not empty and isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
        return
    if empty or (isinstance(feature, datasets.Value) and feature.dtype == "null"):
        raise UserInputError(f"{name} of {where} is empty in every row; fill it with the texts, or pick the "
                             "column that holds them")
    if isinstance(feature, dict):
        kind = f"records (fields {', '.join(list(feature)[:5])})"
    elif isinstance(feature, (list, datasets.Sequence)) or type(feature).__name__ in ("List", "LargeList"):
        kind = "lists"
    elif isinstance(feature, datasets.ClassLabel):
        kind = "class labels"
    else:
        kind = f"{getattr(feature, 'dtype', type(feature).__name__)} values"
    raise UserInputError(f"{name} of {where} holds {kind}, not strings; pick the column of plain text, or flatten "
                         "it into one first (e.g. join a list of strings into one text)")


def load_splits(source: SplitSource) -> datasets.DatasetDict:
    """The splits in memory: checked columns, ``ClassLabel`` labels in range, validation carved if missing."""
    raw = source.read()
    source.check_columns(raw)
    train_name = source.split_names["train"]
    if not len(raw[train_name]):
        raise UserInputError(f"the {train_name!r} split of {source.where} is empty; nothing to train on")
    splits = prepare_labels(datasets.DatasetDict(source.by_role(raw)), source.text_column, source.label_column,
                            list(source.label_names) if source.label_names else None, source.label_separator)
    names = label_names(splits, source.label_column)
    if len(names) < 2 and not is_multi_label(splits, source.label_column):
        raise UserInputError(f"the training data of {source.where} holds one class only ({names[0][:80]!r} in "
                             f"data.label_column {source.label_column!r}); a classifier needs examples of two "
                             "or more classes: add them, or check that the label column is the right one")
    num_classes = len(names)
    for role, split in splits.items():
        check_label_range(split, source.split_names.get(role, role), source.label_column, num_classes)
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
    return mix_replay(splits, source) if "replay" in splits else splits


def read_replay(source: SplitSource) -> datasets.Dataset:
    """The replay file, in any format a training file may have, with the training data's columns."""
    path = Path(source.replay_file).expanduser()
    replay = read_file(path, file_format(path, "folder" if path.is_dir() else source.format), source.text_column,
                       source.label_column, source.csv_delimiter)
    for key, column in (("text_column", source.text_column), ("label_column", source.label_column)):
        if column not in replay.column_names:
            raise UserInputError(f"data.replay_file {path} has no column {column!r} (data.{key}; columns: "
                                 f"{', '.join(replay.column_names)}); give it the training data's columns")
    if not len(replay):
        raise UserInputError(f"data.replay_file {path} holds no rows; give the earlier training data, or drop the option")
    return replay


def mix_replay(splits: datasets.DatasetDict, source: SplitSource) -> datasets.DatasetDict:
    """Earlier training rows mixed into train (rehearsal: a continued model forgets less of what it
    knew): a seeded sample of ``replay_size`` rows, by default as many as the new training rows.
    Validation and test stay the new data's, so the checkpoint is chosen on the new data."""
    replay, train = splits.pop("replay"), splits["train"]
    wanted = source.replay_size if source.replay_size is not None else len(train)
    if wanted < 1:
        raise UserInputError(f"data.replay_size must be a positive integer, got {wanted}")
    sample = replay.shuffle(seed=source.seed).select(range(min(wanted, len(replay))))
    log.info("replay: %s of the %s rows of %s mixed into %s new training rows", f"{len(sample):,}",
             f"{len(replay):,}", source.replay_file, f"{len(train):,}")
    splits["train"] = datasets.concatenate_datasets([train, sample.cast(train.features)])
    return splits


def load_stream_splits(source: SplitSource) -> datasets.IterableDatasetDict:
    """The splits as streams: checked columns, label names from the features, validation carved by hash.

    The classes must be declared in the files (a ``ClassLabel`` feature): finding them otherwise
    would mean reading the whole corpus first."""
    if source.replay_file:
        raise UserInputError("data.replay_file mixes rows into data read into memory; set data.streaming=false, "
                             "or add the earlier rows to the stream's files")
    if any(source.files.values()) or (Path(source.require_path()).expanduser().is_file()):
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
