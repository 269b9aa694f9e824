"""A training run's config as one object, whether it came from a command line or from Python.

``textcnn train`` and ``textcnn.train()`` both end in the same nested mapping of typed values —
``{"data": {"train_file": …}, "model": {"network": {…}}, "trainer": {…}, …}`` — resolved by the
training parser (defaults, links and checks: :mod:`textcnn.training.build`), then completed by the
default recipe from the data (:mod:`textcnn.training.recipe`), then built. Python values stay values:
a list is a list, ``None`` is ``None``; nothing is written out as ``--key=value`` text and parsed back.
Alongside the config goes which keys the user chose (on the command line, in ``textcnn.train()``'s
keyword arguments, or ``config`` for a whole file), so the recipe never overrides a choice.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from textcnn.errors import UserInputError

Config = dict[str, Any]


def resolve(source: Union[Sequence[str], Mapping[str, Any]]) -> Config:
    """The full config a command line or a nested mapping describes: every default filled in, links
    applied, values checked; builds nothing."""
    from textcnn.training.build import build

    mapping = None if isinstance(source, Mapping) else list(source)
    return build(dict(source) if mapping is None else mapping, instantiate=False).config.as_dict()


def from_command_line(argv: Sequence[str]) -> tuple[Config, set[str]]:
    """The resolved config of a ``textcnn train`` command line, and the keys it names."""
    return resolve(argv), named_keys(argv)


def from_python(config_file: Union[str, Path, None], settings: Mapping[str, Any]) -> tuple[Config, set[str]]:
    """The resolved config of a YAML file (or none: the default recipe) with dotted ``settings`` over it,
    e.g. ``{"data.train_file": "train.csv", "trainer.max_epochs": 5}``; the chosen keys are the
    settings' and, with a file, ``config``."""
    mapping: Config = read_config_file(config_file) if config_file is not None else {}
    for key, value in settings.items():
        set_dotted(mapping, key, value)
    return resolve(mapping), set(settings) | ({"config"} if config_file is not None else set())


def read_config_file(path: Union[str, Path]) -> Config:
    """A YAML config as a nested mapping, read through the parsers' bounded loader."""
    from textcnn.config_loader import bounded_load

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserInputError(f"cannot read the config {path} ({error}); pass a YAML file") from None
    try:
        mapping = bounded_load(text)
    except UserInputError:
        raise
    except Exception as error:  # yaml's own errors
        raise UserInputError(f"{path} is not valid YAML ({str(error).splitlines()[0][:200]})") from None
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise UserInputError(f"{path} holds a {type(mapping).__name__}, not a mapping of sections (data:, model:, …)")
    return mapping


def named_keys(argv: Iterable[str]) -> set[str]:
    """The dotted keys a command line sets (``--data.max_length=64`` or ``--data.max_length 64``), and
    ``config`` when it gives a config file."""
    keys = set()
    for arg in argv:
        if arg.startswith("--") and len(arg) > 2:
            keys.add(arg[2:].split("=", 1)[0])
    return keys


def get_dotted(config: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return default
        value = value[part]
    return value


def set_dotted(config: Config, key: str, value: Any) -> None:
    """``config["a"]["b"] = value`` for ``key`` ``a.b``, making the sections on the way."""
    *sections, last = key.split(".")
    target = config
    for part in sections:
        nested = target.get(part)
        if not isinstance(nested, dict):
            nested = target[part] = {}
        target = nested
    target[last] = value


def with_settings(config: Config, settings: Mapping[str, Any], chosen: set[str]) -> tuple[Config, list[str]]:
    """A copy of ``config`` with the dotted ``settings`` that the user did not choose themselves; and
    the keys it set."""
    merged, applied = copy.deepcopy(config), []
    for key, value in settings.items():
        if not is_chosen(key, chosen):
            set_dotted(merged, key, copy.deepcopy(value))
            applied.append(key)
    return merged, applied


def is_chosen(key: str, chosen: set[str]) -> bool:
    """Whether the user chose ``key``: named it, or a section holding it (``model.network`` as a whole)."""
    return any(key == name or key.startswith(name + ".") for name in chosen)
