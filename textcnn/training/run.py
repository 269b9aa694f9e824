"""Train and score: what ``textcnn train`` does, and :func:`train` for Python, on one code path.

Both resolve their settings into one config object (:mod:`textcnn.training.run_config`) and hand it
to :func:`fit_and_score`. ``textcnn.train(df_train, test=df_test)`` accepts what a practitioner holds
— file paths, pandas DataFrames, ``datasets`` objects or ``(texts, labels)`` pairs — and writes
anything that is not a file to parquet under the run directory, so that the run's saved config names
files every process of a distributed run (and a later ``evaluate``) can read.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Optional, Union

import datasets
import torch

from textcnn.atomic import write_text_atomic
from textcnn.console import known_warnings_hidden
from textcnn.errors import UserInputError
from textcnn.inference import Predictor, load
from textcnn.training.build import TRAINER_DEFAULTS, build
from textcnn.training.evaluation import evaluate_checkpoint, log_calibration_and_abstaining
from textcnn.training.history import best_epoch, find_history, summary_line
from textcnn.training.init_from import describe as describe_init_from
from textcnn.training.init_from import load_weights
from textcnn.training.init_from import prepare as prepare_init_from
from textcnn.training.lr_find import AUTO, choose_learning_rate, without_auto
from textcnn.training import self_training
from textcnn.training.recipe import with_recipe, with_unlabeled_tv_embeddings, with_unlabeled_vectors
from textcnn.training.run_config import Config, from_command_line, from_python, get_dotted

log = logging.getLogger(__name__)

SplitData = Any  # a path, a pandas.DataFrame, a datasets.Dataset / DatasetDict, or a (texts, labels) pair


def fit_and_evaluate(args: Optional[Sequence[str]] = None) -> Optional[dict]:
    """Fit the run a command line describes (None: ``sys.argv``), then score its best checkpoint on
    the test split (validation when there is none, said in the log and in ``split``).

    In a distributed run the other processes return None once fitting is done: rank 0 alone
    scores the checkpoint it wrote, on the whole split, in this process."""
    args, auto = without_auto(sys.argv[1:] if args is None else args)
    with known_warnings_hidden():
        config, chosen = from_command_line(args)
    return fit_and_score(config, chosen, auto_learning_rate=auto).report


def describe_model(network: torch.nn.Module) -> str:
    """The architecture and its parameter count, e.g. ``textcnn, widths [3, 4, 5] × [128], 1,234,567 parameters``."""
    config = network.config
    count = sum(parameter.numel() for parameter in network.parameters())
    trainable = sum(parameter.numel() for parameter in network.parameters() if parameter.requires_grad)
    frozen = f" ({count - trainable:,} frozen)" if trainable < count else ""
    return (f"{config.architecture}, kernel widths {list(config.kernel_sizes)}, {list(config.conv_channels)} maps, "
            f"{count:,} parameters{frozen}")


class Fitted(NamedTuple):
    """What :func:`fit_and_score` gives back (all None on the processes of a distributed run but rank 0)."""

    report: Optional[dict]  # the best checkpoint's evaluation: what textcnn train prints
    data: Any  # the data module to score more splits with; None when the run was distributed
    history: list[dict[str, Any]]  # one row per epoch, as metrics.csv holds them
    best_epoch: Optional[int]
    validation_accuracy: Optional[float] = None  # the best checkpoint's (what chose it)


def fit_and_score(config: Config, chosen: set[str] = frozenset(), auto_learning_rate: bool = False) -> Fitted:
    """Fit the run a resolved config describes, completed by the recipe where ``chosen`` (the keys
    the user set) leaves the network to it, and score its best checkpoint. ``auto_learning_rate``:
    the range test chooses ``model.learning_rate`` first. With ``data.unlabeled_file`` and few
    labels, a second run self-trains on the first model's confident labels of it
    (:mod:`textcnn.training.self_training`), kept where validation prefers it."""
    start = None
    if config.get("init_from"):
        config, chosen, start = prepare_init_from(config, chosen)
    if auto_learning_rate:  # after init_from: the range test starts from the weights the run continues
        chosen = set(chosen) | {"model.learning_rate"}
        config = choose_learning_rate(config, chosen, start)
    with known_warnings_hidden():
        config = with_recipe(config, set(chosen))
    fitted = _fit(config, start)
    if fitted.report is None or not config["data"].get("unlabeled_file"):
        return fitted
    if fitted.data is None:
        log.info("unlabelled text: not used by a distributed run (train on one process to use it)")
        return fitted
    if fitted.validation_accuracy is None:
        log.info("unlabelled text: not used: the run chose its checkpoint by %s, not by validation accuracy, "
                 "which decides what the unlabelled text is kept for", get_dotted(config, "checkpoint.monitor"))
        return fitted
    return _with_unlabeled_text(config, chosen, fitted)


def _with_unlabeled_text(config: Config, chosen: set[str], fitted: Fitted) -> Fitted:
    """The two levers unlabelled text gives, each kept only where validation prefers it: what a second
    run learns from it first (a region network: tv-embeddings; others: embeddings that start from
    vectors trained on it), then, with few labels, self-training."""
    if get_dotted(config, "model.network.architecture") == "region":
        second, what = with_unlabeled_tv_embeddings(config, set(chosen), fitted.data), "with its tv-embeddings"
        against, kept = "without", "model with its tv-embeddings"
    else:
        second, what = with_unlabeled_vectors(config, set(chosen), fitted.data), "starting from its vectors"
        against, kept = f"from {config['data'].get('pretrained_vectors') or 'scratch'}", "model from its vectors"
    if second is not None:
        other = _fit(second, None)
        better = other.validation_accuracy > fitted.validation_accuracy
        log.info("unlabelled text: validation accuracy %.4f %s against %.4f %s; kept the %s",
                 other.validation_accuracy, what, fitted.validation_accuracy, against,
                 kept if better else "first model")
        if better:
            config, fitted = second, other
    reason = self_training.reasons_against(config, len(fitted.data.splits["train"]), fitted.data.multi_label)
    if reason:
        log.info("self-training is not used: %s", reason)
        return fitted
    return self_training.self_trained(config, fitted, lambda again: _fit(again, None))


def _fit(config: Config, start: Any) -> Fitted:
    """Train a completed config (from ``start``'s weights where given) and score its best checkpoint."""
    started = time.monotonic()
    with known_warnings_hidden():
        cli = build(config)
        if start is not None:  # its weights replace the fresh ones (vectors included)
            load_weights(cli.model.model, start)
            cli.model.initialised_from_vectors = True
        if cli.trainer.is_global_zero:
            log.info("model: %s", describe_model(cli.model.model))
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.ckpt_path)
    if not cli.trainer.is_global_zero:
        return Fitted(None, None, [], None)
    best = cli.trainer.checkpoint_callback.best_model_path
    if not best:
        raise UserInputError("training produced no checkpoint; train for at least one epoch")
    # one process's data module holds every split, read and encoded: score with it (a distributed
    # run's module holds this process's share, so the checkpoint's data is rebuilt whole)
    data = cli.datamodule if cli.trainer.world_size == 1 else None
    split = "test" if cli.datamodule.has_test_split else "validation"
    if split == "validation":
        log.warning("no test split: the figures below are on the validation split, which chose the checkpoint; "
                    "give data.test_file (or a test split) for an unbiased estimate")
    # a single-label model keeps its validation risk-coverage table, for predict --min-precision
    report = evaluate_checkpoint(best, split=split, data=data, save_thresholds=not cli.datamodule.multi_label)
    log_calibration_and_abstaining(report)
    if start is not None:
        report["init_from"] = describe_init_from(start)
    history = find_history(cli.trainer)
    rows = history.rows if history is not None else []
    checkpointing = cli.trainer.checkpoint_callback
    kept = best_epoch(rows, checkpointing.monitor, checkpointing.mode) if rows else None
    log.info(summary_line(cli.trainer, rows, kept, report, time.monotonic() - started, best,
                          history.path if history is not None and rows else None))
    score = checkpointing.best_model_score if checkpointing.monitor == "val_acc" else None  # a loss is no accuracy
    return Fitted(report, data, rows, kept, float(score) if score is not None else None)


