"""``textcnn evaluate --report DIR``: confusion.png, misclassified.csv and metrics.json, for a
checkpoint and for an ONNX export, consistent with the evaluation they come from."""

import csv
import json

import pytest

from textcnn import cli
from textcnn.errors import UserInputError
from tests.conftest import ROOT

RELEASED = ROOT / "tests" / "fixtures" / "textcnn-0.1.0"


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_report_holds_every_mistake_most_confident_first(checkpoint, tmp_path):
    report = cli.evaluate(["--checkpoint", str(checkpoint), "--report", str(tmp_path / "report")])
    assert report["report_files"] == [str(tmp_path / "report" / name)
                                      for name in ("confusion.png", "misclassified.csv", "metrics.json")]
    mistakes = read_rows(tmp_path / "report" / "misclassified.csv")
    matrix = report["confusion_matrix"]
    # the texts scored in their file's order agree with the evaluation's own batches
    assert len(mistakes) == sum(matrix[i][j] for i in range(2) for j in range(2) if i != j)
    assert list(mistakes[0]) == ["row", "text", "gold", "predicted", "confidence", "gold_probability"]
    confidences = [float(row["confidence"]) for row in mistakes]
    assert confidences == sorted(confidences, reverse=True) and all(0.5 <= c <= 1 for c in confidences)
    assert all(row["gold"] != row["predicted"] for row in mistakes)
    assert len({row["row"] for row in mistakes}) == len(mistakes)
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text(encoding="utf-8"))
    assert saved["accuracy"] == report["accuracy"] and saved["per_class"] == report["per_class"]
    image = pytest.importorskip("matplotlib.image").imread(tmp_path / "report" / "confusion.png")
    assert image.shape[1] > image.shape[0] > 300 and image[..., :3].std() > 0.05  # two panels, drawn


def test_report_refuses_to_replace_an_earlier_one(checkpoint, tmp_path):
    (tmp_path / "misclassified.csv").write_text("mine\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="already holds misclassified.csv"):
        cli.evaluate(["--checkpoint", str(checkpoint), "--report", str(tmp_path)])
    assert (tmp_path / "misclassified.csv").read_text(encoding="utf-8") == "mine\n"


def test_an_onnx_export_is_evaluated_and_reported(sst2_slice, tmp_path):
    pytest.importorskip("onnxruntime")
    export, model = RELEASED / "sst2_tiny-onnx", RELEASED / "sst2_tiny.ckpt"
    data = [f"--data.path={sst2_slice}", "--split", "test"]
    from_export = cli.evaluate(["--checkpoint", str(export), *data, "--report", str(tmp_path / "onnx")])
    from_checkpoint = cli.evaluate(["--checkpoint", str(model), *data])
    assert from_export["confusion_matrix"] == from_checkpoint["confusion_matrix"]
    assert from_export["calibration"]["temperature"] == pytest.approx(from_checkpoint["calibration"]["temperature"],
                                                                      rel=1e-3)
    assert len(read_rows(tmp_path / "onnx" / "misclassified.csv")) == round((1 - from_export["accuracy"]) * 600)
