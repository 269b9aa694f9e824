"""What a saved model must hold, checked before any network is built from it.

One set of rules for every way a model is read back (a training checkpoint for predict, evaluate,
export, serve and resume; an export directory's ``metadata.json``), so that a damaged or crafted file
ends in one line naming what is wrong instead of a traceback, a huge allocation or silently wrong
labels. The shapes a checkpoint's tensors must have come from building its network on the ``meta``
device, which allocates nothing however large the hyperparameters claim it is.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
from tokenizers import Tokenizer
from torch.overrides import TorchFunctionMode

from textcnn.errors import UserInputError
from textcnn.model import TextCNN, TextCNNConfig

MAX_LENGTH_LIMIT = 1_000_000  # tokens per text: far beyond any document a TextCNN reads
MIN_VOCAB_SIZE = 2  # [PAD] and [UNK]


class DamagedModelError(UserInputError):
    """A checkpoint or export that does not hold what textcnn writes."""


def check_checkpoint(checkpoint: dict[str, Any], source: str) -> TextCNNConfig:
    """Refuse a checkpoint whose hyperparameters, label names, tokenizer, lengths or tensors do not
    fit together; return its network config. ``source`` names the file in the messages."""
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
    _check_tensors(checkpoint["state_dict"], vocab_size, num_classes, config, multi_label, source)
    check_tokenizer_fits(checkpoint["tokenizer_json"], vocab_size, source)
    data = checkpoint.get("datamodule_hyper_parameters", {})
    if not isinstance(data, dict):
        raise damaged(source, f"its data settings are a {type(data).__name__}, not a mapping")
    if "max_length" in data:
        check_max_length(data["max_length"], source)
    return config


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
    temperature = metadata.get("temperature", 1.0)
    if not _number(temperature) or not (0 < temperature and math.isfinite(temperature)):
        raise damaged(source, f"temperature is {temperature!r}, not a positive number")
    if thresholds is not None:
        if not isinstance(thresholds, list) or len(thresholds) != len(metadata["label_names"]) or not all(
            _number(t) and 0 < t < 1 for t in thresholds
        ):
            raise damaged(source, f"thresholds must be one number in (0, 1) per label, got {thresholds!r}")
    return config


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


def _check_tensors(state_dict: Any, vocab_size: int, num_classes: int, config: TextCNNConfig, multi_label: bool,
                   source: str) -> None:
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise damaged(source, "its state_dict is not a mapping of names to tensors")
    try:
        with torch.device("meta"), _ShapesOnly():  # nothing is allocated or initialised
            expected = {f"model.{name}": tuple(t.shape) for name, t in
                        TextCNN(vocab_size, num_classes, config).state_dict().items()}
    except (RuntimeError, ValueError, OverflowError, TypeError) as error:  # sizes no tensor can have
        raise damaged(source, f"its network cannot be built ({str(error).splitlines()[0][:200]})") from None
    if multi_label:
        expected["decision_thresholds"] = (num_classes,)
    held = {name: tuple(t.shape) for name, t in state_dict.items()
            if name.startswith("model.") or name == "decision_thresholds"}
    missing = [name for name in expected if name not in held]
    if missing:
        raise damaged(source, f"its weights lack {', '.join(missing[:3])} (the hyperparameters describe another network)")
    unexpected = [name for name in held if name not in expected]
    if unexpected:
        raise damaged(source, f"its weights hold {', '.join(unexpected[:3])}, which its network does not have")
    for name, shape in expected.items():
        if held[name] != shape:
            raise damaged(source, f"its tensor {name} has shape {list(held[name])}, its hyperparameters "
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


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def damaged(source: str, problem: str) -> DamagedModelError:
    """The one-line error for a saved model that does not hold what textcnn writes."""
    return DamagedModelError(f"{source} is damaged or was not written by textcnn: {problem}; use the files "
                             "train or export wrote, or train again")