@dataclass
class TrainingResult:
    """What :func:`train` returns: the model ready to predict (with the temperature calibration kept,
    if it kept one), where it was saved, and its scores."""

    predictor: Predictor
    checkpoint: str
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # "validation" and, given one, "test"
    history: list[dict[str, Any]] = field(default_factory=list)  # one dict per epoch, as in metrics.csv
    best_epoch: Optional[int] = None  # the epoch of the checkpoint kept (counted from 0, as in its name)


def train(
    train: SplitData,
    validation: SplitData = None,
    test: SplitData = None,
    *,
    text_column: str = "text",
    label_column: str = "label",
    config: Union[str, Path, None] = None,
    init_from: Union[str, Path, None] = None,
    unlabeled: Union[str, Path, Sequence[str], None] = None,
    **overrides: Any,
) -> TrainingResult:
    """Train the default recipe (or ``config``) on your data and score it.

    Each split may be a file path, a ``pandas.DataFrame``, a ``datasets.Dataset`` (a ``DatasetDict``
    as ``train`` brings its own validation / test splits) or a ``(texts, labels)`` pair. A missing
    validation split is carved from train; without a test split there are no test figures.
    ``overrides`` are dotted config keys, e.g. ``**{"trainer.max_epochs": 5}`` or
    ``data__max_length=64`` (``__`` for ``.``); ``**{"model.learning_rate": "auto"}`` runs the
    learning-rate range test first (:mod:`textcnn.training.lr_find`). ``init_from``: a model to keep
    training (its weights, tokenizer and classes; :mod:`textcnn.training.init_from`). ``unlabeled``:
    texts without labels (a file, or a list / Series of texts) for the recipe's word vectors and
    self-training (:mod:`textcnn.training.pretrain`, :mod:`textcnn.training.self_training`).
    """
    settings = {key.replace("__", "."): value for key, value in overrides.items()}
    if init_from is not None:
        settings["init_from"] = str(init_from)
    root = Path(settings.get("trainer.default_root_dir") or TRAINER_DEFAULTS["default_root_dir"])
    if unlabeled is not None:
        settings["data.unlabeled_file"] = _unlabeled_file(unlabeled, root)
    auto = settings.get("model.learning_rate") == AUTO
    if auto:
        del settings["model.learning_rate"]
    settings.update({"data.text_column": text_column, "data.label_column": label_column})
    settings.update(_split_files({"train": train, "validation": validation, "test": test}, text_column, label_column,
                                 root))
    with known_warnings_hidden():
        resolved, chosen = from_python(config, settings)
    fitted = fit_and_score(resolved, chosen, auto_learning_rate=auto)
    report, data = fitted.report, fitted.data
    checkpoint = report["checkpoint"]
    metrics = {report["split"]: report}
    if report["split"] == "test":
        metrics["validation"] = evaluate_checkpoint(checkpoint, split="validation", data=data)
    temperature = report.get("calibration", {}).get("temperature", 1.0)  # 1 unless validation kept a fitted one
    return TrainingResult(load(checkpoint, temperature=temperature), checkpoint, metrics, fitted.history,
                          fitted.best_epoch)


