"""Self-training on the unlabelled text, where the labelled set is small: the first model labels a
sample of the unlabelled texts, its most confident labels join the training rows, a second model
trains on both, and validation keeps whichever of the two scores higher.

Self-training with confidence-filtered pseudo-labels (Yarowsky 1995; Xie et al. 2020's noisy student
for text and images) needs no change to the network and works with any single-label recipe. The
pseudo-labelled rows keep the labelled rows' class shares (each class gets at most
``PSEUDO_PER_LABELLED`` times its labelled rows), so a model that favours one class does not feed
itself more of it; texts the labelled splits hold are left out, so no test text is ever pseudo-labelled.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from textcnn.training.recipe import SMALL_TRAINING_ROWS
from textcnn.training.run_config import Config, get_dotted, with_settings

log = logging.getLogger(__name__)

POOL_SIZE = 20_000  # unlabelled texts the first model labels: a seeded sample of the file
MIN_CONFIDENCE = 0.9  # the first model's probability a pseudo-label needs
PSEUDO_PER_LABELLED = 4  # at most this many pseudo-labelled rows per labelled training row of each class


def reasons_against(config: Config, training_rows: int, multi_label: bool) -> Optional[str]:
    """Why this run does not self-train (None when it does): ``self_training`` false, a set large
    enough on its own (the recipe's few-labels bound, unless ``self_training`` is true), several
    labels per text, a stream, or rows the run mixes in already."""
    choice = config.get("self_training")
    if choice is False:
        return "self_training is false"
    if multi_label:
        return "a multi-label model's pseudo-labels would need a threshold per class"
    if config["data"].get("streaming"):
        return "a stream's training rows are not mixed with others"
    if config["data"].get("replay_file"):
        return "data.replay_file mixes other rows into training already"
    if config.get("init_from"):
        return "a continued model starts from its earlier weights, not from scratch"
    if choice is None and training_rows >= SMALL_TRAINING_ROWS:
        return f"{training_rows:,} labelled training rows are enough on their own (self_training=true to try it)"
    return None


def sample_pool(texts: Iterable[Optional[str]], known: set[str], size: int = POOL_SIZE, seed: int = 0) -> list[str]:
    """A seeded uniform sample (reservoir) of ``size`` distinct unlabelled texts, read once as a stream;
    texts the labelled splits hold (``known``) are skipped."""
    chooser, pool, seen = random.Random(seed), [], 0
    for text in texts:
        text = " ".join(str(text or "").split())
        if not text or text in known:
            continue
        seen += 1
        if len(pool) < size:
            pool.append(text)
        elif (slot := chooser.randrange(seen)) < size:
            pool[slot] = text
    return list(dict.fromkeys(pool))


def pseudo_labels(probabilities: np.ndarray, train_labels: Iterable[int], min_confidence: float = MIN_CONFIDENCE,
                  per_labelled: float = PSEUDO_PER_LABELLED) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``probabilities`` (N, classes) kept as pseudo-labelled, and their labels: per class,
    the most confident predictions of it at ``min_confidence`` or above, at most ``per_labelled`` times
    the class's labelled training rows."""
    confidence, predicted = probabilities.max(axis=1), probabilities.argmax(axis=1)
    shares = Counter(int(label) for label in train_labels)
    rows = []
    for label in range(probabilities.shape[1]):
        candidates = np.flatnonzero((predicted == label) & (confidence >= min_confidence))
        ranked = candidates[np.argsort(-confidence[candidates], kind="stable")]
        rows.append(ranked[: int(per_labelled * shares.get(label, 0))])
    kept = np.concatenate(rows) if rows else np.zeros(0, dtype=int)
    return kept, predicted[kept]


def self_trained(config: Config, first: Any, fit: Callable[[Config], Any]) -> Any:
    """A second run (``fit``) on the training rows and the first model's confident labels of the
    unlabelled text (as rows mixed into train), kept where its ``validation_accuracy`` is higher than
    ``first``'s (both are :class:`textcnn.training.run.Fitted`)."""
    from textcnn.inference import load
    from textcnn.training.pretrain import unlabeled_texts

    data = first.data
    splits, text_column = data.splits, data.text_column
    known = {" ".join(str(text).split()) for split in splits.values() for text in split[text_column]}
    seed = config.get("seed_everything") or 0
    pool = sample_pool(unlabeled_texts(config["data"]["unlabeled_file"], text_column)(), known, seed=seed)
    if not pool:
        log.info("self-training: the unlabelled file holds no text the labelled splits lack; kept the first model")
        return first
    probabilities = load(first.report["checkpoint"]).predict_proba(pool).numpy()
    rows, labels = pseudo_labels(probabilities, splits["train"][data.label_column])
    if not len(rows):
        log.info("self-training: the first model is %.0f%% sure of none of %s unlabelled texts; kept it",
                 100 * MIN_CONFIDENCE, f"{len(pool):,}")
        return first
    folder = Path(get_dotted(config, "trainer.default_root_dir") or ".") / "self-training"
    settings = _split_files(splits, data.text_column, data.label_column, [pool[row] for row in rows], labels, folder)
    log.info("self-training: the first model labelled %s of %s unlabelled texts at %.0f%% confidence or more "
             "(%s); a second model trains on them and the %s training rows", f"{len(rows):,}", f"{len(pool):,}",
             100 * MIN_CONFIDENCE, settings["data.train_file"], f"{len(splits['train']):,}")
    second = fit(with_settings(config, settings, set())[0])
    second_validation, first_validation = second.validation_accuracy, first.validation_accuracy
    keep_second = second_validation > first_validation
    log.info("self-training: validation accuracy %.4f with the pseudo-labels against %.4f without; kept the %s model",
             second_validation, first_validation, "second" if keep_second else "first")
    return second if keep_second else first


def _split_files(splits: Any, text_column: str, label_column: str, texts: list[str], labels: np.ndarray,
                 folder: Path) -> dict[str, Any]:
    """The first run's splits as parquet files under ``folder``, the pseudo-labelled rows added to
    train, and the data settings that read them back: the same rows and classes (the validation split
    carved once, not again from a larger train), whatever files or dataset the first run read."""
    import datasets

    columns = [text_column, label_column]
    features = splits["train"].select_columns(columns).features
    pseudo = datasets.Dataset.from_dict({text_column: texts, label_column: labels.tolist()}, features=features)
    parts = {"train": datasets.concatenate_datasets([splits["train"].select_columns(columns), pseudo]),
             **{role: splits[role].select_columns(columns) for role in ("validation", "test") if role in splits}}
    folder.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {"data.path": None, "data.format": "parquet", "data.test_file": None,
                                "data.label_names": list(features[label_column].names)}
    for role, part in parts.items():
        path = folder / f"{role}.parquet"
        part.to_parquet(str(path))
        settings[f"data.{role}_file"] = str(path)
    return settings
