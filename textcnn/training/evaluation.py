"""Scores a checkpoint or a model directory on a dataset split: accuracy, macro-F1, per-class
precision/recall/F1; for a multi-label model micro/macro-F1 and exact match at its tuned thresholds."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
    multilabel_exact_match,
    multilabel_f1_score,
    multilabel_precision,
    multilabel_recall,
)

from textcnn.inference.calibration import calibration_report
from textcnn.inference.calibration import describe as describe_calibration
from textcnn.data.datamodule import TextDataModule
from textcnn.errors import UserInputError
from textcnn.inference.devices import DeviceSpec, resolve_device
from textcnn.inference.ensemble import as_logits, check_members
from textcnn.inference.loader import read_saved_model
from textcnn.inference.checkpoint import store_in_checkpoint
from textcnn.inference.model_directory import store_in_config
from textcnn.inference.saved_model import SavedModel, refuse_onnx
from textcnn.inference.selective import describe as describe_abstaining
from textcnn.inference.selective import risk_coverage, selective_report
from textcnn.inference.predictor import BasePredictor, Predictor, decide
from textcnn.inference.schema import damaged
from textcnn.training.report import check_report_directory, write_report
from textcnn.training.thresholds import DEFAULT_THRESHOLD

log = logging.getLogger(__name__)


def classification_report(predictions: torch.Tensor, targets: torch.Tensor, label_names: list[str]) -> dict[str, Any]:
    """Metrics of predicted vs true class ids, both (N,)."""
    num_classes = len(label_names)
    kwargs = dict(num_classes=num_classes, average="none", zero_division=0)
    precision = multiclass_precision(predictions, targets, **kwargs)
    recall = multiclass_recall(predictions, targets, **kwargs)
    f1 = multiclass_f1_score(predictions, targets, **kwargs)
    support = torch.bincount(targets, minlength=num_classes)
    return {
        "num_examples": int(targets.numel()),
        "accuracy": float(multiclass_accuracy(predictions, targets, num_classes=num_classes, average="micro")),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(label_names, precision, recall, f1, support)
        },
        "confusion_matrix": multiclass_confusion_matrix(predictions, targets, num_classes).tolist(),
    }


@torch.inference_mode()
def evaluate_checkpoint(
    checkpoint_path: Union[str, Path, Sequence[Union[str, Path]]],
    split: str = "test",
    data_overrides: Optional[dict[str, Any]] = None,
    device: DeviceSpec = "cpu",
    data: Optional[TextDataModule] = None,
    save_thresholds: bool = False,
    report_dir: Union[str, Path, None] = None,
) -> dict[str, Any]:
    """Rebuild the training data pipeline from the checkpoint (overridable) and score ``split``.

    ``checkpoint_path`` is a ``.ckpt``, a model directory (its config.json keeps the training data
    settings), a Hub id of one, or an ONNX export (scored through ONNX Runtime; it needs
    ``data_overrides``, as a directory from another machine usually does: ``{"path": …}``).
    ``device`` runs the network there (see ``textcnn.load``).

    ``calibration``: the temperature fitted on validation and the expected calibration error on
    ``split`` before and after it (:mod:`textcnn.inference.calibration`). ``abstaining``: for target
    precisions 0.90 / 0.95 / 0.99, the threshold the validation risk–coverage table gives and what it
    reaches there and on ``split`` (:mod:`textcnn.inference.selective`); ``save_thresholds`` stores the
    table in the model. A multi-label model is scored at its own thresholds, with neither.

    A labelled file of your own (``data_overrides={"test_file": "labelled.csv"}``) is scored alone,
    its labels read as the model's classes (by name, or integer ids in their order), without
    calibration. ``data``: the data module that trained the checkpoint, its splits already encoded.
    ``report_dir``: also write ``confusion.png``, ``misclassified.csv`` and ``metrics.json`` there
    (:mod:`textcnn.training.report`).

    Two or more models (single-label, the same classes) are scored as an ensemble: the mean of their
    probabilities (:mod:`textcnn.inference.ensemble`), each reading the split through its own
    tokenizer, with the data settings of the first.
    """
    if data is not None and data_overrides:
        raise ValueError("give either the run's data module or data_overrides, not both")
    device = resolve_device(device)  # a missing GPU is found before the data is read
    paths, saved = _saved_models(checkpoint_path)
    label_names, thresholds = saved[0].label_names, saved[0].thresholds
    checkpoint_path = str(paths[0]) if len(paths) == 1 else [str(path) for path in paths]
    own_file = (data_overrides or {}).get(f"{split}_file") if split != "train" else None
    if save_thresholds:
        _check_can_store(paths, saved, own_file)
    if report_dir is not None:
        check_report_directory(Path(report_dir))
    if data is None:
        data = _data_for(saved[0], paths[0], data_overrides, own_file)
    _check_data_fits(data, label_names, thresholds is not None, own_file)
    # the report names each mistake's row: its texts are scored once, in their split's order
    members = _members(saved, device, by_text=report_dir is not None)
    logits, targets = _scores_and_labels(members, data, split)
    if thresholds is not None:
        report = {"checkpoint": checkpoint_path, "data_path": data.path, "split": split,
                  **multilabel_report(logits.sigmoid(), targets, torch.tensor(thresholds), label_names)}
    else:
        report = {"checkpoint": checkpoint_path, "data_path": str(own_file) if own_file else data.path,
                  "split": split, **classification_report(logits.argmax(dim=-1), targets, label_names)}
        report = _with_calibration_and_abstaining(report, members, saved, data, logits, targets, own_file,
                                                  save_thresholds)
    if report_dir is not None:
        report["report_files"] = _write_report(Path(report_dir), report, logits, targets, saved[0], data)
    return report


def _write_report(directory: Path, report: dict[str, Any], logits: torch.Tensor, targets: torch.Tensor,
                  saved: SavedModel, data: TextDataModule) -> list[str]:
    """The report's files from the split's logits and labels in its order (at the kept temperature)."""
    texts, _ = rows_in_order(data, report["split"])
    if saved.thresholds is not None:
        return write_report(directory, report, texts, targets, logits.sigmoid(), saved.label_names, saved.thresholds)
    temperature = report.get("calibration", {}).get("temperature", 1.0)
    return write_report(directory, report, texts, targets, (logits / temperature).softmax(dim=-1), saved.label_names)


def _with_calibration_and_abstaining(report: dict[str, Any], members: list, saved: list[SavedModel],
                                     data: TextDataModule, logits: torch.Tensor, targets: torch.Tensor,
                                     own_file: Optional[str], save_thresholds: bool) -> dict[str, Any]:
    """A single-label report with the temperature and the risk–coverage table fitted on validation."""
    split = report["split"]
    if own_file:  # no validation split: the table saved with the model, if it has one, is checked on the file
        table = saved[0].risk_coverage if len(saved) == 1 else None
        return report if table is None else {**report, "abstaining": selective_report(table, logits, targets, split)}
    validation = (logits, targets) if split == "validation" else _scores_and_labels(members, data, "validation")
    calibration = calibration_report(*validation, logits, targets, split)
    table = risk_coverage(*validation, calibration["temperature"])
    abstaining = selective_report(table, logits, targets, split)
    if save_thresholds:
        abstaining["saved_to"] = str(_store_risk_coverage(saved[0], table))
    return {**report, "calibration": calibration, "abstaining": abstaining}


def _store_risk_coverage(saved: SavedModel, table: dict[str, Any]) -> Path:
    """Save ``table`` (see :mod:`textcnn.inference.selective`) into the checkpoint or model directory
    ``saved`` was read from (:func:`_check_can_store` refused any other); the file written."""
    if saved.kind == "checkpoint":
        written = store_in_checkpoint(saved.source, "risk_coverage", table)
    else:
        written = store_in_config(saved.source, "risk_coverage", table)
    saved.risk_coverage = table
    return written


def log_calibration_and_abstaining(report: dict[str, Any]) -> None:
    """The lines an evaluation report's calibration and abstaining sections add to the log."""
    if "calibration" in report:
        log.info(describe_calibration(report["calibration"]))
    if "abstaining" in report:
        log.info(describe_abstaining(report["abstaining"]))


