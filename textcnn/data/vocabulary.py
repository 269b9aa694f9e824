"""The vocabulary: the tokenizer trained once on the training texts (or given), shared between
processes and runs, and the pretrained vectors that fill its embedding rows.

Why a file and not ``prepare_data`` plus a broadcast: the model's embedding table needs
``vocab_size`` when the training CLI instantiates the model from the config, which is before
``trainer.fit`` (where Lightning starts ranks 1.. with ``strategy: ddp``, runs ``prepare_data`` and
creates the process group). Under torchrun or SLURM all ranks start at once, so the others must
wait; under Lightning's launcher rank 0 has written the file before the others start. Training
tokenizers is deterministic, but each process training its own would cost N times the time and
could disagree if the data on the nodes differed; one file named by a fingerprint of the training
texts and tokenizer settings is what every process provably uses.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import tokenizers
import torch
from tokenizers import Tokenizer

from textcnn import tokenizer as tokenizer_module
from textcnn.atomic import write_text_atomic
from textcnn.data.distributed import is_launch_rank_zero, launch_rank, wait_for_file
from textcnn.data.vectors import Coverage, pretrained_matrix
from textcnn.tokenizer import TokenizerKind, load_tokenizer, tokenizer_from_json, train_tokenizer

log = logging.getLogger(__name__)

Texts = Callable[[], Iterable[Optional[str]]]  # called again for each pass over the training texts


@dataclass(frozen=True)
class TokenizerRecipe:
    """How a tokenizer is trained on the training texts."""

    kind: TokenizerKind = "word"
    max_vocab_size: int = 30000
    min_frequency: int = 1
    lowercase: bool = True

    def train(self, texts: Iterable[Optional[str]]) -> Tokenizer:
        return train_tokenizer((text or "" for text in texts), kind=self.kind, vocab_size=self.max_vocab_size,
                               min_frequency=self.min_frequency, lowercase=self.lowercase)

    def fingerprint(self, texts: Iterable[Optional[str]]) -> str:
        """A digest of the training texts, these settings and the recipe itself (the source of
        ``textcnn.tokenizer``), so a changed normalizer never reuses an old file."""
        digest = hashlib.sha256(json.dumps([
            tokenizers.__version__, self.kind, self.max_vocab_size, self.min_frequency, self.lowercase,
        ]).encode())
        digest.update(Path(tokenizer_module.__file__).read_bytes())
        for text in texts:
            encoded = (text or "").encode("utf-8")
            digest.update(len(encoded).to_bytes(8, "little") + encoded)
        return digest.hexdigest()[:20]


def tokenizer_for(texts: Texts, recipe: TokenizerRecipe, tokenizer_path: Optional[str] = None,
                  cache_dir: Optional[str] = None) -> Tokenizer:
    """The given ``tokenizer.json``; else the one trained on ``texts``, through ``cache_dir`` when set
    (trained once by rank 0, see :func:`shared_tokenizer`), in this process otherwise."""
    if tokenizer_path:
        return load_tokenizer(tokenizer_path)
    if cache_dir:
        return shared_tokenizer(texts, recipe, Path(cache_dir))
    return recipe.train(texts())


def shared_tokenizer(texts: Texts, recipe: TokenizerRecipe, cache_dir: Path) -> Tokenizer:
    """The tokenizer trained once: rank 0 trains it (or finds it from an earlier run) and writes it
    atomically to ``cache_dir`` as ``tokenizer-<fingerprint>.json``; the other processes wait for
    that file and load it."""
    path = cache_dir / f"tokenizer-{recipe.fingerprint(texts())}.json"
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
    text = recipe.train(texts()).to_str()
    try:
        write_text_atomic(path, text)
        log.info("trained the tokenizer; saved it for the other processes and later runs, %s", path)
    except OSError as error:  # a single process trains on; other ranks would time out, naming the fix
        log.warning("cannot save the tokenizer to %s (%s); set data.tokenizer_cache_dir", path, error.strerror)
    return tokenizer_from_json(text)


def pretrained_embeddings(vectors: str, tokenizer: Tokenizer, token_ids: np.ndarray,
                          seed: int) -> tuple[torch.Tensor, Coverage]:
    """(vocab_size, dim) initial embeddings from ``vectors`` (``glove-6b-50d`` or a GloVe/word2vec
    text file) for the tokenizer's vocabulary; ``token_ids`` are the training tokens, whose counts
    weigh the coverage report."""
    counts = np.bincount(token_ids, minlength=tokenizer.get_vocab_size())
    return pretrained_matrix(vectors, tokenizer.get_vocab(), seed, counts)
