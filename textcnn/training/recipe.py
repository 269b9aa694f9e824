"""What the default recipe derives from the data itself: documents get region embeddings.

The default recipe (``configs/sst2.yaml``'s settings, what a command without ``--config`` trains)
is built for sentences: GloVe 50d fine-tuned, two stacked convolution layers. On documents (IMDB's
reviews) one-hot region embeddings (Johnson & Zhang 2015) scored higher in a fraction of the time
(docs/results.md), so when the median training text is a document the recipe switches to
them. Only the length decides; nothing is set per dataset.
"""

from __future__ import annotations

import logging
import random
import statistics
from collections.abc import Sequence

log = logging.getLogger(__name__)

# the median words (whitespace-separated) of a training text from which it counts as a document:
# SST, MR, Subj and TREC sit at 10–25, news headlines and abstracts at 30–60, IMDB's reviews at ~170.
# Checked on IMDB cut to 64 and 128 words: the recipe picked beats both baselines on test, and the
# other recipe does not beat it there (README, "How it compares").
DOCUMENT_MEDIAN_WORDS = 100
LENGTH_SAMPLE = 2000  # training texts measured: the median of a sample is enough to tell
# configs/imdb_region.yaml's settings where they differ from the sentence recipe's
DOCUMENT_RECIPE = (
    "--model.network.architecture=region",
    "--model.network.embedding_mode=rand",
    "--data.pretrained_vectors=null",
    "--model.network.conv_channels=[300]",
    "--model.network.kernel_sizes=[3]",
    "--data.max_length=1024",
    "--early_stopping.patience=2",
)
# a command that picks the architecture or the embeddings itself keeps the sentence recipe under them
CHOOSES_THE_NETWORK = ("--config", "--model.network.architecture", "--model.network.embedding_mode",
                       "--data.pretrained_vectors")


def median_words(texts: Sequence[object]) -> float:
    return statistics.median(len(str(text or "").split()) for text in texts) if texts else 0.0


def with_derived_recipe(args: Sequence[str]) -> list[str]:
    """``args`` (a training command line) with the document recipe's settings put before them when the
    command leaves the network to the default recipe and the training texts are documents; the
    command's own settings still win over the recipe's."""
    args = list(args)
    if any(arg.split("=", 1)[0] in CHOOSES_THE_NETWORK or arg in ("-h", "--help", "--print_config")
           for arg in args):
        return args
    from textcnn.training.build import build_data

    data = build_data(args)
    if data.hparams.streaming:  # a stream's length is unknown until read: the sentence recipe
        return args
    train = data.splits["train"]
    rows = random.Random(0).sample(range(len(train)), min(len(train), LENGTH_SAMPLE))
    words = median_words(train.select(rows)[data.text_column])
    if words < DOCUMENT_MEDIAN_WORDS:
        return args
    log.info("the training texts are documents (median %.0f words; %d or more count as documents): the default "
             "recipe trains region embeddings over one-hot tokens (configs/imdb_region.yaml); give "
             "model.network.architecture=textcnn for the sentence recipe", words, DOCUMENT_MEDIAN_WORDS)
    return [*DOCUMENT_RECIPE, *args]