def _check_can_store(paths: list, saved: list[SavedModel], own_file: Optional[str]) -> None:
    """--save-thresholds needs one local single-label model and the validation split it was trained with."""
    if len(saved) > 1:
        raise UserInputError("--save-thresholds stores the table in one model; an ensemble has no file of its own")
    if saved[0].multi_label:
        raise UserInputError(f"{paths[0]} is multi-label: its per-class thresholds are already saved; "
                             "--save-thresholds is for single-label models")
    refuse_onnx(saved[0], "--save-thresholds")  # before anything is scored
    if not Path(paths[0]).exists():
        raise UserInputError(f"{paths[0]} is a Hub id: download the model directory (hf download) and pass its "
                             "local path to --save-thresholds")
    if own_file:
        raise UserInputError(f"--save-thresholds measures the table on the training data's validation split, "
                             f"and {own_file} is scored on its own; evaluate without it to save the table")


def _saved_models(checkpoint_path: Union[str, Path, Sequence[Union[str, Path]]]) -> tuple[list, list[SavedModel]]:
    """The paths given and what each holds (a checkpoint, a model directory or a Hub id of one);
    several must make an ensemble."""
    paths = [checkpoint_path] if isinstance(checkpoint_path, (str, Path)) else list(checkpoint_path)
    if not paths:
        raise UserInputError("no checkpoint given: pass one, or several to score their ensemble")
    saved = [read_saved_model(path) for path in paths]
    if len(paths) > 1:
        check_members([str(path) for path in paths], [one.label_names for one in saved],
                      [one.multi_label for one in saved])
    return paths, saved


