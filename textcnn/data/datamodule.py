"""Dataset → token ids → padded batches, as a ``LightningDataModule``.

Datasets load through ``datasets.load_dataset`` by Hub id or local directory. Label names come
from the label column's ``ClassLabel`` feature. A label column that is a list of classes
(``Sequence(ClassLabel)``) makes the dataset multi-label: batches then carry multi-hot float
targets (B, num_classes). A dataset without a validation split gets a seeded one carved from train
(stratified when single-label); the tokenizer is trained on what is left of train.

With ``streaming`` nothing needs the whole corpus in memory: the splits are read as
``datasets`` iterable datasets, the tokenizer is trained on a bounded shuffled sample of train, a
missing validation split is carved by a hash of each text, and batches are encoded on the fly.

In a distributed run (Lightning DDP) every process loads the data, the tokenizer is trained once
(see ``TextDataModule.tokenizer``) and each process gets a disjoint share of every batch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import socket
from pathlib import Path
from collections.abc import Iterable
from typing import Optional, Union
from urllib.parse import urlparse

import datasets
import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset
import pytorch_lightning as pl
import tokenizers
import torch
from tokenizers import Tokenizer
from torch.utils.data import DataLoader

from textcnn import tokenizer as tokenizer_recipe
from textcnn.atomic import write_text_atomic
from textcnn.data.samplers import EpochShuffle, LengthBatches, ShuffledBatches
from textcnn.data.distributed import is_launch_rank_zero, launch_rank, wait_for_file
from textcnn.data.vectors import Coverage, pretrained_matrix
from textcnn.errors import UserInputError
from textcnn.data.streaming import STREAM_POOL_ROWS, StreamBatches, in_carved_validation, reservoir_sample
from textcnn.tokenizer import TokenizerKind, encode, load_tokenizer, pad_batch, tokenizer_from_json, train_tokenizer

log = logging.getLogger(__name__)

HUB_TIMEOUT_S = 3.0


def _set_hub_offline() -> None:
    """Make ``datasets`` use only local files and caches, now and in child processes."""
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    import huggingface_hub.constants

    huggingface_hub.constants.HF_HUB_OFFLINE = True
    datasets.config.HF_HUB_OFFLINE = True


def _hub_reachable() -> bool:
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=HUB_TIMEOUT_S).close()
        return True
    except OSError:
        return False


DATA_FILE_SUFFIXES = {".parquet", ".csv", ".tsv", ".json", ".jsonl", ".txt", ".arrow"}


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


def load_dataset_dict(path: str, streaming: bool = False) -> Union[datasets.DatasetDict, datasets.IterableDatasetDict]:
    """A local dataset directory, or a Hub id; offline, a Hub id fails in seconds, not after retries.

    ``streaming``: iterable splits read as they are iterated (``datasets`` streaming)."""
    local = Path(path).expanduser()
    if local.exists():
        if not local.is_dir():
            raise UserInputError(f"data.path {path} is a file; pass the dataset's directory or a Hub id")
        _set_hub_offline()
        try:
            if (local / "dataset_dict.json").exists():
                splits = datasets.load_from_disk(str(local))
                if streaming:
                    return datasets.IterableDatasetDict({name: s.to_iterable_dataset() for name, s in splits.items()})
                return splits
            return datasets.load_dataset(str(local), streaming=streaming, **(_parquet_stream_options(local) if streaming else {}))
        except Exception as error:  # datasets raises many types for unreadable, empty or odd files
            raise UserInputError(
                f"cannot load a dataset from {path} ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); pass a directory of "
                "parquet/csv/json split files or one written by Dataset.save_to_disk"
            ) from None
    if path.startswith((".", "/", "~")) or path.count("/") > 1:
        raise UserInputError(f"data.path {path}: no such directory; pass an existing dataset directory or a Hub id")
    if not _hub_reachable():
        _set_hub_offline()
    try:
        return datasets.load_dataset(path, streaming=streaming)
    except (ConnectionError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as error:
        if datasets.config.HF_HUB_OFFLINE:
            raise UserInputError(
                f"data.path {path!r} is not a local directory, the Hugging Face Hub is unreachable "
                "and it is not in the local cache; pass a local dataset directory (e.g. "
                "../shared/data/sst2) or connect to the internet"
            ) from None
        raise UserInputError(f"cannot load dataset {path!r} from the Hub: {error}") from None


def _list_item_feature(feature: datasets.features.FeatureType) -> Optional[datasets.features.FeatureType]:
    """The feature of each item of a list column (``Sequence``/``List``/``LargeList``); None for other columns."""
    return feature.feature if isinstance(feature, (datasets.List, datasets.LargeList)) else None


def _label_names(splits: datasets.DatasetDict, column: str) -> list[str]:
    """Names of the classes; string or integer labels become a ``ClassLabel`` first."""
    feature = splits["train"].features[column]
    item = _list_item_feature(feature)
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


def _label_values(split: datasets.Dataset, column: str):
    """The label column as one flat Arrow array: a multi-label column's lists are concatenated."""
    values = split.data.column(column)
    return pc.list_flatten(values) if _list_item_feature(split.features[column]) is not None else values


