"""What a saved model must hold, checked before any network is built from it.

One set of rules for every way a model is read back (a training checkpoint for predict, evaluate,
export, serve and resume; an export directory's ``metadata.json``; a model directory's ``config.json``
and the header of its ``model.safetensors``), so that a damaged or crafted file
ends in one line naming what is wrong instead of a traceback, a huge allocation or silently wrong
labels. The shapes a checkpoint's tensors must have come from building its network on the ``meta``
device, which allocates nothing however large the hyperparameters claim it is.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, NamedTuple, Optional

import torch
from tokenizers import Tokenizer
from torch.overrides import TorchFunctionMode

from textcnn.errors import UserInputError
from textcnn.inference.hub import DATASET_ID
from textcnn.inference.selective import is_number as _number
from textcnn.inference.selective import table_problem
from textcnn.model import TextCNN, TextCNNConfig

MAX_LENGTH_LIMIT = 1_000_000  # tokens per text: far beyond any document a TextCNN reads
MIN_VOCAB_SIZE = 2  # [PAD] and [UNK]
QUANTIZATIONS = ("int8",)  # what `textcnn export --quantize` writes


class DamagedModelError(UserInputError):
    """A checkpoint or export that does not hold what textcnn writes."""


class Checked(NamedTuple):
    """What a check parsed and built, for the reader to keep instead of doing it again."""

    config: TextCNNConfig
    skeleton: TextCNN  # the network on the meta device: its shapes were checked, its weights not yet assigned
    tokenizer: Tokenizer


def check_checkpoint(checkpoint: dict[str, Any], source: str) -> Checked:
    """Refuse a checkpoint whose hyperparameters, label names, tokenizer, lengths or tensors do not
    fit together; return what was parsed and built on the way. ``source`` names the file in the messages."""
    hparams = checkpoint["hyper_parameters"]
    if not isinstance(hparams, dict):
        raise damaged(source, f"its hyper_parameters are a {type(hparams).__name__}, not a mapping")
    for key in ("vocab_size", "num_classes", "label_names", "network"):
        if key not in hparams:
            raise damaged(source, f"its hyper_parameters have no {key!r}")
    vocab_size = _integer(hparams["vocab_size"], "vocab_size", source, low=MIN_VOCAB_SIZE)
    multi_label = hparams.get("multi_label", False)
    if not isinstance(multi_label, bool):
        raise damaged(source, f"multi_label is {multi_label!r}, not true or false")
    num_classes = _integer(hparams["num_classes"], "num_classes", source, low=1 if multi_label else 2)
    check_label_names(hparams["label_names"], source, count=num_classes)
    config = network_config(hparams["network"], source)
    network = skeleton(vocab_size, num_classes, config, source)
    _check_tensors(checkpoint["state_dict"], network, multi_label, source)
    tokenizer = check_tokenizer_fits(checkpoint["tokenizer_json"], vocab_size, source)
    data = checkpoint.get("datamodule_hyper_parameters", {})
    if not isinstance(data, dict):
        raise damaged(source, f"its data settings are a {type(data).__name__}, not a mapping")
    if "max_length" in data:
        check_max_length(data["max_length"], source)
    check_risk_coverage(checkpoint.get("risk_coverage"), multi_label, source)
    return Checked(config, network, tokenizer)


def check_export_metadata(metadata: Any, source: str) -> TextCNNConfig:
    """Refuse an export's ``metadata.json`` that is not what ``textcnn export`` writes; return its network config."""
    if not isinstance(metadata, dict):
        raise damaged(source, f"it holds a {type(metadata).__name__}, not a JSON object")
    for key in ("label_names", "max_length", "min_length", "network", "vocab_size"):
        if key not in metadata:
            raise damaged(source, f"it has no {key!r}")
    thresholds = metadata.get("thresholds")
    check_label_names(metadata["label_names"], source, minimum=1 if thresholds is not None else 2)
    check_max_length(metadata["max_length"], source)
    _integer(metadata["vocab_size"], "vocab_size", source, low=MIN_VOCAB_SIZE)
    config = network_config(metadata["network"], source)
    if metadata["min_length"] != config.widest_kernel or isinstance(metadata["min_length"], bool):
        raise damaged(source, f"min_length is {metadata['min_length']!r}, but its network's widest kernel is "
                               f"{config.widest_kernel}")
    problem = decision_rule_problem(metadata.get("temperature", 1.0), thresholds, len(metadata["label_names"]))
    if problem:
        raise damaged(source, problem)
    check_risk_coverage(metadata.get("risk_coverage"), thresholds is not None, source)
    quantization = metadata.get("quantization")
    if quantization not in (None, *QUANTIZATIONS):
        raise damaged(source, f"quantization is {_short(quantization)}, not one of {', '.join(QUANTIZATIONS)}")
    return config


