"""The strong linear baselines textcnn is compared with, trained on the same splits.

* fastText supervised with word bigrams (Joulin et al. 2016), 25 epochs (PyPI ``fasttext-wheel``);
* TF-IDF of word 1–2-grams + logistic regression (scikit-learn).

Each has one setting chosen on the validation split (fastText's learning rate, the inverse
regularisation ``C``), never on test; the chosen model is the one trained on train. Both see the
text exactly as textcnn's word tokenizer does (its normaliser and pre-tokenizer from
:mod:`textcnn.tokenizer`): ``<br />`` removed, NFKC, lowercased, split into words and runs of
punctuation. Needs ``pip install 'textcnn[bench]'``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from textcnn.tokenizer import words

TFIDF_NAME = "TF-IDF 1-2-gram + LR"  # deterministic: no seed changes it

FASTTEXT_LEARNING_RATES = (0.05, 0.1, 0.5)
LOGREG_C = (1.0, 10.0, 100.0, 1000.0)


@dataclass
class BaselineResult:
    name: str
    setting: str  # the validation-selected setting, e.g. "lr=0.1"
    validation_accuracy: float  # the selection score on validation: accuracy unless chosen by another
    test_predictions: np.ndarray  # (N_test,) class ids
    train_seconds: float  # training wall time of the selected setting


def _accuracy(predictions: np.ndarray, labels: Sequence[int]) -> float:
    return float(np.mean(predictions == np.asarray(labels)))


def fasttext_bigrams(
    train: tuple[Sequence[str], Sequence[int]],
    validation: tuple[Sequence[str], Sequence[int]],
    test_texts: Sequence[str],
    seed: int = 0,
    epochs: int = 25,
    buckets: int = 2_000_000,
) -> BaselineResult:
    """fastText, ``wordNgrams=2``, one thread (deterministic for a seed); lr chosen on validation.
    ``buckets``: hashed bigram rows (fastText's default; fewer allocate faster, with more collisions)."""
    import fasttext

    def predict(model, texts: Sequence[str]) -> np.ndarray:
        labels, _ = model.predict([" ".join(words(text)) for text in texts])
        return np.array([int(label[0].removeprefix("__label__")) for label in labels])

    best = None
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "train.txt"
        path.write_text("".join(f"__label__{label} {' '.join(words(text))}\n" for text, label in zip(*train)),
                        encoding="utf-8")
        for lr in FASTTEXT_LEARNING_RATES:
            start = time.perf_counter()
            model = fasttext.train_supervised(str(path), lr=lr, epoch=epochs, wordNgrams=2, thread=1, seed=seed,
                                              bucket=buckets, verbose=0)
            seconds = time.perf_counter() - start
            accuracy = _accuracy(predict(model, validation[0]), validation[1])
            if best is None or accuracy > best[0]:
                best = (accuracy, lr, model, seconds)
    accuracy, lr, model, seconds = best
    return BaselineResult("fastText bigrams", f"lr={lr}", accuracy, predict(model, test_texts), seconds)


def tfidf_logreg(
    train: tuple[Sequence[str], Sequence[int]],
    validation: tuple[Sequence[str], Sequence[int]],
    test_texts: Sequence[str],
    seed: int = 0,
    class_weight: Optional[str] = None,
    score: Callable[[np.ndarray, Sequence[int]], float] = _accuracy,
) -> BaselineResult:
    """TF-IDF (sublinear tf) of word 1–2-grams → logistic regression; ``C`` chosen on validation by
    ``score`` (accuracy; e.g. macro-F1 for imbalanced classes, with ``class_weight="balanced"``)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer=_unigrams_and_bigrams, sublinear_tf=True)
    features = vectorizer.fit_transform(train[0])
    featurize_seconds = time.perf_counter() - start
    validation_features = vectorizer.transform(validation[0])
    best = None
    for c in LOGREG_C:
        start = time.perf_counter()
        classifier = LogisticRegression(C=c, max_iter=1000, random_state=seed, class_weight=class_weight)
        classifier.fit(features, train[1])
        seconds = featurize_seconds + time.perf_counter() - start
        validation_score = score(classifier.predict(validation_features), validation[1])
        if best is None or validation_score > best[0]:
            best = (validation_score, c, classifier, seconds)
    validation_score, c, classifier, seconds = best
    predictions = classifier.predict(vectorizer.transform(test_texts))
    name = TFIDF_NAME if class_weight is None else f"{TFIDF_NAME}, class_weight={class_weight}"
    return BaselineResult(name, f"C={c:g}", validation_score, np.asarray(predictions), seconds)


def _unigrams_and_bigrams(text: str) -> list[str]:
    tokens = words(text)
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]
