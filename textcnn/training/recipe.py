"""What the default recipe derives from the data itself: documents get region embeddings, and text
GloVe hardly knows gets embeddings learned from scratch.

The default recipe (``configs/sst2.yaml``'s settings, what a command without ``--config`` trains)
is built for English sentences: GloVe 50d fine-tuned, two stacked convolution layers. On documents
(IMDB's reviews) one-hot region embeddings (Johnson & Zhang 2015) scored higher in a fraction of the
time (docs/results.md), so when the median training text is a document the recipe switches to them.
On text in another language (Chinese reviews: GloVe knows 14% of the words) GloVe's vectors start
few words anywhere useful and only hold the embeddings to its 50 dimensions, so the recipe learns
128-dimensional embeddings from scratch instead (docs/results-chinese.md). Only the length and
GloVe's share of the words decide; nothing is set per dataset.

:func:`recipe` is that decision alone, a pure function from :class:`TextStatistics` to settings;
:func:`with_recipe` measures a run's training texts and applies it to the run's config.
"""

from __future__ import annotations

import contextlib
import logging
import random
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from textcnn.data.vectors import GLOVE_6B_50D, glove_words, vector_width
from textcnn.tokenizer import words as split_words
from textcnn.training.run_config import Config, get_dotted, is_chosen, with_settings

log = logging.getLogger(__name__)

# the median words (whitespace-separated) of a training text from which it counts as a document:
# SST, MR, Subj and TREC sit at 10–25, news headlines and abstracts at 30–60, IMDB's reviews at ~170.
# Checked on IMDB cut to 64 and 128 words: the recipe picked beats both baselines on test, and the
# other recipe does not beat it there (README, "How it compares").
DOCUMENT_MEDIAN_WORDS = 100
LENGTH_SAMPLE = 2000  # training texts measured: the median of a sample is enough to tell
# configs/imdb_region.yaml's settings where they differ from the sentence recipe's
DOCUMENT_RECIPE: dict[str, Any] = {
    "model.network.architecture": "region",
    "model.network.embedding_mode": "rand",
    "data.pretrained_vectors": None,
    "model.network.conv_channels": [300],
    "model.network.kernel_sizes": [3],
    "data.max_length": 1024,
    "early_stopping.patience": 2,
}
# the share of the training words (as the word tokenizer splits them) GloVe must know for the recipe
# to start from it: English text sits at 99% and more (SST, MR, Subj, TREC, IMDB), Chinese reviews at 14%
PRETRAINED_MIN_WORD_SHARE = 0.5
# what the recipe trains instead when GloVe knows fewer: chosen on ChnSentiCorp's validation split,
# 3 seeds, best epoch: 89.5% against GloVe 50d's 88.7% (test 91.4 against 91.1)
FROM_SCRATCH_EMBED_DIM = 128
FROM_SCRATCH_RECIPE: dict[str, Any] = {
    "model.network.embedding_mode": "rand",
    "data.pretrained_vectors": None,
    "model.network.embed_dim": FROM_SCRATCH_EMBED_DIM,
}
# a run that picks the architecture or the embeddings itself (or gives a whole config) keeps the
# sentence recipe under them
CHOOSES_THE_NETWORK = ("config", "model.network.architecture", "model.network.embedding_mode",
                       "data.pretrained_vectors")


@dataclass(frozen=True)
class TextStatistics:
    """What the recipe looks at, measured on a sample of the training texts."""

    median_words: float
    pretrained_word_share: Optional[float] = None  # GloVe's share of the words; None when the run does not start from it


@dataclass(frozen=True)
class Recipe:
    """The settings the recipe derives (dotted keys), and the log line that says why; none for English sentences."""

    settings: dict[str, Any] = field(default_factory=dict)
    reason: Optional[str] = None