def check_model_config(config: Any, source: str) -> TextCNNConfig:
    """Refuse a model directory's ``config.json`` that is not what ``textcnn export --format hf`` writes;
    return its network config. The tensors are checked against it separately, before they load."""
    if not isinstance(config, dict):
        raise damaged(source, f"it holds a {type(config).__name__}, not a JSON object")
    for key in ("vocab_size", "num_classes", "label_names", "multi_label", "network", "max_length", "min_length",
                "temperature"):
        if key not in config:
            raise damaged(source, f"it has no {key!r}")
    multi_label = config["multi_label"]
    if not isinstance(multi_label, bool):
        raise damaged(source, f"multi_label is {_short(multi_label)}, not true or false")
    _integer(config["vocab_size"], "vocab_size", source, low=MIN_VOCAB_SIZE)
    num_classes = _integer(config["num_classes"], "num_classes", source, low=1 if multi_label else 2)
    check_label_names(config["label_names"], source, count=num_classes)
    check_max_length(config["max_length"], source)
    network = network_config(config["network"], source)
    if config["min_length"] != network.widest_kernel or isinstance(config["min_length"], bool):
        raise damaged(source, f"min_length is {_short(config['min_length'])}, but its network's widest kernel is "
                               f"{network.widest_kernel}")
    thresholds = config.get("thresholds")
    if multi_label and thresholds is None:
        raise damaged(source, "it is multi-label but has no thresholds")
    if not multi_label and thresholds is not None:
        raise damaged(source, "it has thresholds but is not multi-label")
    problem = decision_rule_problem(config["temperature"], thresholds, num_classes)
    if problem:
        raise damaged(source, problem)
    check_risk_coverage(config.get("risk_coverage"), multi_label, source)
    check_provenance(config, source)
    return network


def check_risk_coverage(table: Any, multi_label: bool, source: str) -> None:
    """A saved risk–coverage table (absent in models saved before abstaining existed) must be whole,
    and only a single-label model has one."""
    if table is None:
        return
    if multi_label:
        raise damaged(source, "it is multi-label (per-class thresholds) but holds a risk_coverage table")
    problem = table_problem(table)
    if problem:
        raise damaged(source, problem)


def decision_rule_problem(temperature: Any, thresholds: Any, num_labels: int) -> Optional[str]:
    """What is wrong with how a model turns logits into decisions, or None: a single-label model divides
    its logits by a positive ``temperature`` before the softmax; a multi-label one compares each class's
    sigmoid with its own threshold in (0, 1) and has no temperature (1). The one rule for saved files
    and for predictors built by hand."""
    if not _number(temperature) or not (0 < temperature and math.isfinite(temperature)):
        return f"temperature is {_short(temperature)}, not a positive number"
    if thresholds is None:
        return None
    if not isinstance(thresholds, (list, tuple)) or len(thresholds) != num_labels or not all(
            _number(t) and 0 < t < 1 for t in thresholds):
        return f"thresholds must be one number in (0, 1) per label ({num_labels}), got {_short(thresholds)}"
    if temperature != 1:
        return (f"temperature is {temperature}, but a multi-label model decides by per-class thresholds: "
                "leave the temperature unset (1)")
    return None


LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
PLAIN = (str, int, float, bool, type(None))


