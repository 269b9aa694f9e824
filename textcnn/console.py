"""What reaches the user's console: textcnn's own log lines, the progress bar and the results.

Dependencies announce themselves (Lightning's "GPU available" banner and litlogger tip, the
datasets' progress bars) and warn about their own internals (deprecations inside Lightning, a
logging interval longer than a small dataset's epoch). The command-line entry point hides all of it
unless ``--verbose`` (:func:`quiet_dependencies`: it owns the process); the library hides only the
known, harmless warnings, and only while it runs (:func:`known_warnings_hidden`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import warnings
from collections.abc import Iterator

# Warnings dependencies raise about themselves or about sizes that are fine here; none is the user's to act on.
KNOWN_WARNINGS = (
    ".*tensorboardX.*",  # Lightning: its default logger is the CSV one
    ".*LeafSpec.*",  # Lightning's use of a torch API deprecated in torch
    ".*number of training batches.*logging interval.*",  # a small dataset: fewer steps than log_every_n_steps
    ".*does not have many workers.*",  # data loading runs in the main process by design (encoded tensors)
    ".*args parameter is intended to run from within Python.*",  # textcnn.train() inside a program with arguments
)


class OwnRecordsOnly(logging.Filter):
    """Lets through textcnn's own log records and every dependency's warnings and errors.

    A filter on the handler rather than levels on the dependencies' loggers: Lightning sets its
    logger back to INFO when it is imported, which a command does after start-up, if at all."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name == "textcnn" or record.name.startswith("textcnn.")


def quiet_dependencies() -> None:
    """For the entry point: only textcnn's lines on the console, no dependency's deprecation warnings."""
    # Lightning imported before the root logger had a handler gave its logger one of its own
    for name in ("", "pytorch_lightning", "lightning_fabric"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(OwnRecordsOnly())
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    for message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # read when datasets is imported, if ever
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()


@contextlib.contextmanager
def known_warnings_hidden() -> Iterator[None]:
    """For the library: :data:`KNOWN_WARNINGS` hidden while a training or evaluation runs; every other
    warning, and the caller's own filters, untouched."""
    with warnings.catch_warnings():
        for message in KNOWN_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        yield


def strict_json(value: object, **options) -> str:
    """JSON that every parser reads: NaN and infinite floats (a metric with no examples, a diverged
    model's loss) are written as null, never as the ``NaN`` Python's json module writes by default."""
    return json.dumps(_finite(value), allow_nan=False, **options)


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