def recipe(measured: TextStatistics) -> Recipe:
    """The default recipe's settings for training texts like these: a pure function of the statistics."""
    words = measured.median_words
    if words >= DOCUMENT_MEDIAN_WORDS:
        return Recipe(DOCUMENT_RECIPE, (
            f"the training texts are documents (median {words:.0f} words; {DOCUMENT_MEDIAN_WORDS} or more count as "
            "documents): the default recipe trains region embeddings over one-hot tokens (configs/imdb_region.yaml); "
            "give model.network.architecture=textcnn for the sentence recipe"))
    share = measured.pretrained_word_share
    if share is not None and share < PRETRAINED_MIN_WORD_SHARE:
        return Recipe(FROM_SCRATCH_RECIPE, (
            f"GloVe knows {100 * share:.0f}% of the training words (the recipe starts from it from "
            f"{100 * PRETRAINED_MIN_WORD_SHARE:.0f}%): the default recipe learns {FROM_SCRATCH_EMBED_DIM}-dimensional "
            f"embeddings from scratch; give data.pretrained_vectors={GLOVE_6B_50D} to start from GloVe"))
    return Recipe()


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """textcnn's own data loggers below WARNING while the recipe looks at the data."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def median_words(texts: Sequence[object]) -> float:
    return statistics.median(len(str(text or "").split()) for text in texts) if texts else 0.0


def pretrained_word_share(texts: Sequence[object]) -> float:
    """The share of the words of ``texts`` (split as the word tokenizer splits them, lowercased as
    GloVe's words are) that GloVe 6B has vectors for."""
    known = glove_words()
    words = [word for text in texts for word in split_words(str(text or ""))]
    return sum(word in known for word in words) / len(words) if words else 1.0


def measure(texts: Sequence[object], starts_from_glove: bool) -> TextStatistics:
    """The statistics of a sample of training texts (GloVe's share only where the run starts from it)."""
    words = median_words(texts)
    share = pretrained_word_share(texts) if starts_from_glove and words < DOCUMENT_MEDIAN_WORDS else None
    return TextStatistics(words, share)


def training_statistics(config: Config) -> Optional[TextStatistics]:
    """The statistics of the training texts a resolved config names (a sample of them); None for a
    stream, whose length is unknown until it is read."""
    from textcnn.data.datamodule import TextDataModule

    if config["data"].get("streaming"):
        return None
    data = TextDataModule(**config["data"])
    with _quiet("textcnn.data.sources", "textcnn.data.datamodule"):  # the run reads the data again and says so
        train = data.splits["train"]
    rows = random.Random(0).sample(range(len(train)), min(len(train), LENGTH_SAMPLE))
    return measure(train.select(rows)[data.text_column],
                   starts_from_glove=config["data"].get("pretrained_vectors") == GLOVE_6B_50D)


def with_recipe(config: Config, chosen: set[str]) -> Config:
    """The resolved ``config`` completed by the recipe the training texts call for, where the run leaves
    the network to it; the user's own settings (``chosen``) always win."""
    config = with_vector_width(config, chosen)
    if config["data"].get("unlabeled_file"):
        config, chosen = with_unlabeled_vectors(config, chosen)
    if any(is_chosen(key, chosen) for key in CHOOSES_THE_NETWORK):
        return config
    measured = training_statistics(config)
    derived = recipe(measured) if measured is not None else Recipe()
    if derived.reason:
        log.info(derived.reason)
    return with_settings(config, derived.settings, chosen)[0]


def with_vector_width(config: Config, chosen: set[str]) -> Config:
    """Vectors the user gave set the embeddings' width, unless the user set that too (and then the
    model says what does not fit)."""
    vectors = config["data"].get("pretrained_vectors")
    if not vectors or not is_chosen("data.pretrained_vectors", chosen) or is_chosen("model.network.embed_dim", chosen):
        return config
    width = vector_width(vectors)
    if width != config["model"]["network"].get("embed_dim"):
        log.info("data.pretrained_vectors %s has %d dimensions: the embeddings are %d wide "
                 "(model.network.embed_dim)", vectors, width, width)
    return with_settings(config, {"model.network.embed_dim": width}, chosen)[0]


def with_unlabeled_vectors(config: Config, chosen: set[str]) -> tuple[Config, set[str]]:
    """Sentences with ``data.unlabeled_file``: the embeddings start from vectors trained on it and on
    the training texts (:mod:`textcnn.training.pretrain`), fine-tuned, at the vectors' width; the
    keys it sets count as chosen, so the rest of the recipe leaves them."""
    from textcnn.data.datamodule import TextDataModule
    from textcnn.training.pretrain import VectorRecipe, cached_vectors

    unlabeled = config["data"]["unlabeled_file"]
    given = [key for key in CHOOSES_THE_NETWORK[1:] if is_chosen(key, chosen)]
    if given:
        log.info("data.unlabeled_file is not used: the run sets %s itself", ", ".join(given))
        return config, chosen
    measured = training_statistics(config)
    if measured is None or measured.median_words >= DOCUMENT_MEDIAN_WORDS:
        log.info("data.unlabeled_file is not used: %s", "a stream's texts are not measured" if measured is None else
                 "the document recipe learns region embeddings, which start from no vectors")
        return config, chosen
    data = TextDataModule(**config["data"])
    with _quiet("textcnn.data.sources", "textcnn.data.datamodule"):
        texts = list(data.splits["train"][data.text_column])
    root = Path(get_dotted(config, "trainer.default_root_dir") or ".")
    vectors = cached_vectors(unlabeled, data.text_column, lambda: texts, VectorRecipe(seed=config.get("seed_everything") or 0),
                             root / "vectors")
    settings = {"data.pretrained_vectors": str(vectors), "model.network.embedding_mode": "non-static",
                "model.network.embed_dim": VectorRecipe.dim}
    return with_settings(config, settings, chosen)[0], set(chosen) | set(settings)