def check_provenance(config: dict[str, Any], source: str) -> None:
    """What a model directory says about how the model was made (for its model card): the training data
    settings, evaluations, languages and dataset ids. Optional, but never anything a card could not show."""
    data = config.get("data", {})
    if not isinstance(data, dict) or not all(
        isinstance(value, PLAIN) or (isinstance(value, list) and all(isinstance(v, PLAIN) for v in value))
        for value in data.values()
    ):
        raise damaged(source, f"its data settings {_short(data)} are not a mapping of plain values")
    evaluations = config.get("evaluation", [])
    if not isinstance(evaluations, list):
        raise damaged(source, f"its evaluation is {_short(evaluations)}, not a list")
    for record in evaluations:
        if not isinstance(record, dict) or not isinstance(record.get("split"), str) or not isinstance(
                record.get("source"), str) or not isinstance(record.get("metrics"), dict):
            raise damaged(source, f"its evaluation record {_short(record)} has no split, source and metrics")
        for name, value in record["metrics"].items():
            if not (isinstance(name, str) and _number(value) and 0 <= value <= 1):
                raise damaged(source, f"its metric {_short(name)} is {_short(value)}, not a number in [0, 1]")
        count = record.get("num_examples")
        if count is not None:
            _integer(count, "num_examples", source, low=0)
    for key, pattern, what in (("language", LANGUAGE_CODE, "language codes such as 'en'"),
                               ("datasets", DATASET_ID, "Hub dataset ids such as 'SetFit/sst2'")):
        values = config.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) and pattern.fullmatch(v) for v in values):
            raise damaged(source, f"its {key} {_short(values)} are not {what}")
    epochs = config.get("epochs_trained")
    if epochs is not None:
        _integer(epochs, "epochs_trained", source, low=0)
    trained_at = config.get("trained_at")
    if trained_at is not None and not _timestamp(trained_at):
        raise damaged(source, f"its trained_at {_short(trained_at)} is not a time such as 2026-12-07T11:30:00+00:00")
    version = config.get("textcnn_version", "")
    if not isinstance(version, str) or not re.fullmatch(r"[0-9A-Za-z.+-]{0,40}", version):
        raise damaged(source, f"textcnn_version is {_short(version)}")


def _timestamp(value: Any) -> bool:
    try:
        return isinstance(value, str) and len(value) <= 40 and datetime.fromisoformat(value) is not None
    except ValueError:
        return False


def check_weights(held: dict[str, tuple[str, tuple[int, ...]]], network: TextCNN, source: str) -> None:
    """A weights file's tensors (name → dtype and shape, read from its header) against the network
    ``config.json`` describes (built on the meta device), before any of them is read: float32 only,
    every name and shape as built."""
    expected = shapes_of(network)
    check_tensor_shapes({name: shape for name, (_, shape) in held.items()}, expected, source, "config.json")
    other = [f"{name} ({dtype})" for name, (dtype, _) in held.items() if dtype != "F32"]
    if other:
        raise damaged(source, f"its tensor {other[0]} is not float32, which textcnn writes")


