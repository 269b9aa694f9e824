"""Word vectors learned from unlabelled text, for the embeddings to start from.

Practitioners have far more text than labels. Vectors trained with gensim on the unlabelled texts
(and the training texts) know the words of *their* domain, where GloVe knows general English, or
Chinese hardly at all. The texts are split as textcnn's word tokenizer splits them (lowercased,
each CJK character alone), so the vectors' words are the vocabulary's.

* ``textcnn pretrain --data.unlabeled_file=FILE --output DIR`` writes ``DIR/vectors.txt``
  (word2vec text format) for ``--data.pretrained_vectors``, and ``DIR/pretrain.json``;
* ``textcnn train --data.unlabeled_file=FILE`` does the same after a sentence-recipe run, cached
  under the run's root by the digest of the file, the training texts and the settings, so a second
  run skips it; a second model starts its embeddings from the vectors (fine-tuned) at their width,
  and validation keeps the better of the two (``textcnn.training.run``).

The unlabelled file is streamed (it may be far larger than memory): a plain text file is one text
per line; a CSV, TSV, JSON Lines or parquet file gives its text column.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from textcnn.atomic import write_text_atomic
from textcnn.data.unlabeled import Texts, hash_texts, unlabeled_texts
from textcnn.errors import UserInputError
from textcnn.tokenizer import words

log = logging.getLogger(__name__)

KINDS = ("word2vec", "fasttext")
# gensim counts every word type while it scans the texts; past this many it drops the rarest, so the
# scan of a file with endless typos, numbers or names stays near 200 MB (gensim: 1 GB per 10 million)
MAX_WORD_TYPES_SCANNED = 2_000_000


@dataclass(frozen=True)
class VectorRecipe:
    """How the vectors are trained: gensim's Word2Vec (skip-gram) or FastText (with sub-word n-grams,
    which suit typos and CJK characters)."""

    kind: str = "word2vec"
    dim: int = 100
    window: int = 5
    min_count: int = 2
    epochs: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserInputError(f"the vectors' kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("dim", "window", "min_count", "epochs"):
            if getattr(self, name) < 1:
                raise UserInputError(f"the vectors' {name} must be a positive integer, got {getattr(self, name)}")


class _Sentences:
    """The texts as lists of words, iterable again for each of gensim's passes."""

    def __init__(self, *sources: Texts):
        self.sources = sources

    def __iter__(self) -> Iterator[list[str]]:
        for texts in self.sources:
            for text in texts():
                split = words(text)
                if split:
                    yield split


def train_vectors(sources: list[Texts], recipe: VectorRecipe):
    """gensim ``KeyedVectors`` trained on the texts of ``sources``."""
    from gensim.models import FastText, Word2Vec

    model_class = Word2Vec if recipe.kind == "word2vec" else FastText
    sentences = _Sentences(*sources)
    model = model_class(vector_size=recipe.dim, window=recipe.window, min_count=recipe.min_count, sg=1,
                        max_vocab_size=MAX_WORD_TYPES_SCANNED, seed=recipe.seed,
                        workers=max(1, min(4, os.cpu_count() or 1)))
    model.build_vocab(sentences)
    if not len(model.wv):
        raise UserInputError(f"no word occurs {recipe.min_count} times in the unlabelled texts; give more text")
    model.train(sentences, total_examples=model.corpus_count, epochs=recipe.epochs)
    return model.wv


def digest(path: str, training: Texts, recipe: VectorRecipe) -> str:
    """What the cached vectors are named by: the unlabelled file's bytes, the training texts, the recipe."""
    import gensim

    return hash_texts(hashlib.sha256(json.dumps([gensim.__version__, asdict(recipe)]).encode()), path, training)


def write_vectors(vectors, path: Path) -> None:
    """word2vec text format, written atomically (a crash leaves no half file to be reused)."""
    lines = [f"{len(vectors)} {vectors.vector_size}"]
    lines += [f"{word} {' '.join(f'{value:.5f}' for value in vectors[word])}" for word in vectors.index_to_key]
    write_text_atomic(path, "\n".join(lines) + "\n")


def cached_vectors(unlabeled_file: str, text_column: str, training: Texts, recipe: VectorRecipe,
                   cache_dir: Path) -> Path:
    """The vectors of the unlabelled and training texts, trained once per file, texts and recipe."""
    path = cache_dir / f"vectors-{digest(unlabeled_file, training, recipe)}.txt"
    if path.exists():
        log.info("unlabelled text: using the %s vectors trained before on the same texts and settings, %s",
                 recipe.kind, path)
        return path
    started = time.monotonic()
    vectors = train_vectors([unlabeled_texts(unlabeled_file, text_column), training], recipe)
    write_vectors(vectors, path)
    log.info("unlabelled text: trained %d-dimensional %s vectors for %s words on %s and the training texts in "
             "%.0f s (%s); the embeddings start from them", recipe.dim, recipe.kind, f"{len(vectors):,}",
             unlabeled_file, time.monotonic() - started, path)
    return path


def pretrain_command(argv: list[str]) -> dict:
    """``textcnn pretrain``: vectors from an unlabelled file, for ``--data.pretrained_vectors``."""
    parser = argparse.ArgumentParser(prog="textcnn pretrain", description=__doc__.splitlines()[0])
    parser.add_argument("--data.unlabeled_file", dest="unlabeled_file", required=True)
    parser.add_argument("--data.text_column", dest="text_column", default="text")
    parser.add_argument("--output", required=True, help="a directory for vectors.txt and pretrain.json")
    parser.add_argument("--kind", choices=KINDS, default=VectorRecipe.kind)
    parser.add_argument("--tv-embeddings", dest="tv_embeddings", action="store_true",
                        help="also write tv-embeddings.pt, region embeddings for a region network (model.tv_embeddings)")
    for name in ("dim", "window", "min_count", "epochs", "seed"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=getattr(VectorRecipe, name))
    args = parser.parse_args(argv)
    recipe = VectorRecipe(args.kind, args.dim, args.window, args.min_count, args.epochs, args.seed)
    output = Path(args.output)
    target = output / "vectors.txt"
    for path in (target, output / "tv-embeddings.pt") if args.tv_embeddings else (target,):
        if path.exists():
            raise UserInputError(f"{path} exists; give another --output, or remove it first")
    started = time.monotonic()
    vectors = train_vectors([unlabeled_texts(args.unlabeled_file, args.text_column)], recipe)
    output.mkdir(parents=True, exist_ok=True)
    write_vectors(vectors, target)
    report = {"vectors": str(target), "words": len(vectors), **asdict(recipe),
              "unlabeled_file": args.unlabeled_file, "seconds": round(time.monotonic() - started, 1)}
    if args.tv_embeddings:
        from textcnn.training.tv_embedding import pretrain_tv_embeddings

        started = time.monotonic()
        report["tv_embeddings"] = str(pretrain_tv_embeddings(args.unlabeled_file, args.text_column, output, args.seed))
        report["tv_seconds"] = round(time.monotonic() - started, 1)
    write_text_atomic(output / "pretrain.json", json.dumps(report, indent=2) + "\n")
    log.info("wrote %s (%s words, %d dimensions): train with --data.pretrained_vectors=%s", target,
             f"{len(vectors):,}", recipe.dim, target)
    return report