def _as_class_labels(splits: datasets.DatasetDict, column: str) -> datasets.DatasetDict:
    """Cast string or non-negative integer labels (or lists of them) to a ``ClassLabel`` shared by all splits."""
    feature = splits["train"].features[column]
    item = _list_item_feature(feature)
    if isinstance(item or feature, datasets.ClassLabel):
        return splits
    dtype = getattr(item or feature, "dtype", None)
    if dtype == "string":
        names = sorted({name for split in splits.values() for name in pc.unique(_label_values(split, column)).to_pylist()})
    elif dtype is not None and dtype.startswith(("int", "uint")):
        values = [pc.min_max(_label_values(split, column)).as_py() for split in splits.values()]
        values = [v for v in values if v["min"] is not None]
        if values and min(v["min"] for v in values) < 0:
            raise UserInputError(
                f"data.label_column {column!r} has negative values (unlabelled rows?); "
                "drop them or pick a labelled split"
            )
        names = [str(i) for i in range(max((v["max"] for v in values), default=-1) + 1)]
    else:
        return splits  # _label_names reports the unusable type
    class_label = datasets.ClassLabel(names=names)
    return splits.cast_column(column, class_label if item is None else datasets.List(class_label))


def _check_label_range(split: datasets.Dataset, name: str, column: str, num_classes: int) -> None:
    if not len(split):
        return
    bounds = pc.min_max(_label_values(split, column)).as_py()
    if bounds["min"] is None:  # multi-label split whose rows all have no labels
        return
    if bounds["min"] < 0 or bounds["max"] >= num_classes:
        raise UserInputError(
            f"split {name!r} has labels in [{bounds['min']}, {bounds['max']}] in column {column!r}, "
            f"outside the {num_classes} classes; drop unlabelled rows or pick another split"
        )


def _tokenize_batch(batch: dict, tokenizer: Tokenizer, text_column: str, max_length: int) -> dict:
    texts = [text or "" for text in batch[text_column]]
    return {"input_ids": encode(tokenizer, texts, max_length)}


def _tokenize_stream_batch(batch: dict, tokenizer: Tokenizer, text_column: str, max_length: int,
                           label_column: str, num_classes: int, split_name: str) -> dict:
    """:func:`_tokenize_batch` plus the label range check a stream can only make as it meets the rows."""
    for labels in batch[label_column]:
        for label in labels if isinstance(labels, list) else [labels]:
            if label is None or not 0 <= label < num_classes:
                raise UserInputError(
                    f"split {split_name!r} has label {label} in column {label_column!r}, outside the "
                    f"{num_classes} classes; drop unlabelled rows or pick another split"
                )
    return _tokenize_batch(batch, tokenizer, text_column, max_length)


