"""``textcnn evaluate --report DIR``: the files a person reads after an evaluation.

    confusion.png       the confusion matrix twice: counts, and each true class's row as shares
    misclassified.csv   every text the model got wrong (row, text, gold, predicted, confidence), the
                        most confident mistakes first: where wrong labels and blind spots show
    metrics.json        the evaluation report: accuracy, macro-F1, per-class precision / recall / F1

The texts are scored in their file's order through a predictor (PyTorch or ONNX Runtime), so each
row of ``misclassified.csv`` names its row in the evaluated split. A multi-label model gets no
confusion matrix (its classes are not exclusive); its mistakes are the texts whose predicted set
differs from the true one.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch
from torchmetrics.functional.classification import multiclass_confusion_matrix

from textcnn.atomic import check_writable, write_atomic, write_text_atomic
from textcnn.console import strict_json
from textcnn.errors import UserInputError

CONFUSION_FILE, MISCLASSIFIED_FILE, METRICS_FILE = "confusion.png", "misclassified.csv", "metrics.json"
FILES = (CONFUSION_FILE, MISCLASSIFIED_FILE, METRICS_FILE)


def check_report_directory(directory: Path) -> None:
    """Before anything is scored: ``directory`` can be written and holds no report already."""
    if directory.exists() and not directory.is_dir():
        raise UserInputError(f"--report {directory} is a file; give a directory for the report")
    taken = [name for name in FILES if (directory / name).exists()]
    if taken:
        raise UserInputError(f"--report {directory} already holds {', '.join(taken)}; choose a new directory, or "
                             "move those files away first")
    check_writable(directory if directory.exists() else directory.parent, "--report")


def write_report(directory: Path, report: dict[str, Any], texts: list[str], targets: torch.Tensor,
                 probabilities: torch.Tensor, label_names: list[str], thresholds: Any = None) -> list[str]:
    """Write the report's files for ``texts`` with labels ``targets`` (row order) and the model's
    ``probabilities`` (N, C); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if thresholds is None:
        predictions = probabilities.argmax(dim=-1)
        counts = multiclass_confusion_matrix(predictions, targets, len(label_names))
        write_atomic(directory / CONFUSION_FILE, lambda file: file.write(confusion_png(counts, label_names)))
        written.append(directory / CONFUSION_FILE)
        rows = single_label_mistakes(texts, targets, predictions, probabilities, label_names)
    else:
        rows = multi_label_mistakes(texts, targets, probabilities >= torch.tensor(thresholds), label_names)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["row", "text", "gold", "predicted"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(directory / MISCLASSIFIED_FILE, buffer.getvalue())
    write_text_atomic(directory / METRICS_FILE, strict_json(report, indent=2, ensure_ascii=False) + "\n")
    return [str(path) for path in (*written, directory / MISCLASSIFIED_FILE, directory / METRICS_FILE)]


def single_label_mistakes(texts: list[str], targets: torch.Tensor, predictions: torch.Tensor,
                          probabilities: torch.Tensor, label_names: list[str]) -> list[dict[str, Any]]:
    """One row per wrong prediction, the most confident first (ties in row order)."""
    wrong = (predictions != targets).nonzero().flatten().tolist()
    confidence = probabilities.amax(dim=-1)
    wrong.sort(key=lambda row: (-float(confidence[row]), row))
    return [{"row": row, "text": texts[row], "gold": label_names[int(targets[row])],
             "predicted": label_names[int(predictions[row])], "confidence": round(float(confidence[row]), 6),
             "gold_probability": round(float(probabilities[row, targets[row]]), 6)} for row in wrong]


def multi_label_mistakes(texts: list[str], targets: torch.Tensor, chosen: torch.Tensor,
                         label_names: list[str]) -> list[dict[str, Any]]:
    """One row per text whose predicted set is not its true set, the most wrong classes first."""
    errors = (chosen != targets.bool()).sum(dim=-1)
    wrong = sorted(errors.nonzero().flatten().tolist(), key=lambda row: (-int(errors[row]), row))

    def names(row: torch.Tensor) -> str:
        return "|".join(name for name, yes in zip(label_names, row.tolist()) if yes)

    return [{"row": row, "text": texts[row], "gold": names(targets[row].bool()), "predicted": names(chosen[row]),
             "wrong_classes": int(errors[row])} for row in wrong]


def confusion_png(counts: torch.Tensor, label_names: list[str]) -> bytes:
    """The confusion matrix as counts and as row shares (true class → predicted), one PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # files only: no display needed
    from matplotlib.figure import Figure

    size = len(label_names)
    shares = counts.float() / counts.sum(dim=1, keepdim=True).clamp_min(1)
    side = min(4 + 0.45 * size, 14)
    figure = Figure(figsize=(2 * side + 1, side), dpi=100, layout="constrained")
    for axes, values, title, text in zip(figure.subplots(1, 2), (counts.float(), shares),
                                         ("counts", "share of each true class"), ("{:.0f}", "{:.2f}")):
        image = axes.imshow(values.numpy(), cmap="Blues", vmin=0)
        axes.set(title=title, xlabel="predicted", ylabel="true", xticks=range(size), yticks=range(size))
        axes.set_xticklabels(label_names, rotation=45, ha="right", fontsize="small")
        axes.set_yticklabels(label_names, fontsize="small")
        if size <= 20:  # numbers in the cells while they stay readable
            top = float(values.max()) or 1.0
            for i in range(size):
                for j in range(size):
                    axes.text(j, i, text.format(float(values[i, j])), ha="center", va="center", fontsize="small",
                              color="white" if float(values[i, j]) > top / 2 else "black")
        figure.colorbar(image, ax=axes, shrink=0.8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