def check_label_names(names: Any, source: str, count: Optional[int] = None, minimum: int = 1) -> None:
    """Distinct non-empty strings, ``count`` of them when given (a string is not a list of labels)."""
    if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        raise damaged(source, f"its label names {_short(names)} are not a list of non-empty strings")
    if count is not None and len(names) != count:
        raise damaged(source, f"it has {len(names)} label names for {count} classes")
    if len(names) < minimum:
        raise damaged(source, f"it has {len(names)} label name(s); a classifier needs at least {minimum}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise damaged(source, f"its label names repeat {', '.join(map(repr, duplicates))}")


def check_max_length(value: Any, source: str) -> int:
    return _integer(value, "max_length", source, low=1, high=MAX_LENGTH_LIMIT)


def network_config(network: Any, source: str) -> TextCNNConfig:
    """The saved architecture as a validated :class:`TextCNNConfig`."""
    if not isinstance(network, dict):
        raise damaged(source, f"its network is a {type(network).__name__}, not a mapping")
    bad = [key for key, value in network.items()
           if not isinstance(value, (int, float, str, list)) or isinstance(value, bool)]
    if bad:
        raise damaged(source, f"its network setting {bad[0]!r} is {_short(network[bad[0]])}")
    try:
        return TextCNNConfig.from_saved(network)
    except TypeError as error:  # an unknown key, or a value of the wrong type compared with a number
        raise damaged(source, f"its network is not a textcnn architecture ({error})") from None
    except UserInputError as error:
        raise damaged(source, f"its network is invalid: {error}") from None


def check_tokenizer_fits(tokenizer_json: Any, vocab_size: int, source: str) -> Tokenizer:
    """The tokenizer parsed; refused when it is not a tokenizer.json or can give ids past the embedding table."""
    from textcnn.tokenizer import tokenizer_from_json

    if not isinstance(tokenizer_json, str):
        raise damaged(source, f"its tokenizer is not tokenizer.json text but {_short(tokenizer_json)}")
    try:
        tokenizer = tokenizer_from_json(tokenizer_json)
    except UserInputError as error:
        raise damaged(source, f"its tokenizer is unusable: {error}") from None
    except Exception as error:  # tokenizers raises plain Exception for JSON it cannot read
        raise damaged(source, f"its tokenizer is not a tokenizer.json ({str(error).splitlines()[0][:200]})") from None
    check_vocabulary_fits(tokenizer, vocab_size, source)
    return tokenizer


def check_vocabulary_fits(tokenizer: Tokenizer, vocab_size: int, source: str) -> None:
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if size > vocab_size:
        raise damaged(source, f"its tokenizer has {size} tokens but the model embeds only {vocab_size}")


def _check_tensors(state_dict: Any, network: TextCNN, multi_label: bool, source: str) -> None:
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise damaged(source, "its state_dict is not a mapping of names to tensors")
    expected = {f"model.{name}": shape for name, shape in shapes_of(network).items()}
    if multi_label:
        expected["decision_thresholds"] = (network.classifier.out_features,)
    held = {name: tuple(t.shape) for name, t in state_dict.items()
            if name.startswith("model.") or name == "decision_thresholds"}
    check_tensor_shapes(held, expected, source, "hyperparameters")


def skeleton(vocab_size: int, num_classes: int, config: TextCNNConfig, source: str) -> TextCNN:
    """The network ``config`` describes, built on the ``meta`` device: nothing is allocated or
    initialised however large it claims to be. Its shapes are checked against the saved tensors,
    which are then assigned to it (:meth:`SavedModel.network`)."""
    try:
        with torch.device("meta"), _ShapesOnly():
            return TextCNN(vocab_size, num_classes, config)
    except (RuntimeError, ValueError, OverflowError, TypeError) as error:  # sizes no tensor can have
        raise damaged(source, f"its network cannot be built ({str(error).splitlines()[0][:200]})") from None


def shapes_of(network: TextCNN) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, by ``state_dict`` name."""
    return {name: tuple(tensor.shape) for name, tensor in network.state_dict().items()}


def check_tensor_shapes(held: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]], source: str,
                        described_by: str) -> None:
    """The saved tensors are exactly the network's, name for name and shape for shape."""
    missing = [name for name in expected if name not in held]
    if missing:
        raise damaged(source, f"its weights lack {', '.join(missing[:3])} (the {described_by} describe another network)")
    unexpected = [name for name in held if name not in expected]
    if unexpected:
        raise damaged(source, f"its weights hold {', '.join(unexpected[:3])}, which its network does not have")
    for name, shape in expected.items():
        if held[name] != shape:
            raise damaged(source, f"its tensor {name} has shape {list(held[name])}, its {described_by} "
                                   f"describe {list(shape)}")


class _ShapesOnly(TorchFunctionMode):
    """In-place initialisation (``normal_``, ``uniform_``, …) does nothing inside: the shapes are all
    that is read, and initialising meta tensors imports torch's compiler (a second of start-up)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in INITIALISERS:
            return args[0] if args else kwargs.get("tensor", kwargs.get("self"))
        return func(*args, **(kwargs or {}))


INITIALISERS = frozenset({"normal_", "uniform_", "zero_", "fill_", "copy_", "trunc_normal_", "orthogonal_",
                          "bernoulli_", "exponential_", "random_"})


def _integer(value: Any, name: str, source: str, low: int, high: Optional[int] = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"{low} or more"
        raise damaged(source, f"{name} is {_short(value)}, not an integer {bounds}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def damaged(source: str, problem: str) -> DamagedModelError:
    """The one-line error for a saved model that does not hold what textcnn writes."""
    return DamagedModelError(f"{source} is damaged or was not written by textcnn: {problem}; use the files "
                             "train or export wrote, or train again")
