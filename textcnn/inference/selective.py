"""Abstaining: answer only the texts the model is confident about, and know beforehand how accurate
those answers are (selective prediction; Geifman & El-Yaniv 2017).

A text's confidence is its largest class probability. As the threshold on it rises, fewer texts are
answered (the coverage falls) and those answered are more often right. The **risk–coverage table**
measures that trade on the validation split at the end of training: one row per percent of coverage
(the 1 %, 2 %, …, 100 % most confident texts), each with its threshold, the share of texts answered
and the accuracy on them. It is saved with the model (checkpoint, model directory, ONNX export) and
read back by predictors:

* ``min_confidence=P`` answers a text when its largest probability is at least ``P``;
* ``min_precision=P`` answers at the lowest threshold whose accuracy on answered validation texts
  reaches ``P``: the most texts answered at that validation precision.

Confidences for the table, and for ``min_precision``, are the probabilities at the table's own
temperature (the one calibration kept when it was made), whatever temperature a predictor shows,
so the threshold means what it meant when it was measured. Multi-label models decide by their
per-class thresholds and have no table.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch

TARGET_PRECISIONS = (0.90, 0.95, 0.99)  # the rows evaluate reports
COVERAGE_ROWS = 100  # one row per percent of coverage
MAX_ROWS = 10_000  # a saved table longer than this was not written by textcnn


def confidences(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """(N,) the largest class probability of each row of (N, C) ``logits`` at ``temperature``."""
    return (logits.float() / temperature).softmax(dim=-1).amax(dim=-1)


def risk_coverage(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0,
                  split: str = "validation") -> dict[str, Any]:
    """The table for (N, C) ``logits`` and (N,) ``labels``: rows in rising threshold order.

    Row ``k`` (of :data:`COVERAGE_ROWS`) answers the texts at least as confident as the
    ``ceil(N · k / rows)``-th most confident one (ties answered together), so coverage and accuracy
    are exact at its threshold."""
    confidence = confidences(logits, temperature)
    correct = (logits.argmax(dim=-1) == labels).double()
    order = confidence.argsort(descending=True, stable=True)
    ranked, right = confidence[order], correct[order].cumsum(0)
    count = len(ranked)
    rows: dict[float, tuple[float, float]] = {}
    for k in range(1, COVERAGE_ROWS + 1):
        threshold = float(ranked[math.ceil(count * k / COVERAGE_ROWS) - 1])
        answered = int((ranked >= threshold).sum())  # ties with the threshold are answered too
        rows[threshold] = (answered / count, float(right[answered - 1]) / answered)
    thresholds = sorted(rows)
    return {"split": split, "temperature": float(temperature), "num_examples": count,
            "threshold": [round(t, 6) for t in thresholds],
            "coverage": [round(rows[t][0], 6) for t in thresholds],
            "accuracy": [round(rows[t][1], 6) for t in thresholds]}


def row_for_precision(table: dict[str, Any], precision: float) -> Optional[int]:
    """The row of ``table`` with the lowest threshold whose accuracy on answered texts reaches
    ``precision``; None when no row does."""
    for index, accuracy in enumerate(table["accuracy"]):
        if accuracy >= precision - 1e-9:  # a row saved rounded to 6 places still reaches its own value
            return index
    return None


def threshold_for_precision(table: dict[str, Any], precision: float) -> Optional[float]:
    """The threshold of :func:`row_for_precision`; None when no row reaches ``precision``."""
    index = row_for_precision(table, precision)
    return None if index is None else table["threshold"][index]


def unreachable(table: dict[str, Any], precision: float,
                names: tuple[str, str] = ("min_confidence", "min_precision")) -> str:
    best = max(range(len(table["accuracy"])), key=lambda i: (table["accuracy"][i], table["coverage"][i]))
    return (f"on its {table['split']} split the model never reaches precision {precision:g}: its best is "
            f"{table['accuracy'][best]:.4f}, answering {table['coverage'][best]:.1%} of texts; ask for a lower "
            f"{names[1]}, or abstain by {names[0]}")


def no_table(backend: str, source: Optional[str], names: tuple[str, str]) -> str:
    """Why a model without a table cannot abstain by precision, and how to give it one."""
    if backend == "ensemble":
        return f"an ensemble has no risk–coverage table for {names[1]}; abstain by {names[0]}, or use one model"
    model = source or "MODEL"
    if backend == "onnx":
        return (f"the ONNX export {model} has no risk–coverage table, which {names[1]} needs: it was exported "
                "before textcnn saved one; export it again from a .ckpt or model directory that has one "
                "(`textcnn evaluate --checkpoint CKPT --save-thresholds` adds it)")
    return (f"{model} was saved without a risk–coverage table, which {names[1]} needs; add it with "
            f"`textcnn evaluate --checkpoint {model} --save-thresholds`, or train again")


def answered_at(logits: torch.Tensor, labels: torch.Tensor, temperature: float, threshold: float) -> dict[str, Any]:
    """Coverage and accuracy on answered texts of ``logits`` / ``labels`` at ``threshold``."""
    answered = confidences(logits, temperature) >= threshold
    count = int(answered.sum())
    correct = int((logits.argmax(dim=-1)[answered] == labels[answered]).sum())
    return {"answered": count, "coverage": count / len(labels),
            "accuracy": correct / count if count else None}


def selective_report(table: dict[str, Any], logits: torch.Tensor, labels: torch.Tensor, split: str,
                     targets: tuple[float, ...] = TARGET_PRECISIONS) -> dict[str, Any]:
    """For each target precision: the threshold ``table`` (validation) gives it, and the coverage and
    accuracy that threshold reaches on ``split`` (``logits``, ``labels``: the check)."""
    rows = []
    for precision in targets:
        index = row_for_precision(table, precision)
        threshold = None if index is None else table["threshold"][index]
        row: dict[str, Any] = {"precision": precision, "threshold": threshold}
        if index is not None:
            row["validation"] = {"coverage": table["coverage"][index], "accuracy": table["accuracy"][index]}
            if split != table["split"]:
                row[split] = answered_at(logits, labels, table["temperature"], threshold)
        rows.append(row)
    return {"fitted_on": table["split"], "evaluated_on": split, "temperature": table["temperature"],
            "targets": rows}


def describe(report: dict[str, Any]) -> str:
    """The report as one log line: what each target precision answers on validation and on the check."""
    fitted, split = report["fitted_on"], report["evaluated_on"]
    parts = []
    for row in report["targets"]:
        if row["threshold"] is None:
            parts.append(f"{row['precision']:.2f} not reached on {fitted}")
            continue
        part = (f"{row['precision']:.2f} answers {row['validation']['coverage']:.1%} of {fitted} at accuracy "
                f"{row['validation']['accuracy']:.3f}")
        check = row.get(split)
        if check is not None:
            accuracy = "—" if check["accuracy"] is None else f"{check['accuracy']:.3f}"
            part += f", {check['coverage']:.1%} of {split} at {accuracy}"
        parts.append(part)
    return f"abstaining (predict --min-precision P, threshold chosen on {fitted}): " + "; ".join(parts)


def table_problem(table: Any) -> Optional[str]:
    """What is wrong with a saved table (None: nothing), for :mod:`textcnn.inference.schema`."""
    if not isinstance(table, dict):
        return f"its risk_coverage is a {type(table).__name__}, not a mapping"
    columns = [table.get(name) for name in ("threshold", "coverage", "accuracy")]
    if not all(isinstance(column, list) for column in columns) or len({len(c) for c in columns}) != 1 \
            or not 1 <= len(columns[0]) <= MAX_ROWS:
        return f"its risk_coverage needs threshold, coverage and accuracy lists of one length (1 to {MAX_ROWS})"
    if not all(_fraction(value) for column in columns for value in column):
        return "its risk_coverage holds a threshold, coverage or accuracy outside [0, 1]"
    if columns[0] != sorted(columns[0]):
        return "its risk_coverage thresholds are not in rising order"
    temperature = table.get("temperature")
    if not is_number(temperature) or not (temperature > 0 and math.isfinite(temperature)):
        return "its risk_coverage temperature is not a positive number"
    if not isinstance(table.get("split"), str) or not _count(table.get("num_examples")):
        return "its risk_coverage has no split name or example count"
    return None


def is_number(value: Any) -> bool:
    """An int or a float read from a saved model (a bool is neither, though Python counts it an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fraction(value: Any) -> bool:
    return is_number(value) and 0 <= value <= 1


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