class TextDataModule(pl.LightningDataModule):
    """Loads, validates, tokenizes and batches a text-classification dataset.

    Args:
        path: Hugging Face Hub id (e.g. ``SetFit/sst2``) or a local dataset directory.
        text_column / label_column: the columns holding the text and its class (a ``ClassLabel``),
            or its classes (a ``Sequence(ClassLabel)``: multi-label).
        train_split / validation_split / test_split: split names; a missing validation split is
            carved from train (``validation_fraction``, stratified, ``seed``).
        max_length: texts are truncated to this many tokens.
        min_length: batches are padded to at least this many tokens (the widest kernel).
        tokenizer_path: use this ``tokenizer.json`` instead of training one.
        tokenizer_kind / max_vocab_size / min_frequency: how the tokenizer is trained on train.
        tokenizer_cache_dir: where the trained tokenizer is kept as ``tokenizer-<fingerprint>.json``
            (keyed by the training texts and the settings above), so that the processes of a
            distributed run share the one rank 0 trains, and later runs reuse it. On several nodes
            it must be storage all nodes share. ``None``: train in this process, keep nothing
            (the training CLI sets ``<trainer.default_root_dir>/tokenizers``).
        bucket_by_length: batch training texts of similar length together (much less padding);
            the batches of an epoch are still in random order. Evaluation is always length-sorted.
        pretrained_vectors: ``glove-6b-50d`` or the path of a GloVe/word2vec text file; the model's
            static / non-static / multichannel embeddings start from them (``pretrained_embeddings``).
        streaming: read the splits as they are iterated instead of loading them (corpora larger
            than memory). The label column must be a ``ClassLabel`` (or ``Sequence(ClassLabel)``)
            in the files, since the classes cannot be found without reading everything; labels out of
            range are reported when met. The tokenizer is trained on ``tokenizer_sample_size``
            texts sampled uniformly from train in one pass; a missing validation split is carved by a hash
            of each text (about ``validation_fraction`` of train, not stratified, the same text
            always on the same side); training rows come through a shuffle buffer of
            ``shuffle_buffer_size`` rows, reshuffled every epoch (files are read in order: a file
            sorted by label needs a buffer as large as the longest run of one label). Epochs have no known length:
            ``lr_schedule`` cosine / onecycle need ``trainer.max_steps``. One process only
            (no DDP), ``num_workers`` 0; ``bucket_by_length`` sorts pools of about
            ``STREAM_POOL_ROWS`` rows, evaluation too; ``pretrained_vectors`` coverage is counted
            on the tokenizer's sample.
        tokenizer_sample_size / shuffle_buffer_size: see ``streaming`` (unused without it).
    """

    def __init__(
        self,
        path: str = "../shared/data/sst2",
        text_column: str = "text",
        label_column: str = "label",
        train_split: str = "train",
        validation_split: str = "validation",
        test_split: str = "test",
        validation_fraction: float = 0.1,
        max_length: int = 128,
        min_length: int = 1,
        batch_size: int = 64,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        tokenizer_path: Optional[str] = None,
        tokenizer_kind: TokenizerKind = "word",
        max_vocab_size: int = 30000,
        min_frequency: int = 1,
        tokenizer_cache_dir: Optional[str] = None,
        seed: int = 42,
        bucket_by_length: bool = False,
        pretrained_vectors: Optional[str] = None,
        streaming: bool = False,
        tokenizer_sample_size: int = 20000,
        shuffle_buffer_size: int = 10000,
    ):
        super().__init__()
        for name in ("max_length", "min_length", "batch_size", "eval_batch_size", "max_vocab_size", "min_frequency",
                     "tokenizer_sample_size", "shuffle_buffer_size"):
            if locals()[name] < 1:
                raise UserInputError(f"data.{name} must be a positive integer, got {locals()[name]}")
        if not 0.0 < validation_fraction < 1.0:
            raise UserInputError(f"data.validation_fraction must be in (0, 1), got {validation_fraction}")
        if streaming and num_workers:
            raise UserInputError(
                f"data.num_workers is {num_workers}, but data.streaming reads its stream in the training "
                "process; set data.num_workers=0"
            )
        self.save_hyperparameters()
        self.path, self.text_column, self.label_column = path, text_column, label_column
        self.split_names = {"train": train_split, "validation": validation_split, "test": test_split}
        self._splits: Optional[datasets.DatasetDict] = None
        self._tokenizer: Optional[Tokenizer] = None
        self._encoded: dict[str, datasets.Dataset] = {}
        self._pretrained: Optional[tuple[torch.Tensor, Coverage]] = None
        self._tokenizer_sample: Optional[list[Optional[str]]] = None

    # -- raw splits ---------------------------------------------------------------------------
    @property
    def splits(self) -> datasets.DatasetDict:
        """train / validation / (test) with checked columns and ``ClassLabel`` labels."""
        if self._splits is None:
            self._splits = self._load_splits()
        return self._splits

    def _check_columns(self, raw: Union[datasets.DatasetDict, datasets.IterableDatasetDict]) -> None:
        train_name = self.split_names["train"]
        if train_name not in raw:
            raise UserInputError(
                f"{self.path} has no split {train_name!r} (splits: {', '.join(raw)}); set data.train_split"
            )
        columns = raw[train_name].column_names
        for field, column in (("text_column", self.text_column), ("label_column", self.label_column)):
            if column not in columns:
                raise UserInputError(
                    f"data.{field} {column!r} is not a column of {self.path} "
                    f"(columns: {', '.join(columns)}); set --data.{field}=<one of them>"
                )
        if raw[train_name].features[self.text_column].dtype not in ("string", "large_string"):
            raise UserInputError(f"data.text_column {self.text_column!r} does not hold strings; pick the text column")

    def _load_splits(self) -> Union[datasets.DatasetDict, datasets.IterableDatasetDict]:
        if self.hparams.streaming:
            return self._load_stream_splits()
        raw = load_dataset_dict(self.path)
        train_name = self.split_names["train"]
        self._check_columns(raw)
        if not len(raw[train_name]):
            raise UserInputError(f"the {train_name!r} split of {self.path} is empty; nothing to train on")
        splits = datasets.DatasetDict({role: raw[name] for role, name in self.split_names.items() if name in raw})
        splits = _as_class_labels(splits.select_columns([self.text_column, self.label_column]), self.label_column)
        num_classes = len(_label_names(splits, self.label_column))
        for role, split in splits.items():
            _check_label_range(split, self.split_names[role], self.label_column, num_classes)
        multi_label = _list_item_feature(splits["train"].features[self.label_column]) is not None
        if "validation" not in splits:
            log.info("no %r split: carving %.0f%% of train%s", self.split_names["validation"],
                     100 * self.hparams.validation_fraction, " (multi-label: not stratified)" if multi_label else "")
            try:
                carved = splits["train"].train_test_split(
                    test_size=self.hparams.validation_fraction,
                    stratify_by_column=None if multi_label else self.label_column,
                    seed=self.hparams.seed,
                )
            except ValueError as error:
                raise UserInputError(f"cannot carve a stratified validation split: {error}") from None
            splits["train"], splits["validation"] = carved["train"], carved["test"]
        return splits

    def _load_stream_splits(self) -> datasets.IterableDatasetDict:
        """The splits as streams: checked columns, label names from the features, validation carved by hash."""
        raw = load_dataset_dict(self.path, streaming=True)
        train_name = self.split_names["train"]
        if train_name in raw and raw[train_name].features is None:
            raise UserInputError(
                f"data.streaming: {self.path} does not declare its columns and features; stream parquet files "
                "(or a Hub dataset) whose label column is a ClassLabel, or set data.streaming=false"
            )
        self._check_columns(raw)
        feature = raw[train_name].features[self.label_column]
        if not isinstance(_list_item_feature(feature) or feature, datasets.ClassLabel):
            raise UserInputError(
                f"data.streaming needs the classes before reading the corpus, but data.label_column "
                f"{self.label_column!r} holds {feature}; store it as a datasets.ClassLabel (or "
                "Sequence(ClassLabel)) feature in the files, or set data.streaming=false"
            )
        splits = datasets.IterableDatasetDict({
            role: raw[name].select_columns([self.text_column, self.label_column])
            for role, name in self.split_names.items() if name in raw
        })
        _label_names(splits, self.label_column)  # empty class names are refused here
        if next(iter(splits["train"].take(1)), None) is None:
            raise UserInputError(f"the {train_name!r} split of {self.path} is empty; nothing to train on")
        if "validation" not in splits:
            fraction, seed = self.hparams.validation_fraction, self.hparams.seed
            log.info("no %r split: carving about %.0f%% of train by a hash of each text",
                     self.split_names["validation"], 100 * fraction)
            carve = functools.partial(in_carved_validation, text_column=self.text_column, fraction=fraction, seed=seed)
            train = splits["train"]
            splits["train"] = train.filter(functools.partial(carve, keep=False), batched=True)
            splits["validation"] = train.filter(functools.partial(carve, keep=True), batched=True)
        return splits

    @property
    def label_names(self) -> list[str]:
        return _label_names(self.splits, self.label_column)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def multi_label(self) -> bool:
        """True when the label column holds lists of classes: sigmoid outputs, binary cross-entropy."""
        return _list_item_feature(self.splits["train"].features[self.label_column]) is not None

    # -- tokenizer ----------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            if self.hparams.tokenizer_path:
                self._tokenizer = load_tokenizer(self.hparams.tokenizer_path)
            elif self.hparams.tokenizer_cache_dir:
                self._tokenizer = self._shared_tokenizer(Path(self.hparams.tokenizer_cache_dir))
            else:
                self._tokenizer = self._train_tokenizer()
            self._tokenizer_sample = None  # memory: pretrained_vectors draws the sample again if it needs it
        return self._tokenizer

    def _tokenizer_texts(self) -> Iterable[Optional[str]]:
        """What the tokenizer is trained on: the training split, or with ``streaming`` a seeded
        uniform sample of ``tokenizer_sample_size`` of its texts, drawn in one pass over train."""
        if not self.hparams.streaming:
            return self.splits["train"][self.text_column]
        if self._tokenizer_sample is None:
            texts = (row[self.text_column] for row in self.splits["train"].select_columns([self.text_column]))
            self._tokenizer_sample = reservoir_sample(texts, self.hparams.tokenizer_sample_size, self.hparams.seed)
            log.info("streaming: training the tokenizer on a sample of %d texts", len(self._tokenizer_sample))
        return self._tokenizer_sample

    def _train_tokenizer(self) -> Tokenizer:
        return train_tokenizer(
            (text or "" for text in self._tokenizer_texts()),
            kind=self.hparams.tokenizer_kind,
            vocab_size=self.hparams.max_vocab_size,
            min_frequency=self.hparams.min_frequency,
        )

    def _shared_tokenizer(self, cache_dir: Path) -> Tokenizer:
        """The tokenizer trained once: rank 0 trains it (or finds it from an earlier run) and writes
        it atomically to ``cache_dir``; the other processes wait for that file and load it.

        Why a file and not ``prepare_data`` plus a broadcast: the model's embedding table needs
        ``vocab_size`` when the training CLI instantiates the model from the config, which is before
        ``trainer.fit`` (where Lightning starts ranks 1.. with ``strategy: ddp``, runs
        ``prepare_data`` and creates the process group). Under torchrun or SLURM all ranks start at
        once, so the others must wait; under Lightning's launcher rank 0 has written the file before
        the others start. Training tokenizers is deterministic, but each process training its own
        would cost N times the time and could disagree if the data on the nodes differed; one file
        named by a fingerprint of the training texts and tokenizer settings is what every process
        provably uses.
        """
        path = cache_dir / f"tokenizer-{self._tokenizer_fingerprint()}.json"
        if not is_launch_rank_zero():
            text = wait_for_file(
                path, "tokenizer",
                "on several nodes set data.tokenizer_cache_dir to a directory all nodes share, or train the "
                "tokenizer once and pass it as data.tokenizer_path",
            )
            log.info("%s: using the tokenizer rank 0 trained, %s", launch_rank(), path)
            return tokenizer_from_json(text)
        if path.exists():
            log.info("using the tokenizer trained before on the same texts and settings, %s", path)
            return load_tokenizer(path)
        text = self._train_tokenizer().to_str()
        try:
            write_text_atomic(path, text)
            log.info("trained the tokenizer; saved it for the other processes and later runs, %s", path)
        except OSError as error:  # a single process trains on; other ranks would time out, naming the fix
            log.warning("cannot save the tokenizer to %s (%s); set data.tokenizer_cache_dir", path, error.strerror)
        return tokenizer_from_json(text)

    def _tokenizer_fingerprint(self) -> str:
        """A digest of the training texts, the settings that make the tokenizer and the recipe itself
        (the source of ``textcnn.tokenizer``), so a changed normalizer never reuses an old file."""
        digest = hashlib.sha256(json.dumps([
            tokenizers.__version__, self.hparams.tokenizer_kind, self.hparams.max_vocab_size,
            self.hparams.min_frequency,
        ]).encode())
        digest.update(Path(tokenizer_recipe.__file__).read_bytes())
        for text in self._tokenizer_texts():
            encoded = (text or "").encode("utf-8")
            digest.update(len(encoded).to_bytes(8, "little") + encoded)
        return digest.hexdigest()[:20]

    def use_tokenizer(self, tokenizer: Tokenizer) -> None:
        """Encode with a tokenizer that was trained before (e.g. the one inside a checkpoint)."""
        self._tokenizer = tokenizer
        self._encoded.clear()
        self._pretrained = None

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def tokenizer_json(self) -> str:
        return self.tokenizer.to_str()

    # -- pretrained vectors -------------------------------------------------------------------
    @property
    def pretrained_embeddings(self) -> Optional[torch.Tensor]:
        """(vocab_size, dim) vectors for the tokenizer's vocabulary, or None without ``pretrained_vectors``."""
        if not self.hparams.pretrained_vectors:
            return None
        if self._pretrained is None:
            if self.hparams.streaming:  # the token counts of the tokenizer's sample, not of the whole stream
                texts = [text or "" for text in self._tokenizer_texts()]
                rows = encode(self.tokenizer, texts, self.hparams.max_length)
                ids = np.fromiter((i for row in rows for i in row), dtype=np.int64)
            else:
                ids = pc.list_flatten(self.encoded("train").data.column("input_ids")).to_numpy()
            counts = np.bincount(ids, minlength=self.vocab_size)
            self._pretrained = pretrained_matrix(
                self.hparams.pretrained_vectors, self.tokenizer.get_vocab(), self.hparams.seed, counts
            )
        return self._pretrained[0]

    @property
    def embedding_coverage(self) -> Optional[Coverage]:
        """How many vocabulary words (and training tokens) have a pretrained vector."""
        return None if self.pretrained_embeddings is None else self._pretrained[1]

    # -- batches ------------------------------------------------------------------------------
    def encoded(self, role: str) -> Union[datasets.Dataset, datasets.IterableDataset]:
        """The split (``train``, ``validation`` or ``test``) as token ids and labels (a stream with ``streaming``)."""
        if role not in self.splits:
            available = ", ".join(self.split_names[r] for r in self.splits)
            raise UserInputError(
                f"{self.path} has no {role} split {self.split_names.get(role, role)!r} "
                f"(available: {available}); pick one of those"
            )
        if self.hparams.streaming:
            return self._encoded_stream(self.splits[role], self.split_names[role])
        if role not in self._encoded:
            tokenize = functools.partial(
                _tokenize_batch, tokenizer=self.tokenizer, text_column=self.text_column,
                max_length=self.hparams.max_length,
            )
            split = self.splits[role].map(tokenize, batched=True, keep_in_memory=True, desc=f"tokenizing {role}")
            split = split.select_columns(["input_ids", self.label_column])
            if self.label_column != "labels":
                split = split.rename_column(self.label_column, "labels")
            self._encoded[role] = split
        return self._encoded[role]

    def _encoded_stream(self, split: datasets.IterableDataset, split_name: str) -> datasets.IterableDataset:
        tokenize = functools.partial(self._tokenize_stream, split_name=split_name)
        split = split.map(tokenize, batched=True).select_columns(["input_ids", self.label_column])
        return split if self.label_column == "labels" else split.rename_column(self.label_column, "labels")

    def _tokenize_stream(self, batch: dict, split_name: str) -> dict:
        return _tokenize_stream_batch(batch, self.tokenizer, self.text_column, self.hparams.max_length,
                                      self.label_column, self.num_classes, split_name)

    def _encode_rows(self, rows: list[dict], split_name: str) -> list[dict]:
        """Raw rows of a stream → rows of ``input_ids`` and ``labels``, as :meth:`encoded` makes them."""
        labels = [row[self.label_column] for row in rows]
        batch = {self.text_column: [row[self.text_column] for row in rows], self.label_column: labels}
        ids = self._tokenize_stream(batch, split_name)["input_ids"]
        return [{"input_ids": row_ids, "labels": label} for row_ids, label in zip(ids, labels)]

    def collate(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        """Padded ids (B, L) and labels: class ids (B,), or multi-hot float targets (B, num_classes)."""
        if self.multi_label:
            labels = torch.zeros(len(rows), self.num_classes)
            for index, row in enumerate(rows):
                labels[index, row["labels"]] = 1.0
        else:
            labels = torch.tensor([row["labels"] for row in rows], dtype=torch.long)
        return {"input_ids": pad_batch([row["input_ids"] for row in rows], self.hparams.min_length), "labels": labels}

    def dataloader(self, role: str, shuffle: bool = False) -> DataLoader:
        """Batches of ``role``; shuffled ones in a seeded per-epoch order (``torch.initial_seed()``,
        i.e. ``seed_everything``). Loaders own their generator, so they never draw from the global
        one that dropout uses: resumed and uninterrupted runs stay identical. In a distributed run
        this process gets its share of every batch (:class:`ShuffledBatches`). With ``streaming``
        the batches are built on the fly (:class:`StreamBatches`)."""
        if self.hparams.streaming:
            return self._stream_dataloader(role, shuffle)
        split = self.encoded(role)
        rank, world_size = self._process_share(role, len(split))
        batch_size = self.hparams.batch_size if role == "train" else self.hparams.eval_batch_size
        order = None
        if shuffle:  # rank 0's seed: every process must draw the same order for the shares to be disjoint
            seed = torch.initial_seed() if world_size == 1 else self.trainer.strategy.broadcast(torch.initial_seed())
            order = EpochShuffle(len(split), seed)
        if shuffle and not self.hparams.bucket_by_length:
            batches = ShuffledBatches(order, batch_size, rank, world_size)
        else:  # evaluation always goes in length order: same metrics, far less padding
            lengths = [len(ids) for ids in split["input_ids"]]
            batches = LengthBatches(lengths, batch_size, order, rank=rank, world_size=world_size)
        return DataLoader(
            split,
            batch_sampler=batches,
            collate_fn=self.collate,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
            generator=torch.Generator().manual_seed(torch.initial_seed()),
        )

    def _stream_dataloader(self, role: str, shuffle: bool) -> DataLoader:
        rank, world_size = self._process_share(role, size=0)
        seed = None
        if shuffle:  # rank 0's seed: every process must shuffle the stream alike for the shares to be disjoint
            seed = torch.initial_seed() if world_size == 1 else self.trainer.strategy.broadcast(torch.initial_seed())
        batch_size = self.hparams.batch_size if role == "train" else self.hparams.eval_batch_size
        sort_pools = self.hparams.bucket_by_length or not shuffle  # evaluation in length order, as without streaming
        if role not in self.splits:
            self.encoded(role)  # names the available splits
        encode = functools.partial(self._encode_rows, split_name=self.split_names[role])
        batches = StreamBatches(
            self.splits[role], batch_size, encode, self.collate,
            pool_batches=max(1, STREAM_POOL_ROWS // batch_size) if sort_pools else 1, sort_pools=sort_pools,
            shuffle_seed=seed, shuffle_buffer_size=self.hparams.shuffle_buffer_size, epoch=self._current_epoch,
            rank=rank, world_size=world_size,
        )
        return DataLoader(batches, batch_size=None)

    def _current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def _process_share(self, role: str, size: int) -> tuple[int, int]:
        """(rank, number of processes) of the distributed run this module feeds; (0, 1) outside one.

        The loaders shard themselves (Lightning's ``DistributedSampler`` would re-shuffle our seeded
        order, repeat examples to even out the shares, and cannot shard a custom batch sampler), so
        Lightning must leave them alone: the training CLI sets ``trainer.use_distributed_sampler``
        to false.
        """
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return 0, 1
        if trainer._accelerator_connector.use_distributed_sampler:  # no public accessor
            raise UserInputError(
                "trainer.use_distributed_sampler is true, but textcnn's data module shards its batches across "
                "processes itself; set trainer.use_distributed_sampler=false"
            )
        if 0 < size < trainer.world_size:
            raise UserInputError(
                f"the {self.split_names[role]!r} split has {size} examples, fewer than the {trainer.world_size} "
                "processes; use fewer trainer.devices / trainer.num_nodes"
            )
        return trainer.global_rank, trainer.world_size

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("validation")

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test")

    @property
    def has_test_split(self) -> bool:
        return "test" in self.splits
