"""How a run went: metrics.csv (one row per epoch), curves.png (a real plot), the summary line, and the
history that ``textcnn.train`` and the estimator return."""

import csv
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from textcnn.training.history import COLUMNS, best_epoch, draw_curves, summary_line, write_metrics

ROWS = [
    {"epoch": 0, "train_loss": 0.69, "val_loss": 0.66, "val_acc": 0.61, "learning_rate": 0.003, "seconds": 4.0},
    {"epoch": 1, "train_loss": 0.52, "val_loss": 0.55, "val_acc": 0.74, "learning_rate": 0.003, "seconds": 8.1},
    {"epoch": 2, "train_loss": 0.31, "val_loss": 0.58, "val_acc": 0.74, "learning_rate": 0.002, "seconds": 12.0},
]


def run_directory(checkpoint: Path) -> Path:
    return Path(checkpoint).parents[1]  # …/version_N/checkpoints/best-….ckpt


def test_every_run_writes_one_row_per_epoch(checkpoint):
    with open(run_directory(checkpoint) / "metrics.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == list(COLUMNS)
    assert [int(row["epoch"]) for row in rows] == list(range(len(rows))) and 1 <= len(rows) <= 4
    for row in rows:
        assert 0 <= float(row["val_acc"]) <= 1 and float(row["train_loss"]) > 0 and float(row["val_loss"]) > 0
        assert float(row["learning_rate"]) > 0 and row["val_micro_f1"] == ""  # single-label: no micro-F1
    seconds = [float(row["seconds"]) for row in rows]
    assert seconds == sorted(seconds) and seconds[0] > 0
    best = int(Path(checkpoint).name.split("-")[1])  # best-EPOCH-SCORE.ckpt
    assert float(rows[best]["val_acc"]) == max(float(row["val_acc"]) for row in rows)


def test_curves_png_is_a_real_plot(checkpoint):
    image = pytest.importorskip("matplotlib.image").imread(run_directory(checkpoint) / "curves.png")
    height, width, channels = image.shape
    assert (height, width) == (360, 900) and channels in (3, 4)
    assert image[..., :3].std() > 0.05  # lines, text and axes, not a blank canvas
    assert (abs(image[..., 0] - image[..., 2]) > 0.3).mean() > 0.001  # coloured curves drawn


def test_best_epoch_is_the_first_of_the_best():
    assert best_epoch(ROWS, "val_acc", "max") == 1
    assert best_epoch(ROWS, "val_loss", "min") == 1
    assert best_epoch([{"epoch": 0, "val_acc": None}], "val_acc", "max") is None


def fake_trainer(max_epochs: int, stopped_epoch: int):
    return SimpleNamespace(max_epochs=max_epochs,
                           early_stopping_callback=SimpleNamespace(stopped_epoch=stopped_epoch, monitor="val_acc",
                                                                   patience=4),
                           checkpoint_callback=SimpleNamespace(monitor="val_acc", mode="max"))


def test_summary_line_says_why_it_stopped_and_the_best_epoch(tmp_path):
    report = {"split": "test", "accuracy": 0.8432}
    kept = best_epoch(ROWS, "val_acc", "max")
    line = summary_line(fake_trainer(20, 2), ROWS, kept, report, 47.2, "runs/x/best-1-0.7400.ckpt", tmp_path / "metrics.csv")
    assert line == ("trained 3 of 20 epochs (early stopping: no improvement in val_acc for 4 epochs); best epoch 1: "
                    "val_acc 74.0%, test accuracy 84.3%; 47 s; best checkpoint: runs/x/best-1-0.7400.ckpt; "
                    f"per-epoch metrics.csv and curves.png in {tmp_path}")
    assert "(trainer.max_epochs reached)" in summary_line(fake_trainer(3, 0), ROWS, kept, report, 1, "b.ckpt")
    multi_label = summary_line(fake_trainer(3, 0), ROWS, kept, {"split": "validation", "micro_f1": 0.5}, 1,
                               "b.ckpt")
    assert "validation micro-F1 50.0%" in multi_label


def test_metrics_and_curves_are_written_from_rows(tmp_path):
    write_metrics(ROWS, tmp_path / "metrics.csv")
    lines = (tmp_path / "metrics.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(COLUMNS) and lines[1] == "0,0.69,,0.66,0.61,,,0.003,4.0"
    draw_curves(ROWS, tmp_path / "curves.png", "val_acc", 1)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_train_returns_the_history_and_logs_the_summary(sst2_slice, tmp_path, caplog):
    import datasets

    import textcnn
    from tests.conftest import TINY_MODEL_ARGS

    splits = datasets.load_dataset(str(sst2_slice))
    overrides = {arg[2:].split("=", 1)[0]: arg.split("=", 1)[1] for arg in TINY_MODEL_ARGS}
    overrides.update({"trainer.max_epochs": 3, "trainer.default_root_dir": str(tmp_path),
                      "trainer.enable_progress_bar": False})
    with caplog.at_level(logging.INFO, logger="textcnn"):
        result = textcnn.train(splits["train"].select(range(600)), splits["validation"], **overrides)
    assert [row["epoch"] for row in result.history] == [0, 1, 2]
    assert result.best_epoch == best_epoch(result.history, "val_acc", "max")
    assert f"best-{result.best_epoch}-" in Path(result.checkpoint).name
    summary = [record.getMessage() for record in caplog.records if " epochs (" in record.getMessage()]
    assert len(summary) == 1 and "trained 3 of 3 epochs (trainer.max_epochs reached)" in summary[0]
    assert summary[0].endswith(f"in {Path(result.checkpoint).parents[1]}")
