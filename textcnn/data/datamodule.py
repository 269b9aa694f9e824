"""Dataset → token ids → padded batches, as a ``LightningDataModule``: the arguments, and the
loaders built from the pieces of this package.

Datasets load through ``datasets.load_dataset`` by Hub id or local directory (:mod:`~textcnn.data.sources`).
Label names come from the label column's ``ClassLabel`` feature. A label column that is a list of
classes (``Sequence(ClassLabel)``) makes the dataset multi-label: batches then carry multi-hot float
targets (B, num_classes). A dataset without a validation split gets a seeded one carved from train
(stratified when single-label); the tokenizer is trained on what is left of train
(:mod:`~textcnn.data.vocabulary`).

With ``streaming`` the splits are read as ``datasets`` iterable datasets, never whole in memory
(:mod:`~textcnn.data.streaming`).

In a distributed run (Lightning DDP) every process loads the data, the tokenizer is trained once
(:func:`~textcnn.data.vocabulary.shared_tokenizer`) and each process gets a disjoint share of every
batch (:mod:`~textcnn.data.samplers`).

The data is read when first needed: the properties the training CLI links into the model
(``vocab_size``, ``num_classes``, ``label_names``, …) load and check the splits on first access,
because the model's embedding table is sized when the config is instantiated.

The class documents every key of the config's ``data`` section; the logic behind the loaders lives
in the modules it imports.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Optional, Union

import datasets
import numpy as np
import pyarrow.compute as pc
import pytorch_lightning as pl
import torch
from tokenizers import Tokenizer
from torch.utils.data import DataLoader

from textcnn.data import labels as label_checks
from textcnn.data import sources
from textcnn.data.samplers import EpochShuffle, LengthBatches, ShuffledBatches
from textcnn.data.files import FileFormat
from textcnn.data.sources import SplitSource, load_dataset_dict
from textcnn.data.streaming import STREAM_POOL_ROWS, StreamBatches, reservoir_sample
from textcnn.data.vectors import GLOVE_6B_50D, Coverage
from textcnn.data.vocabulary import TokenizerRecipe, pretrained_embeddings, tokenizer_for
from textcnn.errors import UserInputError
from textcnn.tokenizer import TokenizerKind, encode, pad_batch, tokenize_batch

log = logging.getLogger(__name__)

__all__ = ["TextDataModule", "load_dataset_dict"]


class TextDataModule(pl.LightningDataModule):
    """Loads, validates, tokenizes and batches a text-classification dataset.

    Args:
        path: Hugging Face Hub id (e.g. ``SetFit/sst2``), a local dataset directory (split files
            ``train.*`` / ``validation.*`` / ``test.*``, one folder per class, or ``save_to_disk``), or
            a single file (train only: validation carved, no test figures). See :mod:`textcnn.data.files`.
        train_file / validation_file / test_file: the user's own file for each split (instead of
            ``path``); validation and test may be omitted.
        replay_file / replay_size: earlier training data (any format above), ``replay_size`` rows of
            it (default: as many as train) mixed into train, so a model continued with ``--init_from``
            forgets less; validation and test stay the new data's.
        unlabeled_file: texts without labels: the recipe trains word vectors on them and on train
            (:mod:`textcnn.training.pretrain`) and self-trains on them; never read as examples.
        format: ``csv``, ``tsv``, ``json``, ``parquet``, ``arrow``, ``fasttext`` or ``folder``
            (one folder per class); by default from each file's suffix.
        csv_delimiter: the field separator of CSV files (default ``,``; TSV: tab).
        label_names: the classes in id order: names of integer (or boolean) labels, e.g.
            ``[negative, positive]``, or the order of string labels (default: sorted). Once the data is
            read, the classes found are kept here, so a checkpoint's data settings name them.
        label_separator: multi-label classes joined in one string column, e.g. ``"|"``.
        text_column / label_column: the columns holding the text and its class (a ``ClassLabel``),
            or its classes (a ``Sequence(ClassLabel)``: multi-label).
        train_split / validation_split / test_split: split names; a missing validation split is
            carved from train (``validation_fraction``, stratified, ``seed``).
        max_length: texts are truncated to this many tokens.
        min_length: batches are padded to at least this many tokens (the widest kernel).
        tokenizer_path: use this ``tokenizer.json`` instead of training one.
        tokenizer_kind / max_vocab_size / min_frequency: how the tokenizer is trained on train:
            ``word`` (default), ``wordpiece`` / ``bpe`` / ``unigram`` (sub-words: unseen words get
            pieces) or ``char``; Chinese and Japanese characters are tokens of their own in every kind.
        lowercase: lowercase texts before tokenizing (default); false keeps case.
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
            ``lr_schedule`` cosine / onecycle need ``trainer.max_steps``. ``num_workers`` 0; ``bucket_by_length``
            sorts pools of about ``STREAM_POOL_ROWS`` rows, evaluation too.
        tokenizer_sample_size / shuffle_buffer_size: see ``streaming`` (unused without it).
    """

    def __init__(
        self,
        path: Optional[str] = None,
        text_column: str = "text",
        label_column: str = "label",
        train_file: Optional[str] = None,
        validation_file: Optional[str] = None,
        test_file: Optional[str] = None,
        replay_file: Optional[str] = None, replay_size: Optional[int] = None, unlabeled_file: Optional[str] = None,
        format: Optional[FileFormat] = None,
        csv_delimiter: Optional[str] = None,
        label_names: Optional[list[str]] = None,
        label_separator: Optional[str] = None,
        train_split: str = "train",
        validation_split: str = "validation",
        test_split: str = "test",
        validation_fraction: float = 0.1,
        max_length: int = 512,
        min_length: int = 1,
        batch_size: int = 64,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        tokenizer_path: Optional[str] = None,
        tokenizer_kind: TokenizerKind = "word",
        max_vocab_size: int = 30000,
        min_frequency: int = 1,
        lowercase: bool = True,
        tokenizer_cache_dir: Optional[str] = None,
        seed: int = 42,
        bucket_by_length: bool = False,
        pretrained_vectors: Optional[str] = GLOVE_6B_50D,
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
        files = {"train": train_file, "validation": validation_file, "test": test_file}
        self.source = SplitSource(path, text_column, label_column, self.split_names, validation_fraction, seed,
                                  files, format, csv_delimiter, tuple(label_names) if label_names else None,
                                  label_separator, replay_file, replay_size)
        self.recipe = TokenizerRecipe(tokenizer_kind, max_vocab_size, min_frequency, lowercase)
        self._splits: Optional[datasets.DatasetDict] = None
        self._tokenizer: Optional[Tokenizer] = None
        self._encoded: dict[str, datasets.Dataset] = {}
        self._pretrained: Optional[tuple[torch.Tensor, Coverage]] = None
        self._tokenizer_sample: Optional[list[Optional[str]]] = None

    # -- raw splits ---------------------------------------------------------------------------
    @property
    def splits(self) -> Union[datasets.DatasetDict, datasets.IterableDatasetDict]:
        """train / validation / (test) with checked columns and ``ClassLabel`` labels; loaded on first use."""
        if self._splits is None:
            load = sources.load_stream_splits if self.hparams.streaming else sources.load_splits
            self._splits = load(self.source)
            # kept in the data settings (logged alike with the model's): evaluation reads labels into the same ids
            names = label_checks.label_names(self._splits, self.label_column)
            self.save_hyperparameters({**self.hparams, "label_names": names})
            if not self.hparams.streaming:
                rows = ", ".join(f"{role} {len(split):,}" for role, split in self._splits.items())
                log.info("data: %s rows; %d classes: %s", rows, len(names), ", ".join(names[:10]) +
                         (", …" if len(names) > 10 else ""))
        return self._splits

    @property
    def label_names(self) -> list[str]:
        return label_checks.label_names(self.splits, self.label_column)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def multi_label(self) -> bool:
        """True when the label column holds lists of classes: sigmoid outputs, binary cross-entropy."""
        return label_checks.is_multi_label(self.splits, self.label_column)

    @property
    def label_counts(self) -> Optional[list[int]]:
        """Training examples per class (positives per class when multi-label); None for a stream."""
        if self.hparams.streaming:
            return None
        values = self.splits["train"].with_format("arrow")[self.label_column]  # respects the carved rows
        if self.multi_label:
            values = pc.list_flatten(values)
        counts = np.bincount(values.to_numpy(zero_copy_only=False).astype(np.int64), minlength=self.num_classes)
        return counts.tolist()

    @property
    def has_test_split(self) -> bool:
        return "test" in self.splits

    # -- vocabulary ---------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            self._tokenizer = tokenizer_for(self.tokenizer_texts, self.recipe, self.hparams.tokenizer_path,
                                            self.hparams.tokenizer_cache_dir)
            self._tokenizer_sample = None  # memory: pretrained_vectors draws the sample again if it needs it
        return self._tokenizer

    def tokenizer_texts(self) -> Iterable[Optional[str]]:
        """What the tokenizer is trained on: the training split, or with ``streaming`` a seeded
        uniform sample of ``tokenizer_sample_size`` of its texts, drawn in one pass over train."""
        if not self.hparams.streaming:
            return self.splits["train"][self.text_column]
        if self._tokenizer_sample is None:
            texts = (row[self.text_column] for row in self.splits["train"].select_columns([self.text_column]))
            self._tokenizer_sample = reservoir_sample(texts, self.hparams.tokenizer_sample_size, self.hparams.seed)
            log.info("streaming: training the tokenizer on a sample of %d texts", len(self._tokenizer_sample))
        return self._tokenizer_sample

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

    @property
    def pretrained_embeddings(self) -> Optional[torch.Tensor]:
        """(vocab_size, dim) vectors for the tokenizer's vocabulary, or None without ``pretrained_vectors``."""
        if not self.hparams.pretrained_vectors:
            return None
        if self._pretrained is None:
            if self.hparams.streaming:  # the token counts of the tokenizer's sample, not of the whole stream
                texts = [text or "" for text in self.tokenizer_texts()]
                rows = encode(self.tokenizer, texts, self.hparams.max_length)
                ids = np.fromiter((i for row in rows for i in row), dtype=np.int64)
            else:
                ids = pc.list_flatten(self.encoded("train").data.column("input_ids")).to_numpy()
            self._pretrained = pretrained_embeddings(self.hparams.pretrained_vectors, self.tokenizer, ids,
                                                     self.hparams.seed)
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
                f"{self.source.where} has no {role} split {self.split_names.get(role, role)!r} "
                f"(available: {available}); pick one of those"
            )
        if self.hparams.streaming:
            split = self.splits[role].map(self._tokenize_function(self.split_names[role]), batched=True)
        elif role not in self._encoded:
            split = self.splits[role].map(self._tokenize_function(), batched=True, keep_in_memory=True,
                                          desc=f"tokenizing {role}")
        else:
            return self._encoded[role]
        split = split.select_columns(["input_ids", self.label_column])
        if self.label_column != "labels":
            split = split.rename_column(self.label_column, "labels")
        if not self.hparams.streaming:
            self._encoded[role] = split
        return split

    def _tokenize_function(self, stream_split_name: Optional[str] = None) -> Callable[[dict], dict]:
        """Batch of rows → their token ids; a stream (``stream_split_name`` given) checks its labels
        here, as it meets them, since its splits were never read whole."""
        check = None if stream_split_name is None else functools.partial(
            label_checks.check_labels, split_name=stream_split_name, column=self.label_column,
            num_classes=self.num_classes)
        return functools.partial(tokenize_batch, tokenizer=self.tokenizer, text_column=self.text_column,
                                 label_column=self.label_column, max_length=self.hparams.max_length,
                                 check_labels=check)

    def _encode_rows(self, rows: list[dict], split_name: str) -> list[dict]:
        """Raw rows of a stream → rows of ``input_ids`` and ``labels``, as :meth:`encoded` makes them."""
        labels = [row[self.label_column] for row in rows]
        batch = {self.text_column: [row[self.text_column] for row in rows], self.label_column: labels}
        ids = self._tokenize_function(split_name)(batch)["input_ids"]
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
        batch_size = self._batch_size(role)
        order = EpochShuffle(len(split), self._shuffle_seed(world_size)) if shuffle else None
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
        seed = self._shuffle_seed(world_size) if shuffle else None
        batch_size = self._batch_size(role)
        sort_pools = self.hparams.bucket_by_length or not shuffle  # evaluation in length order, as without streaming
        if role not in self.splits:
            self.encoded(role)  # names the available splits
        encode = functools.partial(self._encode_rows, split_name=self.split_names[role])
        batches = StreamBatches(
            self.splits[role], batch_size, encode, self.collate,
            pool_batches=max(1, STREAM_POOL_ROWS // batch_size) if sort_pools else 1, sort_pools=sort_pools,
            shuffle_seed=seed, shuffle_buffer_size=self.hparams.shuffle_buffer_size, epoch=self._current_epoch,
            rank=rank, world_size=world_size, label_column=self.label_column, split_name=self.split_names[role],
        )
        return DataLoader(batches, batch_size=None)

    def _batch_size(self, role: str) -> int:
        return self.hparams.batch_size if role == "train" else self.hparams.eval_batch_size

    def _shuffle_seed(self, world_size: int) -> int:
        """Rank 0's seed: every process must draw the same order for their shares to be disjoint."""
        return torch.initial_seed() if world_size == 1 else self.trainer.strategy.broadcast(torch.initial_seed())

    def _current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def _process_share(self, role: str, size: int) -> tuple[int, int]:
        """(rank, number of processes) of the distributed run this module feeds; (0, 1) outside one.

        The loaders shard themselves (Lightning's ``DistributedSampler`` would re-shuffle our seeded
        order, repeat examples to even out the shares, and cannot shard a custom batch sampler), so
        Lightning must leave them alone: the training CLI sets ``trainer.use_distributed_sampler``
        to false and refuses true (a Trainer of your own needs ``use_distributed_sampler=False``).
        """
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return 0, 1
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
