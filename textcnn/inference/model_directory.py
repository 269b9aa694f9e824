"""The standard model directory, as Hugging Face models ship: weights, config, tokenizer and model card.

    model.safetensors   the network's tensors (TextCNN.state_dict names), float32
    config.json         network, vocabulary and class count, label names, max / min length, temperature,
                        a multi-label model's thresholds, format and textcnn versions, and how the model
                        was made (training data settings, evaluations, languages, dataset ids)
    tokenizer.json      the Hugging Face tokenizer
    README.md           the model card (:mod:`textcnn.inference.model_card`)

Written by ``textcnn export --format hf`` and :meth:`Predictor.save`, read by ``textcnn.load``. Reading
it unpickles nothing: JSON and safetensors only, so a directory from the Hub cannot run code. Everything
is checked by :mod:`textcnn.inference.schema` first, the tensors' names, shapes and dtypes from the
safetensors header before any weight is read.
"""

from __future__ import annotations

import json
import os
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch
from textcnn.atomic import unwritable, write_atomic, write_text_atomic
from textcnn.errors import UserInputError
from textcnn.inference.hub import DATASET_ID, MODEL_FILES
from textcnn.inference.schema import (
    LANGUAGE_CODE,
    check_model_config,
    check_tokenizer_fits,
    check_weights,
    damaged,
    skeleton,
)
from textcnn.inference.saved_model import SavedModel
from textcnn.model import TextCNN

FILES = MODEL_FILES
WEIGHTS_FILE, CONFIG_FILE, TOKENIZER_FILE, CARD_FILE = FILES
MODEL_TYPE = "textcnn"
FORMAT_VERSION = 1  # bump when what a model directory holds changes incompatibly


def is_model_directory(path: Path) -> bool:
    """A directory holding a model directory's weights or config (an ONNX export holds model.onnx)."""
    return (path / WEIGHTS_FILE).is_file() or (path / CONFIG_FILE).is_file()


def textcnn_version() -> str:
    try:
        return package_metadata.version("textcnn")
    except package_metadata.PackageNotFoundError:  # a source tree that was never installed
        return ""


def model_config(predictor: Any, provenance: dict[str, Any]) -> dict[str, Any]:
    """What ``config.json`` holds for a PyTorch ``predictor``; ``provenance`` as ``schema.check_provenance`` reads it."""
    import dataclasses

    model = predictor.model
    config = {
        "model_type": MODEL_TYPE,
        "format_version": FORMAT_VERSION,
        "textcnn_version": textcnn_version(),
        "network": dataclasses.asdict(model.config),
        "vocab_size": model.embedding.num_embeddings,
        "num_classes": len(predictor.label_names),
        "label_names": predictor.label_names,
        "multi_label": predictor.multi_label,
        "max_length": predictor.max_length,
        "min_length": predictor.min_length,
        "temperature": predictor.temperature,
        "num_parameters": sum(p.numel() for p in model.parameters()),
    }
    if predictor.multi_label:
        config["thresholds"] = predictor.thresholds.tolist()
    if predictor.risk_coverage is not None:
        config["risk_coverage"] = predictor.risk_coverage
    config.update({key: value for key, value in provenance.items() if value not in (None, [], {})})
    return config


def refuse_replacing_others(directory: Path) -> None:
    """A directory holding files named as ours that an earlier save did not write (no textcnn config.json
    beside them) is someone else's: refuse rather than replace them."""
    clashes = [name for name in FILES if (directory / name).exists()]
    if not clashes or written_by_textcnn(directory):
        return
    raise UserInputError(f"{directory} holds {', '.join(clashes)}, which textcnn did not write; choose an empty or "
                         "new directory for --output, or pass --force to replace those files (nothing else is touched)")


def written_by_textcnn(directory: Path) -> bool:
    """Whether ``directory``'s config.json is a textcnn model directory's (as an earlier export wrote it)."""
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model_type") == MODEL_TYPE


