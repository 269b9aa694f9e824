"""How a run went, epoch by epoch: ``metrics.csv`` and ``curves.png`` in the run directory, the
history :class:`~textcnn.training.run.TrainingResult` returns, and the run's one summary line.

:class:`History` records one row per epoch as it ends (train loss and accuracy, validation loss and
metrics, the learning rate, seconds since fitting began) and rewrites ``metrics.csv`` each time, so
a run that crashes or is stopped keeps every epoch it finished. ``curves.png`` (loss, and the
monitored metric with the best epoch marked) is drawn when fitting ends, with matplotlib's
file-only backend. Only the process of rank 0 writes.
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path
from typing import Any, Optional

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.loggers import CSVLogger

from textcnn.atomic import write_text_atomic

METRICS_FILE, CURVES_FILE = "metrics.csv", "curves.png"
LOGGER_METRICS_FILE = "epochs.csv"  # ours, beside a CSVLogger the user configured (which writes metrics.csv)
COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1", "val_micro_f1",
           "learning_rate", "seconds")


class RunLogger(CSVLogger):
    """The run directory's logger (``lightning_logs/version_N``, ``hparams.yaml``) without Lightning's
    step-by-step ``metrics.csv``: :class:`History` writes that file, one row per epoch."""

    def log_metrics(self, metrics: dict[str, float], step: Optional[int] = None) -> None:
        pass


class History(Callback):
    """Per-epoch metrics of the run, kept in :attr:`rows` and written beside the checkpoints' run
    directory (``trainer.log_dir``)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.path: Optional[Path] = None
        self._started, self._losses = 0.0, []

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._started = time.monotonic()
        directory = Path(trainer.log_dir or trainer.default_root_dir)
        theirs = any(isinstance(logger, CSVLogger) and not isinstance(logger, RunLogger) for logger in trainer.loggers)
        self.path = directory / (LOGGER_METRICS_FILE if theirs else METRICS_FILE)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._losses = []

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._losses.append(float(loss))

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        row: dict[str, Any] = {"epoch": trainer.current_epoch}
        for name in COLUMNS[1:-2]:
            value = metrics.get(f"{name}_epoch", metrics.get(name))
            row[name] = None if value is None else round(float(value), 6)
        # the mean over the epoch's batches (the logged train_loss is the last batch's)
        row["train_loss"] = round(sum(self._losses) / len(self._losses), 6) if self._losses else None
        optimizers = trainer.optimizers
        row["learning_rate"] = float(optimizers[0].param_groups[0]["lr"]) if optimizers else None
        row["seconds"] = round(time.monotonic() - self._started, 1)
        self.rows.append(row)
        if trainer.is_global_zero:
            write_metrics(self.rows, self.path)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero and self.rows:
            monitor = getattr(trainer.checkpoint_callback, "monitor", None) or "val_loss"
            mode = getattr(trainer.checkpoint_callback, "mode", "min")
            draw_curves(self.rows, self.path.parent / CURVES_FILE, monitor, best_epoch(self.rows, monitor, mode))


def write_metrics(rows: list[dict[str, Any]], path: Path) -> None:
    """``rows`` as CSV with :data:`COLUMNS` (empty cells for what a run did not log), atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({name: "" if row.get(name) is None else row[name] for name in COLUMNS} for row in rows)
    write_text_atomic(path, buffer.getvalue())


def best_epoch(rows: list[dict[str, Any]], monitor: str, mode: str) -> Optional[int]:
    """The epoch whose ``monitor`` was best (``mode`` ``max`` or ``min``; the first of equals); None if
    no epoch logged it."""
    scored = [(row[monitor], row["epoch"]) for row in rows
              if isinstance(row.get(monitor), float) and math.isfinite(row[monitor])]
    if not scored:
        return None
    best = max(value for value, _ in scored) if mode == "max" else min(value for value, _ in scored)
    return next(epoch for value, epoch in scored if value == best)


def draw_curves(rows: list[dict[str, Any]], path: Path, monitor: str, best: Optional[int]) -> None:
    """Loss (train and validation) and ``monitor`` per epoch, the best epoch marked, as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # files only: no display needed
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.6), dpi=100, layout="constrained")
    loss_axes, metric_axes = figure.subplots(1, 2)
    epochs = [row["epoch"] for row in rows]
    for name, style in (("train_loss", "-o"), ("val_loss", "-s")):
        values = [row.get(name) for row in rows]
        if any(value is not None for value in values):
            loss_axes.plot(epochs, [math.nan if v is None else v for v in values], style, label=name, markersize=3)
    loss_axes.set(title="loss", xlabel="epoch")
    metric = monitor if monitor != "val_loss" else "val_acc"
    values = [row.get(metric) for row in rows]
    metric_axes.plot(epochs, [math.nan if v is None else v for v in values], "-o", color="tab:green", markersize=3,
                     label=metric)
    metric_axes.set(title=metric, xlabel="epoch")
    from matplotlib.ticker import MaxNLocator

    for axes in (loss_axes, metric_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if best is not None:
            axes.axvline(best, color="grey", linestyle="--", linewidth=1, label=f"best epoch ({best})")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    from textcnn.atomic import write_atomic

    write_atomic(path, lambda file: file.write(buffer.getvalue()))


def find_history(trainer: Trainer) -> Optional[History]:
    return next((callback for callback in trainer.callbacks if isinstance(callback, History)), None)


def why_it_stopped(trainer: Trainer, epochs: int) -> str:
    """Why fitting ended after ``epochs`` epochs: early stopping, the epoch budget, or something else."""
    stopping = trainer.early_stopping_callback
    if stopping is not None and stopping.stopped_epoch > 0:
        return f"early stopping: no improvement in {stopping.monitor} for {stopping.patience} epochs"
    if trainer.max_epochs is not None and epochs >= trainer.max_epochs:
        return "trainer.max_epochs reached"
    return "stopped before trainer.max_epochs (trainer.max_time, max_steps or an interruption)"


def summary_line(trainer: Trainer, rows: list[dict[str, Any]], best: Optional[int], report: dict[str, Any],
                 seconds: float, best_path: str, history_file: Optional[Path] = None) -> str:
    """The run in one line: epochs and why it stopped, the best epoch's validation score, the final
    score on the evaluated split, the time, and the best checkpoint. ``best``: the epoch kept (see
    :func:`best_epoch`), None when no epoch logged the monitored metric."""
    epochs = len(rows)
    of = f" of {trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
    line = f"trained {epochs}{of} epochs ({why_it_stopped(trainer, epochs)})"
    monitor = getattr(trainer.checkpoint_callback, "monitor", None)
    name, score = ("accuracy", report.get("accuracy")) if "accuracy" in report else ("micro-F1", report.get("micro_f1"))
    if best is not None:
        validation = next(row for row in rows if row["epoch"] == best)[monitor]
        shown = f"{validation:.1%}" if monitor != "val_loss" else f"{validation:.4f}"
        line += f"; best epoch {best}: {monitor} {shown}"
    if score is not None:
        line += f", {report['split']} {name} {score:.1%}"
    line = f"{line}; {seconds:.0f} s; best checkpoint: {best_path}"
    if history_file is not None:
        line += f"; per-epoch {history_file.name} and {CURVES_FILE} in {history_file.parent}"
    return line
