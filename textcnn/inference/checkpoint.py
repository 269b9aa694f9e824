"""Read a training checkpoint safely, without Lightning: a :class:`SavedModel` for predicting, the raw
contents for resuming.

The checkpoint formats are defined here, by the reader, and written by
:class:`textcnn.training.module.TextCNNClassifier`.

``torch.load(..., weights_only=True)`` refuses to unpickle anything but tensors and plain values,
so a crafted checkpoint cannot run code on load.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Optional

import torch

from textcnn.errors import UserInputError
from textcnn.inference.model_directory import clean_data_settings
from textcnn.inference.saved_model import SavedModel
from textcnn.inference.schema import Checked, check_checkpoint

CHECKPOINT_FORMAT = 1  # bump when what a checkpoint holds changes incompatibly
MULTI_LABEL_CHECKPOINT_FORMAT = 2  # format 1 plus multi-label: readers of format 1 alone would apply softmax


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents, checked against :mod:`textcnn.inference.schema` before any network is
    built from them (resuming a run reads it so). Only local files: a URL is refused (see :func:`refuse_remote`)."""
    return _read_checked(path)[0]


def read_saved_checkpoint(path: str | Path) -> SavedModel:
    """The checkpoint as a :class:`SavedModel`: read, checked and parsed once."""
    checkpoint, checked = _read_checked(path)
    hparams, data = checkpoint["hyper_parameters"], data_settings(checkpoint)
    recorded = recorded_validation(checkpoint, path)
    weights = {name[len("model."):]: tensor.to(torch.float32) if tensor.is_floating_point() else tensor
               for name, tensor in checkpoint["state_dict"].items() if name.startswith("model.")}
    broken = [name for name, value in weights.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if broken:
        raise UserInputError(
            f"the checkpoint's weights are not finite (NaN or infinite in {', '.join(broken[:3])}): it was saved by a "
            "run that diverged; train again with a lower model.learning_rate"
        )
    multi_label = hparams.get("multi_label", False)
    return SavedModel(
        kind="checkpoint", source=Path(path), config=checked.config, vocab_size=hparams["vocab_size"],
        label_names=list(hparams["label_names"]), tokenizer=checked.tokenizer,
        max_length=data.get("max_length", 128),
        thresholds=checkpoint["state_dict"]["decision_thresholds"].tolist() if multi_label else None,
        risk_coverage=checkpoint.get("risk_coverage"),
        data=data,
        provenance={"data": clean_data_settings(data), "evaluation": [recorded] if recorded else [],
                    "epochs_trained": checkpoint["epoch"] + 1 if isinstance(checkpoint.get("epoch"), int) else None,
                    "trained_at": checkpoint.get("trained_at")},
        skeleton=checked.skeleton, weights=weights,
    )


def store_in_checkpoint(path: str | Path, key: str, value: Any) -> Path:
    """Set the top-level ``key`` of a checkpoint (rewritten whole, atomically: a crash leaves the old file)."""
    from textcnn.atomic import unwritable, write_atomic

    checkpoint, _ = _read_checked(path)
    checkpoint[key] = value
    check_checkpoint(checkpoint, str(path))
    try:
        write_atomic(Path(path), lambda file: torch.save(checkpoint, file))
    except OSError as error:
        raise unwritable(Path(path).parent, error, "the checkpoint's directory") from None
    return Path(path)


def _read_checked(path: str | Path) -> tuple[dict[str, Any], Checked]:
    refuse_remote(path)
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"checkpoint {path} does not exist; pass the .ckpt path that training printed")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UserInputError(
            f"refusing to load {path}: it holds objects other than tensors and plain values "
            f"({str(error).splitlines()[0]}); only load checkpoints written by textcnn"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise UserInputError(
            f"{path} is not a readable PyTorch checkpoint ({str(error).splitlines()[0]}); "
            "it may be truncated or corrupted: use another checkpoint or retrain"
        ) from None
    if not isinstance(checkpoint, dict) or not {"state_dict", "hyper_parameters", "tokenizer_json"} <= checkpoint.keys():
        raise UserInputError(f"{path} is not a textcnn checkpoint (no model, hyperparameters or tokenizer)")
    if checkpoint.get("textcnn_format") not in (CHECKPOINT_FORMAT, MULTI_LABEL_CHECKPOINT_FORMAT):
        raise UserInputError(
            f"{path} has checkpoint format {checkpoint.get('textcnn_format')}, this textcnn reads "
            f"formats {CHECKPOINT_FORMAT} and {MULTI_LABEL_CHECKPOINT_FORMAT}; use the textcnn version that wrote it"
        )
    return checkpoint, check_checkpoint(checkpoint, str(path))


def refuse_remote(path: str | Path) -> None:
    """Checkpoints are read from local files only. Lightning reads a URL with ``weights_only=False``
    (a crafted file would run code) and caches nothing; download it, check where it came from, and
    pass the local path."""
    text = str(path)
    if "://" in text:
        raise UserInputError(
            f"{text} is a URL; textcnn reads checkpoints from local files only (a remote file could run code "
            "when unpickled): download it, make sure it comes from someone you trust, and pass its path"
        )


# what the monitored validation metrics are called in an evaluation report (textcnn evaluate's names)
MONITORED_METRICS = {"val_acc": "accuracy", "val_macro_f1": "macro_f1", "val_micro_f1": "micro_f1"}


def recorded_validation(checkpoint: dict[str, Any], path: str | Path) -> Optional[dict[str, Any]]:
    """The validation score that made training keep this very file, as Lightning's ``ModelCheckpoint``
    recorded it (the ``best-…`` checkpoints, not ``last.ckpt``); None when the checkpoint holds none.
    A multi-label model's ``val_acc`` is its exact-match ratio."""
    multi_label = checkpoint["hyper_parameters"].get("multi_label", False)
    callbacks = checkpoint.get("callbacks")
    for key, state in (callbacks.items() if isinstance(callbacks, dict) else ()):
        if not (isinstance(key, str) and key.startswith("ModelCheckpoint") and isinstance(state, dict)):
            continue
        monitor, models = state.get("monitor"), state.get("best_k_models")
        name = "exact_match" if monitor == "val_acc" and multi_label else MONITORED_METRICS.get(monitor)
        if name is None or not isinstance(models, dict):
            continue
        for saved, score in models.items():
            if isinstance(saved, str) and Path(saved).name == Path(path).name and isinstance(score, torch.Tensor) \
                    and score.numel() == 1 and 0 <= float(score) <= 1:
                return {"split": "validation", "source": "checkpoint", "num_examples": None,
                        "metrics": {name: round(float(score), 6)}}
    return None


def data_settings(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The data module's arguments at training time (path, columns, max_length, …)."""
    saved = checkpoint.get("datamodule_hyper_parameters", {})
    return {key: value for key, value in saved.items() if not key.startswith("_")}  # not LightningCLI's own keys
