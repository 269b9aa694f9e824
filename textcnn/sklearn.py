"""textcnn as a scikit-learn estimator, for ``Pipeline``, ``GridSearchCV``, ``cross_val_predict`` and ``joblib``.

    from textcnn.sklearn import TextCNNClassifier
    model = TextCNNClassifier(max_epochs=5).fit(texts, labels)    # any labels: strings, ints, booleans
    model.predict(["a gripping film"]), model.predict_proba(texts)  # numpy arrays, columns in classes_ order

``__init__`` stores its arguments as given and ``fit`` does the work, as scikit-learn asks: ``fit``
trains :func:`textcnn.train`'s default recipe (or ``config``) on ``X`` and ``y``, with its validation
split carved from them, in a temporary run directory that is removed afterwards; the model stays in
memory (``predictor_``), so a fitted estimator pickles and clones like any other.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from typing import Any, Optional, Union

import numpy as np

from textcnn.errors import missing_extra

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.validation import check_is_fitted
except ModuleNotFoundError as error:  # scikit-learn is the [sklearn] extra
    raise (missing_extra(error, "textcnn.sklearn") or error) from None

ACCELERATORS = {"cpu": "cpu", "cuda": "gpu", "gpu": "gpu", "mps": "mps", "auto": "auto"}


class TextCNNClassifier(ClassifierMixin, BaseEstimator):
    """A TextCNN text classifier with scikit-learn's interface. ``X``: texts (a list, an array or a
    pandas Series of strings); ``y``: one label per text, of any type ``numpy.unique`` can sort.

    Args:
        config: a training YAML file (path) or a config mapping; None: the default recipe, which derives
            the network from the texts as ``textcnn train`` does.
        max_epochs / batch_size / learning_rate: the usual training settings (None: the recipe's).
        seed: seeds the run (weights, shuffles, the carved validation split).
        device: ``cpu``, ``cuda`` or ``auto`` for training; the fitted model predicts on the CPU.
        verbose: show the training log and progress bar (default: quiet, as estimators are).
        class_weight: None, ``"balanced"``, or a mapping of class → weight of its loss.
        overrides: any other dotted config keys, e.g. ``{"data.max_length": 64}``; they win over the above.
        warm_start: a second ``fit`` continues the fitted model on the new rows (``textcnn train
            --init_from``: its weights, vocabulary grown by the new words, classes kept and joined by
            the new ones) instead of starting again.

    Fitted attributes: ``classes_`` (sorted, as scikit-learn orders them), ``predictor_`` (a
    :class:`textcnn.Predictor`), ``metrics_`` (the validation scores of the run), ``history_`` (one dict
    per epoch: losses, validation metrics, learning rate, seconds) and ``best_epoch_``.
    """

    def __init__(self, config: Union[str, dict, None] = None, max_epochs: Optional[int] = None,
                 batch_size: Optional[int] = None, learning_rate: Optional[float] = None, seed: int = 0,
                 device: str = "cpu", verbose: bool = False, class_weight: Union[str, dict, None] = None,
                 overrides: Optional[dict[str, Any]] = None, warm_start: bool = False):
        self.config = config
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed
        self.device = device
        self.verbose = verbose
        self.class_weight = class_weight
        self.overrides = overrides
        self.warm_start = warm_start

    def fit(self, X: Any, y: Any, unlabeled: Any = None) -> "TextCNNClassifier":
        """Train on texts ``X`` and labels ``y``; returns the fitted estimator. ``unlabeled``: texts
        without labels (or a file of them) for the recipe's word vectors and self-training."""
        import textcnn

        texts, labels = as_texts(X), np.asarray(y)
        if labels.ndim != 1 or len(labels) != len(texts):
            raise ValueError(f"y must hold one label per text: {len(texts)} texts, y of shape {labels.shape}")
        start = getattr(self, "predictor_", None) if self.warm_start else None
        classes = np.unique(labels if start is None else np.concatenate([self.classes_, labels]))
        names = [str(label) for label in classes]
        if len(names) < 2:
            raise ValueError(f"y holds one class ({names[0] if names else 'none'}); a classifier needs two or more")
        if len(set(names)) < len(names):
            raise ValueError(f"the classes {list(classes)} are not told apart by their text; give distinct labels")
        with tempfile.TemporaryDirectory(prefix="textcnn-fit-") as run_dir, quiet(not self.verbose):
            settings = self._settings(names, run_dir, classes)
            if start is not None:  # the fitted model, as a model directory to continue
                start.save(f"{run_dir}/start")
                settings["init_from"] = f"{run_dir}/start"
            result = textcnn.train((texts, np.searchsorted(classes, labels).tolist()), config=self._config_file(run_dir),
                                   unlabeled=None if unlabeled is None else unlabeled_texts(unlabeled), **settings)
        self.classes_ = classes
        self.predictor_, self.metrics_ = result.predictor, result.metrics
        self.history_, self.best_epoch_ = result.history, result.best_epoch  # per-epoch dicts, as in metrics.csv
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n_texts, n_classes) probabilities, columns in ``classes_`` order."""
        check_is_fitted(self, "predictor_")
        return self.predictor_.predict_proba(as_texts(X)).numpy().astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each text, as ``y`` gave it."""
        probabilities = self.predict_proba(X)  # first: an unfitted estimator says so
        return self.classes_[probabilities.argmax(axis=1)]

    def _config_file(self, run_dir: str) -> Optional[str]:
        """The config file for :func:`textcnn.train`: a mapping given as ``config`` is written to the run
        directory, so it is read as a file would be."""
        if self.config is None or isinstance(self.config, str) or hasattr(self.config, "__fspath__"):
            return self.config
        if not isinstance(self.config, dict):
            raise ValueError(f"config must be a YAML path or a mapping, got {type(self.config).__name__}")
        import yaml

        path = f"{run_dir}/config.yaml"
        with open(path, "w", encoding="utf-8") as file:
            yaml.safe_dump(self.config, file)
        return path

    def _settings(self, names: list[str], run_dir: str, classes: np.ndarray) -> dict[str, Any]:
        if self.device not in ACCELERATORS:
            raise ValueError(f"device must be one of {', '.join(ACCELERATORS)}, got {self.device!r}")
        settings: dict[str, Any] = {
            "data.label_names": names,
            "seed_everything": self.seed,
            "trainer.default_root_dir": run_dir,
            "trainer.accelerator": ACCELERATORS[self.device],
            "trainer.enable_progress_bar": bool(self.verbose),
            "trainer.logger": False,
        }
        for key, value in (("trainer.max_epochs", self.max_epochs), ("data.batch_size", self.batch_size),
                           ("model.learning_rate", self.learning_rate)):
            if value is not None:
                settings[key] = value
        if self.class_weight is not None:
            settings["model.class_weights"] = self._class_weights(classes)
        return {**settings, **(self.overrides or {})}

    def _class_weights(self, classes: np.ndarray) -> Union[str, list[float]]:
        if self.class_weight == "balanced":
            return "balanced"
        if not isinstance(self.class_weight, dict):
            raise ValueError(f"class_weight must be None, 'balanced' or a mapping of class → weight, "
                             f"got {self.class_weight!r}")
        unknown = [label for label in self.class_weight if label not in set(classes.tolist())]
        if unknown:
            raise ValueError(f"class_weight names {unknown[0]!r}, which y does not hold (classes: {list(classes)})")
        return [float(self.class_weight.get(label, 1.0)) for label in classes.tolist()]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # texts, not a numeric matrix
        tags.input_tags.two_d_array = False
        return tags