def save_directory(predictor: Any, directory: Union[str, Path], repo_id: Optional[str] = None,
                   metrics: Optional[dict[str, Any]] = None, language: Sequence[str] = (),
                   datasets: Sequence[str] = (), force: bool = False) -> list[Path]:
    """Write the four files of a PyTorch ``predictor`` into ``directory``, each atomically; returns their paths.
    Files of the same names that textcnn did not write (the user's own README.md or config.json) are
    replaced only with ``force``; nothing else in the directory is touched.

    ``metrics`` is a report printed by ``textcnn evaluate`` (added to the card); ``language`` and
    ``datasets`` (Hub dataset ids) go into the card's metadata; ``repo_id`` is the Hub id the card's
    loading example uses. :meth:`Predictor.save` reads the files back and checks them.
    """
    from safetensors.torch import save as safetensors_bytes

    from textcnn.inference.model_card import evaluation_record, render_card

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserInputError(f"{directory} is a file; pass a directory for the model")
    if (directory / "model.onnx").exists():
        raise UserInputError(f"{directory} holds an ONNX export (model.onnx); write the model directory elsewhere")
    if not force:
        refuse_replacing_others(directory)
    provenance = dict(predictor.provenance)
    if metrics is not None:
        record = evaluation_record(metrics, predictor.label_names, predictor.multi_label)
        provenance["evaluation"] = [r for r in provenance.get("evaluation", []) if r["source"] != "evaluate"] + [record]
    for key, values, pattern, what in (("language", language, LANGUAGE_CODE, "a language code such as en or pt-BR"),
                                       ("datasets", datasets, DATASET_ID, "a Hub dataset id such as SetFit/sst2")):
        bad = [value for value in values if not (isinstance(value, str) and pattern.fullmatch(value))]
        if bad:
            raise UserInputError(f"{key} {bad[0]!r} is not {what}; give it as that")
        if values:
            provenance[key] = list(values)
    config = model_config(predictor, provenance)
    check_model_config(config, "the model to save")
    weights = {name: tensor.detach().to("cpu", torch.float32).contiguous()
               for name, tensor in predictor.model.state_dict().items()}
    try:
        write_atomic(directory / WEIGHTS_FILE, lambda file: file.write(safetensors_bytes(weights, {"format": "pt"})))
        write_text_atomic(directory / CONFIG_FILE, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        write_text_atomic(directory / TOKENIZER_FILE, predictor.tokenizer.to_str())
        write_text_atomic(directory / CARD_FILE, render_card(config, repo_id))
    except OSError as error:
        raise unwritable(directory, error, "--output") from None
    return [directory / name for name in FILES]


def read_directory(directory: Union[str, Path]) -> SavedModel:
    """The model directory as a :class:`SavedModel`: each file read once and checked, the tensors'
    names, dtypes and shapes from the safetensors header before any weight is read."""
    directory = Path(directory)
    for name in (WEIGHTS_FILE, CONFIG_FILE, TOKENIZER_FILE):
        if not (directory / name).is_file():
            raise UserInputError(f"{directory} has no {name}; pass a directory written by `textcnn export --format hf` "
                                 "(or a .ckpt checkpoint, or an ONNX export)")
    config = read_config(directory / CONFIG_FILE)
    network = check_model_config(config, str(directory / CONFIG_FILE))
    try:
        tokenizer_json = (directory / TOKENIZER_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserInputError(f"cannot read {directory / TOKENIZER_FILE} ({error}); export again") from None
    tokenizer = check_tokenizer_fits(tokenizer_json, config["vocab_size"], str(directory / TOKENIZER_FILE))
    built = skeleton(config["vocab_size"], config["num_classes"], network, str(directory / CONFIG_FILE))
    return SavedModel(
        kind="directory", source=directory, config=network, vocab_size=config["vocab_size"],
        label_names=config["label_names"], tokenizer=tokenizer, max_length=config["max_length"],
        temperature=config["temperature"], thresholds=config.get("thresholds"), data=config.get("data", {}),
        risk_coverage=config.get("risk_coverage"),
        provenance={key: config[key] for key in PROVENANCE_KEYS if key in config}, metadata=config,
        skeleton=built, weights=read_weights(directory / WEIGHTS_FILE, built),
    )


PROVENANCE_KEYS = ("data", "evaluation", "language", "datasets", "epochs_trained", "trained_at")


def store_in_config(directory: Path, key: str, value: Any) -> Path:
    """Set ``key`` of a model directory's ``config.json`` (rewritten whole, atomically); its path."""
    path = Path(directory) / CONFIG_FILE
    config = read_config(path)
    config[key] = value
    check_model_config(config, str(path))
    try:
        write_text_atomic(path, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    except OSError as error:
        raise unwritable(path.parent, error, "the model directory") from None
    return path


def read_config(path: Path) -> Any:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise UserInputError(f"cannot read {path} ({str(error).splitlines()[0][:200]}); export again") from None
    if not isinstance(config, dict) or config.get("model_type") != MODEL_TYPE:
        kind = config.get("model_type") if isinstance(config, dict) else None
        raise UserInputError(f"{path} is not a textcnn model's config (model_type {kind!r}, textcnn writes "
                             f"{MODEL_TYPE!r}); pass a directory written by `textcnn export --format hf`")
    if config.get("format_version") != FORMAT_VERSION:
        raise UserInputError(f"{path} has format version {config.get('format_version')!r}, this textcnn reads "
                             f"{FORMAT_VERSION}; use the textcnn version that wrote it (textcnn_version in the file)")
    return config


def read_weights(path: Path, network: TextCNN) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors``, after its header's names, dtypes and shapes were checked."""
    from safetensors import safe_open

    source = str(path)
    try:
        with safe_open(str(path), framework="pt") as file:
            header = {name: (file.get_slice(name).get_dtype(), tuple(file.get_slice(name).get_shape()))
                      for name in file.keys()}
            check_weights(header, network, source)
            weights = {name: file.get_tensor(name) for name in header}
    except UserInputError:
        raise
    except Exception as error:  # safetensors raises its own SafetensorError (and OSError) for unreadable files
        raise damaged(source, f"it is not a readable safetensors file ({str(error).splitlines()[0][:200]})") from None
    broken = [name for name, tensor in weights.items() if not torch.isfinite(tensor).all()]
    if broken:
        raise damaged(source, f"its weights are NaN or infinite in {', '.join(broken[:3])}")
    return weights


def clean_data_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Training data settings fit to publish: absolute and relative paths (a home directory, a
    cluster's scratch space, ``../data``) are cut to their last part, so a pushed model names its
    files but not the machine. A Hub id (``SetFit/sst2``) stays as it is."""
    def clean(value: Any) -> Any:
        if isinstance(value, str) and (os.path.isabs(value) or value.startswith(("~", "./", "../"))):
            return Path(value).name
        return value

    return {key: [clean(v) for v in value] if isinstance(value, list) else clean(value)
            for key, value in settings.items() if not key.startswith("_")}