def _split_files(splits: dict[str, SplitData], text_column: str, label_column: str, root: Path) -> dict[str, str]:
    """``data.<role>_file`` for each split given: its path, or a parquet file under ``root`` holding it."""
    if isinstance(splits["train"], datasets.DatasetDict):
        given = splits["train"]
        splits = {"train": given.get("train"), "validation": given.get("validation", splits["validation"]),
                  "test": given.get("test", splits["test"])}
        if splits["train"] is None:
            raise UserInputError(f"the DatasetDict given as train has no 'train' split (splits: {', '.join(given)})")
    staging: Optional[Path] = None
    files = {}
    for role, data in splits.items():
        if data is None:
            continue
        if isinstance(data, (str, Path)):
            path = Path(data)
        else:
            if staging is None:
                root.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(prefix="data-", dir=root))
            path = staging / f"{role}.parquet"
            _as_dataset(data, role, text_column, label_column).to_parquet(str(path))
        files[f"data.{role}_file"] = str(path)
    return files


def _unlabeled_file(texts: Union[str, Path, Sequence[str]], root: Path) -> str:
    """A path as it is; texts as a plain text file under ``root``, one per line, named by their digest."""
    if isinstance(texts, (str, Path)):
        return str(texts)
    lines = [" ".join(str(text).split()) for text in texts if text is not None]
    body = "\n".join(lines) + "\n"
    path = root / "unlabeled" / f"texts-{hashlib.sha256(body.encode()).hexdigest()[:20]}.txt"
    if not path.exists():
        write_text_atomic(path, body)
    return str(path)


def _as_dataset(data: Any, role: str, text_column: str, label_column: str) -> datasets.Dataset:
    if isinstance(data, datasets.Dataset):
        return data
    if type(data).__name__ == "DataFrame" and hasattr(data, "columns"):  # pandas, without importing it
        return datasets.Dataset.from_pandas(data, preserve_index=False)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        texts, labels = list(data[0]), list(data[1])
        if len(texts) != len(labels):
            raise UserInputError(f"{role}: {len(texts)} texts but {len(labels)} labels; give one label per text")
        return datasets.Dataset.from_dict({text_column: texts, label_column: labels})
    raise UserInputError(
        f"{role} is a {type(data).__name__}; pass a file path, a pandas DataFrame, a datasets.Dataset "
        "or a (texts, labels) pair"
    )