def as_texts(X: Any) -> list[str]:
    """``X`` as a list of strings: a list, a 1-d array, a pandas Series, or a one-column 2-d array or
    DataFrame (what a ``ColumnTransformer`` hands over)."""
    if isinstance(X, str):
        raise ValueError("X is one string; pass a list of texts (e.g. [text])")
    if hasattr(X, "columns") and len(X.columns) == 1:  # a one-column DataFrame
        X = X.iloc[:, 0]
    array = np.asarray(X, dtype=object)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"X must be a sequence of texts, got an array of shape {array.shape}")
    bad = next((i for i, text in enumerate(array) if not isinstance(text, str)), None)
    if bad is not None:
        raise ValueError(f"text {bad} of X is {type(array[bad]).__name__}, not str; pass strings only")
    return array.tolist()


def unlabeled_texts(unlabeled: Any) -> Any:
    """A file path as it is, else the texts as :func:`as_texts` reads ``X``."""
    return unlabeled if isinstance(unlabeled, str) or hasattr(unlabeled, "__fspath__") else as_texts(unlabeled)


@contextlib.contextmanager
def quiet(enabled: bool) -> Iterator[None]:
    """Nothing on the console while an estimator fits, as scikit-learn's estimators fit: textcnn's and
    Lightning's log lines below ERROR, no ``datasets`` progress bars."""
    if not enabled:
        yield
        return
    import datasets
    import pytorch_lightning  # noqa: F401 (its import sets its loggers' levels: before they are changed here)

    loggers = [logging.getLogger(name) for name in ("textcnn", "pytorch_lightning", "lightning_fabric")]
    levels = [logger.level for logger in loggers]
    bars = not datasets.are_progress_bars_disabled()
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        if bars:
            datasets.enable_progress_bars()
