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
from typing import TYPE_CHECKING, Any, Optional

from textcnn.data.vectors import GLOVE_6B_50D, glove_words, vector_width
from textcnn.tokenizer import words as split_words
from textcnn.training.run_config import Config, get_dotted, is_chosen, with_settings

if TYPE_CHECKING:
    from textcnn.data.datamodule import TextDataModule

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
# A small training set gets a longer schedule in smaller batches, and a wider n-gram bag. At the
# sentence recipe's batch of 64 an epoch of 450 rows is 7 steps: its 15 epochs with a patience of 4
# stopped every run on 500 labelled Chinese reviews at the majority class (70.0%, 3 seeds), before
# the network had left it. Batches of 16 (29 steps an epoch), up to 40 epochs and a patience of 10
# reached 83.9% there (seed 0). With few labels the linear n-gram bag carries more of the decision:
# 64 features in place of 16 lifted 500 TREC questions from 75.9% to 79.4% (3 seeds) and left MR
# (1,000 labels) and ChnSentiCorp as they were. Up to this many training rows an epoch at 16 is at
# most 125 steps, so the schedule costs little.
SMALL_TRAINING_ROWS = 2000
# tv-embeddings need enough labels to learn what their maps mean: on IMDB with 1,000 labels the model
# with them scored under the one without (81.9% and 81.2% on test after 2 and 5 passes, against
# 82.7%), and validation on 100 reviews preferred the worse one; Johnson & Zhang trained on 25,000
TV_MIN_TRAINING_ROWS = SMALL_TRAINING_ROWS
SMALL_DATA_SCHEDULE: dict[str, Any] = {
    "data.batch_size": 16,
    "trainer.max_epochs": 40,
    "early_stopping.patience": 10,
    "model.network.ngram_dim": 64,
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
    training_rows: Optional[int] = None  # all of them, not the sample's; None where not counted

    @property
    def small(self) -> bool:
        return self.training_rows is not None and self.training_rows < SMALL_TRAINING_ROWS


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
    if share is not None and share < PRETRAINED_MIN_WORD_SHARE and not measured.small:
        return Recipe(FROM_SCRATCH_RECIPE, (
            f"GloVe knows {100 * share:.0f}% of the training words (the recipe starts from it from "
            f"{100 * PRETRAINED_MIN_WORD_SHARE:.0f}%): the default recipe learns {FROM_SCRATCH_EMBED_DIM}-dimensional "
            f"embeddings from scratch; give data.pretrained_vectors={GLOVE_6B_50D} to start from GloVe"))
    return Recipe()


def schedule(measured: TextStatistics) -> Recipe:
    """The training schedule for a training set this size: :data:`SMALL_DATA_SCHEDULE` below
    :data:`SMALL_TRAINING_ROWS` rows, else the recipe's own."""
    if not measured.small:
        return Recipe()
    return Recipe(SMALL_DATA_SCHEDULE, (
        f"{measured.training_rows:,} training rows (fewer than {SMALL_TRAINING_ROWS:,}): the default recipe trains in "
        f"batches of {SMALL_DATA_SCHEDULE['data.batch_size']} for up to {SMALL_DATA_SCHEDULE['trainer.max_epochs']} "
        f"epochs, stopping after {SMALL_DATA_SCHEDULE['early_stopping.patience']} without progress, with "
        f"{SMALL_DATA_SCHEDULE['model.network.ngram_dim']} n-gram bag features"))


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


def measure(texts: Sequence[object], starts_from_glove: bool, training_rows: Optional[int] = None) -> TextStatistics:
    """The statistics of a sample of training texts (GloVe's share only where the run starts from it)."""
    words = median_words(texts)
    share = pretrained_word_share(texts) if starts_from_glove and words < DOCUMENT_MEDIAN_WORDS else None
    return TextStatistics(words, share, training_rows)


def training_statistics(config: Config, data: Optional["TextDataModule"] = None) -> Optional[TextStatistics]:
    """The statistics of the training texts a resolved config names (a sample of them), read through
    ``data`` where the caller holds the config's data module already; None for a stream, whose length
    is unknown until it is read."""
    if config["data"].get("streaming"):
        return None
    texts, rows = _training_sample(data or _data_module(config))
    return measure(texts, starts_from_glove=config["data"].get("pretrained_vectors") == GLOVE_6B_50D,
                   training_rows=rows)


def _training_sample(data: "TextDataModule") -> tuple[list[object], int]:
    """A seeded sample of ``data``'s training texts, and how many training rows it holds."""
    with _quiet("textcnn.data.sources", "textcnn.data.datamodule"):  # the run reads the data again and says so
        train = data.splits["train"]
    rows = random.Random(0).sample(range(len(train)), min(len(train), LENGTH_SAMPLE))
    return train.select(rows)[data.text_column], len(train)


def _data_module(config: Config) -> "TextDataModule":
    from textcnn.data.datamodule import TextDataModule

    return TextDataModule(**config["data"])


def with_recipe(config: Config, chosen: set[str]) -> Config:
    """The resolved ``config`` completed by the recipe the training texts call for, where the run leaves
    the network (and the schedule) to it; the user's own settings (``chosen``) always win."""
    config = with_tv_shape(with_vector_width(config, chosen), chosen)
    if is_chosen("config", chosen):
        return config
    measured = training_statistics(config)
    if measured is None:
        return config
    # the network first: a small set's schedule replaces the document recipe's patience too
    derived = [] if any(is_chosen(key, chosen) for key in CHOOSES_THE_NETWORK) else [recipe(measured)]
    derived.append(schedule(measured))
    for part in derived:
        if part.reason:
            log.info(part.reason)
        config = with_settings(config, part.settings, chosen)[0]
    return config


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


def with_tv_shape(config: Config, chosen: set[str]) -> Config:
    """tv-embeddings the user gave set the network's ``tv_channels`` and ``tv_width``, unless the user
    set those too (and then the model says what does not fit)."""
    path = get_dotted(config, "model.tv_embeddings")
    if not path or any(is_chosen(f"model.network.{key}", chosen) for key in ("tv_channels", "tv_width")):
        return config
    return with_settings(config, tv_settings(path), chosen)[0]


def tv_settings(path: str) -> dict[str, Any]:
    """The config keys that take the tv-embeddings of ``path``."""
    from textcnn.training.tv_embedding import read

    table = read(path)
    return {"model.tv_embeddings": str(path), "model.network.tv_channels": int(table["channels"]),
            "model.network.tv_width": int(table["width"])}


def with_unlabeled_vectors(config: Config, chosen: set[str], data: "TextDataModule") -> Optional[Config]:
    """For sentences with ``data.unlabeled_file``: the completed ``config`` with embeddings that start
    from vectors trained on the unlabelled and training texts (:mod:`textcnn.training.pretrain`),
    fine-tuned, at the vectors' width; None (and one line saying why) where the run leaves them out."""
    from textcnn.training.pretrain import VectorRecipe, cached_vectors

    given = [key for key in CHOOSES_THE_NETWORK[1:] if is_chosen(key, chosen)]
    measured = None if given else training_statistics(config, data)
    share = measured.pretrained_word_share if measured is not None else None
    why = (f"the run sets {', '.join(given)} itself" if given else
           "a stream's texts are not measured" if measured is None else
           "the document recipe learns region embeddings, which start from no vectors"
           if measured.median_words >= DOCUMENT_MEDIAN_WORDS else
           f"GloVe knows {100 * share:.0f}% of the training words, and its vectors, from 6 billion words of "
           "text, are the better start (textcnn pretrain writes vectors to try with data.pretrained_vectors)"
           if share is not None and share >= PRETRAINED_MIN_WORD_SHARE else None)
    if why:
        log.info("unlabelled text: no vectors are trained from it: %s", why)
        return None
    texts, root = _training_texts_and_root(config, data)
    vectors = cached_vectors(config["data"]["unlabeled_file"], data.text_column, lambda: texts,
                             VectorRecipe(seed=config.get("seed_everything") or 0), root / "vectors")
    settings = {"data.pretrained_vectors": str(vectors), "model.network.embedding_mode": "non-static",
                "model.network.embed_dim": VectorRecipe.dim}
    return with_settings(config, settings, chosen)[0]


def with_unlabeled_tv_embeddings(config: Config, chosen: set[str], data: "TextDataModule") -> Optional[Config]:
    """For a region network with ``data.unlabeled_file``: the completed ``config`` with tv-embeddings
    trained on the unlabelled and training texts (:mod:`textcnn.training.tv_embedding`), cached under
    the run's root; None (and one line saying why) where the run leaves them out."""
    from textcnn.training.tv_embedding import TvRecipe, cached_tv_embeddings

    given = [key for key in ("model.tv_embeddings", "model.network.tv_channels") if is_chosen(key, chosen)]
    rows = None if config["data"].get("streaming") else len(data.splits["train"])
    why = (f"the run sets {', '.join(given)} itself" if given else
           "a stream's texts are not read twice" if rows is None else
           f"{rows:,} training rows (fewer than {TV_MIN_TRAINING_ROWS:,}): with 1,000 labels on IMDB the model with "
           "them scored under the one without (self-training is the lever for few labels)"
           if rows < TV_MIN_TRAINING_ROWS else None)
    if why:
        log.info("unlabelled text: no tv-embeddings are trained from it: %s", why)
        return None
    texts, root = _training_texts_and_root(config, data)
    table = cached_tv_embeddings(config["data"]["unlabeled_file"], data.text_column, lambda: texts, data.tokenizer,
                                 TvRecipe(seed=config.get("seed_everything") or 0), root / "tv-embeddings")
    return with_settings(config, tv_settings(str(table)), chosen)[0]


def _training_texts_and_root(config: Config, data: "TextDataModule") -> tuple[list[object], Path]:
    """The training texts (what is learnt from the unlabelled text also reads them) and the run's root."""
    with _quiet("textcnn.data.sources", "textcnn.data.datamodule"):
        texts = list(data.splits["train"][data.text_column])
    return texts, Path(get_dotted(config, "trainer.default_root_dir") or ".")
