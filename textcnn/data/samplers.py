"""Batch samplers over an in-memory split: a shuffle fixed by (seed, epoch), plain or length-bucketed
batches, and the share of each batch that one DDP process takes.

Every training order is a function of (seed, epoch), so a run resumed at epoch k sees the batches
an uninterrupted run would have seen, and all DDP processes draw the same order without talking.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.utils.data import Sampler


def _cut(order: list[int], size: int, min_size: int = 1) -> list[list[int]]:
    """``order`` in consecutive chunks of ``size``; a last chunk shorter than ``min_size`` joins the
    one before, so that every process gets at least one example of every chunk."""
    chunks = [order[i : i + size] for i in range(0, len(order), size)]
    if len(chunks) > 1 and len(chunks[-1]) < min_size:
        last = chunks.pop()
        chunks[-1] = chunks[-1] + last
    return chunks


def _num_chunks(count: int, size: int, min_size: int = 1) -> int:
    """``len(_cut(range(count), size, min_size))`` without building it."""
    chunks = -(-count // size)
    return chunks - 1 if chunks > 1 and 0 < count % size < min_size else chunks


class EpochShuffle(Sampler[int]):
    """A shuffle fixed by (seed, epoch): a run resumed at epoch k sees the batches it would have seen.

    Lightning calls ``set_epoch`` at the start of every epoch.
    """

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def generator(self, stream: int = 0) -> torch.Generator:
        """A generator fixed by (seed, epoch); ``stream`` gives independent ones for other draws."""
        return torch.Generator().manual_seed((self.seed + self.epoch + stream) % 2**63)

    def __iter__(self):
        return iter(torch.randperm(self.size, generator=self.generator()).tolist())

    def __len__(self) -> int:
        return self.size


class ShuffledBatches(Sampler[list[int]]):
    """The epoch's shuffled order (``shuffle``) cut into batches of ``batch_size``.

    With ``world_size`` processes (DDP) the order is cut into global batches of ``world_size ×
    batch_size`` and process ``rank`` takes every ``world_size``-th example of each, from position
    ``rank``: the processes see disjoint shares, together every example once per epoch, and the
    same number of batches (DDP steps them together). All processes draw the same order, so this
    needs no communication. A single process gets exactly ``DataLoader(sampler=shuffle,
    batch_size=batch_size)``'s batches.
    """

    def __init__(self, shuffle: EpochShuffle, batch_size: int, rank: int = 0, world_size: int = 1):
        self.sampler, self.batch_size, self.rank, self.world_size = shuffle, batch_size, rank, world_size

    def __iter__(self):
        for batch in _cut(list(self.sampler), self.batch_size * self.world_size, self.world_size):
            yield batch[self.rank :: self.world_size]

    def __len__(self) -> int:
        return _num_chunks(len(self.sampler), self.batch_size * self.world_size, self.world_size)


class LengthBatches(Sampler[list[int]]):
    """Batches of similar lengths, so a batch pads only to its own longest text.

    For training (``shuffle`` given) the epoch's shuffled order is cut into pools of
    ``pool_batches`` batches, each pool sorted by length and cut into batches, and the batches put
    in a seeded random order: batches stay random while padding all but disappears. Without
    ``shuffle`` (evaluation) the whole split goes in length order. With ``world_size`` processes,
    global batches are dealt out as in :class:`ShuffledBatches`; the shares of a length-sorted batch
    have similar lengths, so no process waits for another's longer texts.
    """

    def __init__(self, lengths: list[int], batch_size: int, shuffle: Optional[EpochShuffle] = None,
                 pool_batches: int = 50, rank: int = 0, world_size: int = 1):
        self.lengths, self.batch_size, self.sampler, self.pool_batches = lengths, batch_size, shuffle, pool_batches
        self.rank, self.world_size = rank, world_size

    def __iter__(self):
        size, by_length = self.batch_size * self.world_size, self.lengths.__getitem__
        if self.sampler is None:
            batches = _cut(sorted(range(len(self.lengths)), key=by_length), size, self.world_size)
        else:
            batches = []
            for pool in _cut(list(self.sampler), size * self.pool_batches, self.world_size):
                batches += _cut(sorted(pool, key=by_length), size, self.world_size)
            generator = self.sampler.generator(stream=1)
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        yield from (batch[self.rank :: self.world_size] for batch in batches)

    def __len__(self) -> int:
        return _num_chunks(len(self.lengths), self.batch_size * self.world_size, self.world_size)
