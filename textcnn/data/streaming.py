"""Pieces of the streaming path (``data.streaming``): a corpus read as a stream, never whole in memory.

A missing validation split is carved by a seeded hash of each text, the tokenizer trains on a
reservoir sample, and :class:`StreamBatches` builds padded batches on the fly through a bounded
shuffle buffer. :class:`textcnn.data.TextDataModule` puts them together.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Iterable
from typing import Optional

import datasets
import torch

log = logging.getLogger(__name__)


def validation_share(text: Optional[str], seed: int) -> float:
    """A number in [0, 1) fixed by the text and the seed: the same text always falls in the same split."""
    digest = hashlib.blake2b(f"{seed}:{text or ''}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def in_carved_validation(batch: dict, text_column: str, fraction: float, seed: int, keep: bool) -> list[bool]:
    """Per row: does it belong to the split being kept (the carved validation split if ``keep``, train if not)?"""
    return [(validation_share(text, seed) < fraction) == keep for text in batch[text_column]]


def reservoir_sample(items: Iterable, size: int, seed: int) -> list:
    """A uniform random sample of ``size`` items (all of them if fewer) in one pass, holding only the
    sample (reservoir sampling, as sentencepiece samples its training sentences)."""
    rng, sample = random.Random(seed), []
    for index, item in enumerate(items):
        if index < size:
            sample.append(item)
        elif (slot := rng.randrange(index + 1)) < size:
            sample[slot] = item
    return sample


def labelled_rows(rows: Iterable[dict], label_column: str, split_name: str):
    """The rows that have a label; rows without one are dropped and, once the pass ends, counted in
    a warning (a stream's null labels are only met as it is read)."""
    dropped = 0
    for row in rows:
        if row[label_column] is None:
            dropped += 1
        else:
            yield row
    if dropped:
        log.warning("%s: dropped %d rows with no label in column %r", split_name, dropped, label_column)


def deal(rows: Iterable, rank: int, world_size: int, whole_rounds_only: bool):
    """This process's share of a stream: row ``i`` goes to process ``i % world_size``.

    Not ``datasets.distributed.split_dataset_by_node``: on a stream whose files do not divide among
    the processes it also keeps every ``world_size``-th row, but a process cannot tell that its share
    is one row longer than another's, and DDP needs every process to take the same number of steps.

    With ``whole_rounds_only`` (training) the last incomplete round of fewer than ``world_size``
    rows is dropped, so every process gets exactly ``N // world_size`` rows, cuts the same number
    of batches and takes the same number of optimizer steps, which DDP needs and which a stream of
    unknown length cannot otherwise promise. Evaluation keeps every row (shares differ by at most
    one row; metrics are summed over processes at the end of the epoch, not per step).
    """
    round_ = []
    for row in rows:
        round_.append(row)
        if len(round_) == world_size:
            yield round_[rank]
            round_ = []
    if rank < len(round_) and not whole_rounds_only:
        yield round_[rank]


class StreamBatches(torch.utils.data.IterableDataset):
    """Padded batches built on the fly from a stream of raw rows (``streaming``).

    Rows are read in pools of ``pool_batches`` batches and each pool is encoded at once (``encode``:
    raw rows → rows of ``input_ids`` and ``labels``), so the shuffle buffer holds texts, not the
    several times larger lists of ids. With ``sort_pools`` each pool is sorted by
    length before it is cut, so a batch pads only to its own longest text (on-the-fly length
    bucketing). With ``shuffle_seed`` (training) rows go through ``datasets``' shuffle buffer of
    ``shuffle_buffer_size`` rows (``IterableDataset.shuffle``, which also shuffles the order of the
    files) and a pool's batches are put in random order, both fixed by (seed, epoch): every epoch
    differs, and the same epoch is the same in every run. Rows move at most about the buffer's size
    within a file, so files sorted by label need a buffer that large. With ``label_column``
    rows without a label are dropped first (:func:`labelled_rows`; ``split_name`` for the warning). ``epoch`` is called
    when an iteration starts (the trainer's current epoch). At most the shuffle buffer and one pool
    are in memory.

    In a distributed run (``world_size`` > 1) every process reads the whole stream and shuffles it
    the same way (the same seed), then keeps its share (:func:`deal`): only its own rows are
    tokenized and batched, and a training epoch drops at most ``world_size - 1`` rows, different
    ones each epoch.
    """

    def __init__(self, rows: datasets.IterableDataset, batch_size: int, encode: Callable[[list[dict]], list[dict]],
                 collate: Callable[[list[dict]], dict], pool_batches: int = 1, sort_pools: bool = False,
                 shuffle_seed: Optional[int] = None, shuffle_buffer_size: int = 1,
                 epoch: Callable[[], int] = lambda: 0, rank: int = 0, world_size: int = 1,
                 label_column: Optional[str] = None, split_name: str = ""):
        super().__init__()
        self.rank, self.world_size = rank, world_size
        self.rows, self.batch_size, self.encode, self.collate = rows, batch_size, encode, collate
        self.pool_batches, self.sort_pools, self.epoch = pool_batches, sort_pools, epoch
        self.shuffle_seed, self.shuffle_buffer_size = shuffle_seed, shuffle_buffer_size
        self.label_column, self.split_name = label_column, split_name

    def __iter__(self):
        source, rng = self.rows, None
        if self.shuffle_seed is not None:  # datasets' buffer shuffle (and its files' order), seeded per epoch
            epoch = self.epoch()
            source = source.shuffle(seed=self.shuffle_seed, buffer_size=self.shuffle_buffer_size)
            source.set_epoch(epoch)
            rng = random.Random(f"{self.shuffle_seed}:{epoch}")  # the order of each pool's batches
        rows = iter(source)
        if self.label_column is not None:
            rows = labelled_rows(rows, self.label_column, self.split_name)
        if self.world_size > 1:
            rows = deal(rows, self.rank, self.world_size, whole_rounds_only=self.shuffle_seed is not None)
        pool, pool_size = [], self.batch_size * self.pool_batches
        for row in rows:
            pool.append(row)
            if len(pool) == pool_size:
                yield from self._batches(pool, rng)
                pool = []
        if pool:
            yield from self._batches(pool, rng)

    def _batches(self, pool: list[dict], rng: Optional[random.Random]):
        pool = self.encode(pool)
        if self.sort_pools:
            pool.sort(key=lambda row: len(row["input_ids"]))
        batches = [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        if rng is not None and self.sort_pools:
            rng.shuffle(batches)
        for batch in batches:
            yield self.collate(batch)


STREAM_POOL_ROWS = 2048  # rows held for length bucketing in a stream: the pool's batches share one sort
