"""The YAML loader every textcnn parser reads configs and values with: jsonargparse's own, behind a
bound on alias expansion; and :class:`CommandParser`, the parser of every command but ``train``
(whose ``LightningCLI`` parser, :class:`textcnn.training.build.TrainParser`, reads the same way).

YAML aliases let a 600-byte document stand for gigabytes (``&a [*b, *b, …]`` nested a few levels,
the "billion laughs"); the loader would build all of it before any key is checked. The document is
composed first (aliases stay references, so this is cheap), its expanded size counted, and one far
beyond its text is refused in one line. Registered as the parser mode :data:`MODE`; jsonargparse's
own modes are left as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn, Optional

import yaml
from jsonargparse import ArgumentParser, get_loader, set_loader

from textcnn.errors import UserInputError

MODE = "textcnn_yaml"
MAX_EXPANSION = 100  # expanded characters per character of text: lists and mappings repeated by aliases
MAX_EXPANDED = 10 * 2**20  # characters: no config or value is this large written out


def expanded_size(text: str) -> int:
    """About how many characters ``text`` holds with every alias written out (a recursive alias counts
    as unbounded)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return len(text)  # the real loader reports the syntax error
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:  # an alias inside its own anchor
            return MAX_EXPANDED + 1
        in_progress.add(key)
        if isinstance(node, yaml.ScalarNode):
            total = len(node.value) + 1
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(item) for item in node.value)
        else:
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        in_progress.discard(key)
        sizes[key] = min(total, MAX_EXPANDED + 1)
        return sizes[key]

    return 0 if root is None else size(root)


def bounded_load(text: str) -> Any:
    """jsonargparse's YAML loader, after refusing a document whose aliases expand far beyond its text."""
    if "*" in text:  # without an alias there is nothing to expand
        expanded = expanded_size(text)
        if expanded > MAX_EXPANDED or expanded > MAX_EXPANSION * max(len(text), 1000):
            raise UserInputError(
                f"a config of {len(text):,} characters whose YAML aliases (*name) expand to over "
                f"{min(expanded, MAX_EXPANDED):,} characters was refused; write the values out instead of "
                "repeating aliases of aliases"
            )
    return get_loader("yaml")(text)


set_loader(MODE, bounded_load, (yaml.YAMLError,))


MAX_MESSAGE_LINE = 400  # characters of an error message line: a long value is quoted as an excerpt


def excerpt(message: str) -> str:
    """A parser's error message with each over-long line (one quoting a huge value) cut to an excerpt."""
    return "\n".join(line if len(line) <= MAX_MESSAGE_LINE else
                     f"{line[:MAX_MESSAGE_LINE]}… ({len(line) - MAX_MESSAGE_LINE:,} more characters)"
                     for line in message.splitlines())


class CommandParser(ArgumentParser):
    """A command's parser (jsonargparse, as training's is): YAML values read through the bounded
    loader, errors that quote a long value as an excerpt."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("parser_mode", MODE)
        super().__init__(*args, **kwargs)

    def error(self, message: str, ex: Optional[Exception] = None) -> NoReturn:
        super().error(excerpt(message), ex)


def split_options(argv: Sequence[str], own: dict[str, bool]) -> tuple[list[str], list[str]]:
    """A command's own options (``own``: name → whether it takes a value) and the rest, in order: the
    training options of ``tune`` and ``audit``, passed on to every run they start."""
    mine, rest, args = [], [], iter(argv)
    for arg in args:
        name = arg.split("=", 1)[0]
        if name not in own:
            rest.append(arg)
            continue
        mine.append(arg)
        if own[name] and "=" not in arg:
            value = next(args, None)
            mine.extend([] if value is None else [value])
    return mine, rest


def dotted_settings(argv: Sequence[str]) -> dict[str, Any]:
    """``--section.key=value`` / ``--section.key value`` options as dotted keys → values, each value
    read as YAML (``64``, ``[32, 32]``, ``null``, ``true``) as the training parser reads it."""
    settings, args = {}, iter(argv)
    for arg in args:
        if not arg.startswith("--") or len(arg) == 2:
            raise UserInputError(f"{arg!r} is not an option; give training options as --section.key=value")
        key, has_value, value = arg[2:].partition("=")
        if not has_value:
            value = next(args, None)
            if value is None:
                raise UserInputError(f"--{key} has no value; give it as --{key}=VALUE")
        try:
            settings[key] = bounded_load(value)
        except UserInputError:
            raise
        except yaml.YAMLError as error:
            raise UserInputError(f"--{key}: {value!r} is not a value ({str(error).splitlines()[0]})") from None
    return settings