def _check_data_fits(data: TextDataModule, label_names: list[str], multi_label: bool, own_file: Optional[str]) -> None:
    """The split to score has the model's classes and is labelled the way the model was trained."""
    try:
        data_label_names = data.label_names
    except UserInputError as error:
        if not own_file:
            raise
        raise UserInputError(f"{own_file}: {error}; the model knows only these classes") from None
    if data_label_names != label_names:
        raise UserInputError(
            f"the dataset's labels {data.label_names} differ from the model's {label_names}; "
            "evaluate on data with the classes the model was trained on"
        )
    if data.multi_label != multi_label:
        kinds = ("single-label", "multi-label")
        raise UserInputError(
            f"the dataset is {kinds[data.multi_label]} but the model is {kinds[multi_label]}; "
            "evaluate on data labelled the way the model was trained"
        )


def _data_for(saved: SavedModel, path: Union[str, Path], data_overrides: Optional[dict[str, Any]],
              own_file: Optional[str]) -> TextDataModule:
    """The data module of the model's training settings with ``data_overrides``, or of ``own_file`` alone
    (every split role that file, the classes the model's), encoding with the model's tokenizer."""
    if not saved.data and not data_overrides:
        raise UserInputError(f"{path} keeps no training data settings (an ONNX export): name the data to score "
                             "with --data.path (a dataset) or --data.test_file (a labelled file)")
    settings = {**saved.data, "replay_file": None, **(data_overrides or {})}  # scoring reads no training rows
    if own_file:
        settings.update(path=str(own_file), train_file=own_file, validation_file=own_file, test_file=own_file,
                        label_names=saved.label_names, streaming=False)
    data = _data_module(settings, path)
    data.use_tokenizer(saved.tokenizer)
    return data


def _data_module(settings: dict[str, Any], source: Union[str, Path]) -> TextDataModule:
    known = inspect.signature(TextDataModule).parameters
    unknown = sorted(key for key in settings if key not in known)
    if unknown:
        raise damaged(str(source), f"its data settings hold {', '.join(unknown[:3])}, which are not data settings")
    return TextDataModule(**settings)


