"""A hyperparameter search space in YAML: dotted keys of the training config → a range or choices.

```yaml
model.learning_rate: {low: 0.0003, high: 0.01, log: true}     # float, log-uniform
model.network.dropout: {low: 0.1, high: 0.6}                  # float, uniform
data.batch_size: {low: 32, high: 128, step: 32}               # integer: 32, 64, 96 or 128
model.network.conv_channels: {choices: [[64, 128], [128, 256]]}
trainer.max_epochs: {choices: [5, 10]}
```

A range is an integer range when the key holds an integer in the training config (and low, high
and step are integers), otherwise a float range. Keys are checked against the resolved training
config here; whether the training parser accepts each value is checked by the caller, who has the
parser. Every mistake is one :class:`UserInputError` naming the file, the key and the fix.
Nothing here imports Optuna: a parameter samples from any object with Optuna's ``suggest_*`` methods.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from textcnn.config_loader import bounded_load

from textcnn.errors import UserInputError

Number = Union[int, float]
RANGE_FIELDS = ("low", "high", "log", "step")
FIELDS = (*RANGE_FIELDS, "choices")
PRIMITIVE = (str, int, float, bool, type(None))  # what Optuna stores as a categorical choice


@dataclass(frozen=True)
class Range:
    """``low`` ≤ value ≤ ``high``, uniform or log-uniform, optionally on a grid of ``step``."""

    key: str
    low: Number
    high: Number
    log: bool = False
    step: Optional[Number] = None
    integer: bool = False

    def suggest(self, trial: Any) -> Number:
        if self.integer:
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    @property
    def candidates(self) -> list[Number]:
        return [self.low, self.high]

    def describe(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log, "step": self.step, "integer": self.integer}


@dataclass(frozen=True)
class Choice:
    """One of ``choices``; lists and mappings are stored in the study as their JSON text."""

    key: str
    choices: tuple

    @property
    def labels(self) -> list:
        return [choice if isinstance(choice, PRIMITIVE) else json.dumps(choice) for choice in self.choices]

    def suggest(self, trial: Any) -> Any:
        return self.value(trial.suggest_categorical(self.key, self.labels))

    def value(self, label: Any) -> Any:
        """The choice a stored label stands for."""
        return self.choices[self.labels.index(label)]

    @property
    def candidates(self) -> list:
        return list(self.choices)

    def describe(self) -> dict[str, Any]:
        return {"choices": list(self.choices)}


Parameter = Union[Range, Choice]


def read_search_space(path: Union[str, Path], config: Mapping[str, Any]) -> dict[str, Parameter]:
    """The parameters of a search-space file; ``config`` is the resolved training config as
    ``{dotted key: value}``, against which the keys (and integer ranges) are checked."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"search space {path} does not exist; pass a YAML file to --search-space "
                             "(e.g. configs/search_space.yaml)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserInputError(f"cannot read search space {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        spec = bounded_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserInputError(f"search space {path} is not valid YAML{where}; write one `key: {{…}}` per line") from None
    return parse_search_space(spec, config, where=f"search space {path}")


def parse_search_space(spec: Any, config: Mapping[str, Any], where: str = "search space") -> dict[str, Parameter]:
    """The parameters of an already loaded search space (see :func:`read_search_space`)."""
    if spec is None:
        raise UserInputError(f"{where} is empty; give at least one key, e.g. "
                             "model.learning_rate: {low: 0.0003, high: 0.01, log: true}")
    if not isinstance(spec, dict):
        raise UserInputError(f"{where} must map config keys to ranges, e.g. model.network.dropout: "
                             f"{{low: 0.1, high: 0.6}}; got a {type(spec).__name__}")
    return {str(key): _parameter(str(key), value, config, where) for key, value in spec.items()}


def _parameter(key: str, spec: Any, config: Mapping[str, Any], where: str) -> Parameter:
    _check_key(key, config, where)
    if not isinstance(spec, dict):
        raise UserInputError(
            f"{where}: {key} is {spec!r}; give a range {{low: …, high: …}} or {{choices: […]}} (a fixed value "
            f"belongs in the training config, or pass --{key}=… to every trial)"
        )
    unknown = [name for name in spec if name not in FIELDS]
    if unknown:
        raise UserInputError(f"{where}: {key} has the unknown field {unknown[0]!r}; the fields are "
                             f"{', '.join(FIELDS)}")
    if "choices" in spec:
        others = [name for name in RANGE_FIELDS if name in spec]
        if others:
            raise UserInputError(f"{where}: {key} gives both choices and {others[0]}; give either choices or a range")
        return _choice(key, spec["choices"], where)
    return _range(key, spec, config.get(key), where)


def _check_key(key: str, config: Mapping[str, Any], where: str) -> None:
    if key in config:
        return
    fields = [name for name in config if name.startswith(key + ".")]
    if fields:
        raise UserInputError(f"{where}: {key} is a section of the training config; search its fields, e.g. {fields[0]}")
    close = difflib.get_close_matches(key, list(config), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else "textcnn train --help lists the keys"
    raise UserInputError(f"{where}: {key} is not a key of the training config; {hint}")


def _choice(key: str, choices: Any, where: str) -> Choice:
    if not isinstance(choices, list) or not choices:
        raise UserInputError(f"{where}: {key}: choices must be a non-empty list, e.g. choices: [32, 64]; "
                             f"got {choices!r}")
    parameter = Choice(key, tuple(choices))
    labels = parameter.labels
    repeated = next((choice for index, choice in enumerate(choices) if labels.index(labels[index]) != index), None)
    if repeated is not None:
        raise UserInputError(f"{where}: {key}: the choice {repeated!r} is given twice; give each choice once")
    return parameter


def _range(key: str, spec: dict, current: Any, where: str) -> Range:
    for name in ("low", "high"):
        if name not in spec:
            raise UserInputError(f"{where}: {key} has no {name}; give low and high, or choices")
    low, high, step, log = spec["low"], spec["high"], spec.get("step"), spec.get("log", False)
    for name, value in (("low", low), ("high", high), ("step", step)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise UserInputError(f"{where}: {key}: {name} must be a number, got {value!r}")
    if not isinstance(log, bool):
        raise UserInputError(f"{where}: {key}: log must be true or false, got {log!r}")
    if low > high:
        raise UserInputError(f"{where}: {key}: low {low} is greater than high {high}; swap them")
    if log and low <= 0:
        raise UserInputError(f"{where}: {key}: log: true needs low > 0, got {low}; raise low or drop log")
    if step is not None and step <= 0:
        raise UserInputError(f"{where}: {key}: step must be positive, got {step}")
    if log and step is not None:
        raise UserInputError(f"{where}: {key}: give log or step, not both")
    integers = all(isinstance(value, int) for value in (low, high, step) if value is not None)
    if isinstance(current, int) and not isinstance(current, bool) and not integers:
        raise UserInputError(f"{where}: {key} holds an integer (now {current}); give integer low, high and step, "
                             "or choices")
    integer = integers and not isinstance(current, float)
    if not integer:
        low, high, step = float(low), float(high), None if step is None else float(step)
    return Range(key, low, high, log, step, integer)