def _members(saved: list[SavedModel], device: torch.device, by_text: bool = False) -> list:
    """What scores the split: each model's network and tokenizer, which read the data module's
    batches; ``by_text`` or with an ONNX export among the models, each model's predictor, which reads
    the texts in their split's order."""
    if not by_text and not any(one.kind == "onnx" for one in saved):
        return [(one.network().to(device), one.tokenizer) for one in saved]
    from textcnn.inference.onnx import OnnxPredictor

    return [OnnxPredictor(one, temperature=1.0, device=str(device)) if one.kind == "onnx"
            else Predictor.from_saved(one, temperature=1.0, device=device) for one in saved]


def _scores_and_labels(members: list, data: TextDataModule, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C) logits of one model, or an ensemble's log mean probabilities (their softmax is that mean,
    so argmax, calibration and reports treat both alike), and the (N,) labels of ``split``."""
    if isinstance(members[0], BasePredictor):  # the texts in their split's order
        texts, targets = rows_in_order(data, split)
        scored = [member.logits(texts) for member in members]
    else:  # the data module's batches, in length order
        scored = []
        for model, tokenizer in members:
            if len(members) > 1:
                data.use_tokenizer(tokenizer)
            logits, targets = _logits_and_labels(model, data, split)
            scored.append(logits)
    if len(scored) == 1:
        return scored[0], targets
    return as_logits(torch.stack([logits.softmax(dim=-1) for logits in scored]).mean(dim=0)), targets


def rows_in_order(data: TextDataModule, split: str) -> tuple[list[str], torch.Tensor]:
    """The texts of ``split`` and their labels (class ids, or multi-hot rows), in the split's order."""
    if data.hparams.streaming:
        raise UserInputError("scoring texts in their file's order (an ONNX export, --report) reads the split whole; "
                             "set --data.streaming=false")
    texts = [text or "" for text in data.splits[split][data.text_column]]
    labels = data.encoded(split)["labels"]
    if not data.multi_label:
        return texts, torch.tensor(labels, dtype=torch.long)
    targets = torch.zeros(len(labels), data.num_classes)
    for row, classes in enumerate(labels):
        targets[row, classes] = 1.0
    return texts, targets


def _logits_and_labels(model: torch.nn.Module, data: TextDataModule, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    device = next(model.parameters()).device
    logits, targets = [], []
    for batch in data.dataloader(split):
        logits.append(model(batch["input_ids"].to(device)).cpu())
        targets.append(batch["labels"])
    return torch.cat(logits), torch.cat(targets)


def multilabel_report(
    probabilities: torch.Tensor, targets: torch.Tensor, thresholds: torch.Tensor, label_names: list[str]
) -> dict[str, Any]:
    """Metrics of (N, C) sigmoid probabilities against (N, C) multi-hot targets at ``thresholds``.

    ``at_threshold_0.5`` repeats the headline metrics without tuned thresholds, to show what tuning
    bought.
    """
    num_labels, targets = len(label_names), targets.int()
    predictions = decide(probabilities, thresholds).int()
    kwargs = dict(num_labels=num_labels, zero_division=0)

    def f1(preds: torch.Tensor, average: str) -> torch.Tensor:
        return multilabel_f1_score(preds, targets, average=average, **kwargs)

    precision = multilabel_precision(predictions, targets, average="none", **kwargs)
    recall = multilabel_recall(predictions, targets, average="none", **kwargs)
    per_class_f1 = f1(predictions, "none")
    untuned = decide(probabilities, torch.full((num_labels,), DEFAULT_THRESHOLD)).int()
    return {
        "num_examples": int(targets.shape[0]),
        "micro_f1": float(f1(predictions, "micro")),
        "macro_f1": float(f1(predictions, "macro")),
        "exact_match": float(multilabel_exact_match(predictions, targets, num_labels=num_labels)),
        "mean_labels_true": float(targets.sum(dim=1).float().mean()),
        "mean_labels_predicted": float(predictions.sum(dim=1).float().mean()),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s), "threshold": float(t)}
            for name, p, r, f, s, t in zip(label_names, precision, recall, per_class_f1, targets.sum(dim=0), thresholds)
        },
        "at_threshold_0.5": {"micro_f1": float(f1(untuned, "micro")), "macro_f1": float(f1(untuned, "macro"))},
    }
