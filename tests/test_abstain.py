"""Abstaining: the validation risk–coverage table saved at the end of training and read back by every
kind of saved model, ``min_confidence`` / ``min_precision`` in Python, on the command line and in the
service, and the one-line errors for models that cannot abstain by precision."""

import csv
import json
import shutil

import datasets
import httpx
import pytest
import torch

import textcnn
from textcnn import cli
from textcnn.errors import UserInputError
from textcnn.inference import selective
from textcnn.inference.checkpoint import read_saved_checkpoint
from textcnn.inference.schema import DamagedModelError
from textcnn.inference.serve import create_app
from textcnn.training.evaluation import evaluate_checkpoint
from tests.conftest import ROOT
from tests.test_serve import running

RELEASED = ROOT / "tests" / "fixtures" / "textcnn-0.1.0"


# -- the table -----------------------------------------------------------------------------------------

def synthetic(count: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three-class logits whose confident rows are more often right, as a trained model's are."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (count,), generator=generator)
    logits = torch.randn(count, 3, generator=generator)
    logits[torch.arange(count), labels] += 2.5 * torch.rand(count, generator=generator)
    return logits, labels


def test_table_rows_are_exact_coverage_and_accuracy_at_their_thresholds():
    logits, labels = synthetic()
    table = selective.risk_coverage(logits, labels, temperature=0.7)
    assert table["num_examples"] == 1000 and table["temperature"] == 0.7 and len(table["threshold"]) == 100
    assert table["threshold"] == sorted(table["threshold"]) and table["coverage"][0] == 1.0
    assert table["coverage"] == sorted(table["coverage"], reverse=True)
    for threshold, coverage, accuracy in zip(table["threshold"][::17], table["coverage"][::17],
                                             table["accuracy"][::17]):
        confidence = (logits / 0.7).softmax(-1).amax(-1)
        answered = confidence >= threshold - 5e-7  # the table rounds thresholds to 6 places
        assert coverage == pytest.approx(float(answered.float().mean()), abs=2e-3)
        right = logits.argmax(-1)[answered] == labels[answered]
        assert accuracy == pytest.approx(float(right.float().mean()), abs=5e-3)
    assert table["accuracy"][-1] > table["accuracy"][0] + 0.2  # the confident are more often right
    assert selective.table_problem(table) is None


def test_precision_threshold_is_the_lowest_that_reaches_it():
    table = {"threshold": [0.4, 0.6, 0.7, 0.9], "coverage": [1.0, 0.6, 0.4, 0.1],
             "accuracy": [0.80, 0.91, 0.89, 0.97], "split": "validation", "temperature": 1.0, "num_examples": 10}
    assert selective.threshold_for_precision(table, 0.75) == 0.4
    assert selective.threshold_for_precision(table, 0.90) == 0.6
    assert selective.threshold_for_precision(table, 0.95) == 0.9
    assert selective.threshold_for_precision(table, 0.99) is None
    assert "never reaches precision 0.99: its best is 0.9700, answering 10.0%" in selective.unreachable(table, 0.99)


@pytest.mark.parametrize("change, problem", [
    ({"threshold": [0.9, 0.5]}, "not in rising order"),
    ({"accuracy": [0.5]}, "of one length"),
    ({"coverage": [1.5, 0.2]}, "outside [0, 1]"),
    ({"temperature": 0}, "temperature is not a positive number"),
    ({"split": None}, "no split name"),
])
def test_a_damaged_table_is_named(change, problem):
    table = {"threshold": [0.5, 0.9], "coverage": [1.0, 0.2], "accuracy": [0.8, 0.95], "split": "validation",
             "temperature": 1.0, "num_examples": 10, **change}
    assert problem in selective.table_problem(table)


# -- saved at the end of training, read back everywhere -------------------------------------------------

def validation_texts_and_labels(data_dir) -> tuple[list[str], list[int]]:
    split = datasets.load_dataset(str(data_dir), split="validation")
    return list(split["text"]), list(split["label"])


def test_training_saves_the_validation_table_and_reports_the_targets(trained, checkpoint):
    table = read_saved_checkpoint(checkpoint).risk_coverage
    assert table is not None and table["split"] == "validation" and table["num_examples"] == 300
    assert table["temperature"] == trained["calibration"]["temperature"]
    rows = trained["abstaining"]["targets"]
    assert [row["precision"] for row in rows] == [0.90, 0.95, 0.99]
    for row in rows:
        if row["threshold"] is not None:
            assert row["threshold"] == selective.threshold_for_precision(table, row["precision"])
            assert row["validation"]["accuracy"] >= row["precision"] - 1e-6
            assert 0 <= row["test"]["coverage"] <= 1


def test_min_precision_answers_validation_texts_as_the_table_says(checkpoint, sst2_slice):
    """Predicting the validation split at a reachable precision answers exactly the table's share of
    it, at exactly the table's accuracy: the threshold is read at the table's temperature, whatever
    temperature the predictor shows."""
    texts, labels = validation_texts_and_labels(sst2_slice)
    for temperature in (None, 2.5):
        predictor = textcnn.load(checkpoint, temperature=temperature)
        table = predictor.risk_coverage
        target = table["accuracy"][len(table["accuracy"]) // 2]  # a precision the table reaches
        index = table["threshold"].index(selective.threshold_for_precision(table, target))
        results = predictor.predict(texts, min_precision=target)
        answered = [(r["label"], label) for r, label in zip(results, labels) if not r["abstained"]]
        assert all(r["label"] is None for r in results if r["abstained"])
        assert len(answered) / len(texts) == pytest.approx(table["coverage"][index], abs=1 / len(texts))
        accuracy = sum(predictor.label_names[label] == name for name, label in answered) / len(answered)
        assert accuracy == pytest.approx(table["accuracy"][index], abs=1.5 / len(texts))


def test_min_confidence_abstains_below_the_shown_probability(checkpoint):
    texts = ["a gorgeous , witty , seductive movie .", "it 's a bad , bad film", "!", "it is a film"]
    predictor = textcnn.load(checkpoint)
    plain = predictor.predict(texts)
    assert all("abstained" not in result for result in plain)
    for result, before in zip(predictor.predict(texts, min_confidence=0.7), plain):
        confident = max(before["probabilities"].values()) >= 0.7
        assert result["abstained"] is not confident
        assert result["label"] == (before["label"] if confident else None)
        assert result["probabilities"] == before["probabilities"]
    assert all(not r["abstained"] for r in predictor.predict(texts, min_confidence=0.0))


def test_model_directory_and_onnx_export_carry_the_table(checkpoint, tmp_path):
    pytest.importorskip("onnxruntime")
    from textcnn.inference.export import export_onnx

    texts = ["a gorgeous , witty , seductive movie .", "it 's a bad , bad film", "!", "it is a film", "dull"] * 4
    predictor = textcnn.load(checkpoint)
    predictor.save(tmp_path / "directory")
    export_onnx(checkpoint, tmp_path / "onnx")
    expected = [r["abstained"] for r in predictor.predict(texts, min_precision=0.7)]
    for path in (tmp_path / "directory", tmp_path / "onnx"):
        loaded = textcnn.load(path)
        assert loaded.risk_coverage == predictor.risk_coverage
        assert [r["abstained"] for r in loaded.predict(texts, min_precision=0.7)] == expected
        assert loaded.metadata()["abstaining"]["split"] == "validation"


# -- errors ----------------------------------------------------------------------------------------------

def test_a_model_saved_before_tables_gets_one_line_saying_how_to_add_one(capsys):
    for model, fix in ((RELEASED / "sst2_tiny.ckpt", "--save-thresholds"), (RELEASED / "sst2_tiny-onnx", "export it again")):
        with pytest.raises(SystemExit) as exit_info:
            cli.predict_main(["--checkpoint", str(model), "--min-precision", "0.9", "good"])
        stderr = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and len(stderr.splitlines()) == 1
        assert "without a risk–coverage table" in stderr or "has no risk–coverage table" in stderr
        assert fix in stderr and "--min-precision" in stderr


@pytest.mark.parametrize("argv, message", [
    (["--min-precision", "0.9", "--min-confidence", "0.5"], "give --min-confidence or --min-precision, not both"),
    (["--min-confidence", "1.5"], "--min-confidence must be a probability between 0 and 1, got 1.5"),
    (["--min-precision", "1.0001"], "--min-precision must be a probability"),
])
def test_abstaining_settings_that_cannot_apply_are_one_line(checkpoint, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.predict_main(["--checkpoint", str(checkpoint), *argv, "good"])
    stderr = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(stderr.splitlines()) == 1 and message in stderr


def test_multi_label_and_ensembles_refuse_what_they_cannot_do(checkpoint):
    multi_label = textcnn.load(RELEASED / "trec_multilabel_tiny.ckpt")
    with pytest.raises(UserInputError, match="per-class thresholds"):
        multi_label.predict(["what is it ?"], min_confidence=0.5)
    ensemble = textcnn.load([checkpoint, checkpoint])
    with pytest.raises(UserInputError, match="an ensemble has no risk–coverage table"):
        ensemble.predict(["good"], min_precision=0.9)
    assert "abstained" in ensemble.predict(["good"], min_confidence=0.6)[0]


def test_a_damaged_table_in_a_checkpoint_is_refused(checkpoint, tmp_path):
    saved = torch.load(checkpoint, weights_only=True)
    saved["risk_coverage"]["threshold"] = list(reversed(saved["risk_coverage"]["threshold"]))
    torch.save(saved, tmp_path / "damaged.ckpt")
    with pytest.raises(DamagedModelError, match="not in rising order"):
        textcnn.load(tmp_path / "damaged.ckpt")


# -- the commands ----------------------------------------------------------------------------------------

def test_predict_command_writes_null_labels_and_an_abstained_column(checkpoint, capsys):
    texts = ["a gorgeous , witty , seductive movie .", "it is a film"]
    cli.predict(["--checkpoint", str(checkpoint), "--min-confidence", "0.99", *texts])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["abstained"] for row in rows] == [True, True] and [row["label"] for row in rows] == [None, None]
    cli.predict(["--checkpoint", str(checkpoint), "--min-confidence", "0", "--format", "csv", *texts])
    table = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert table[0] == ["text", "label", "abstained", "negative", "positive"]
    assert [row[2] for row in table[1:]] == ["False", "False"] and all(row[1] for row in table[1:])
    cli.predict(["--checkpoint", str(checkpoint), "--min-confidence", "0.99", "--format", "csv", *texts])
    assert [row[1:3] for row in csv.reader(capsys.readouterr().out.splitlines()[1:])] == [["", "True"]] * 2


def test_evaluate_save_thresholds_gives_an_old_model_its_table(sst2_slice, tmp_path, capsys):
    model = tmp_path / "old.ckpt"
    shutil.copy(RELEASED / "sst2_tiny.ckpt", model)
    report = cli.evaluate(["--checkpoint", str(model), "--save-thresholds", f"--data.path={sst2_slice}"])
    assert report["abstaining"]["saved_to"] == str(model)
    table = read_saved_checkpoint(model).risk_coverage
    assert table["num_examples"] == 300
    lowest = table["accuracy"][0]  # the accuracy of answering everything: always reached
    results = textcnn.load(model).predict(["good", "bad"], min_precision=lowest)
    assert all("abstained" in result for result in results)
    again = evaluate_checkpoint(model, data_overrides={"path": str(sst2_slice)})  # read back, not re-saved
    assert "saved_to" not in again["abstaining"]


def test_the_service_abstains_per_request(checkpoint):
    predictor = textcnn.load(checkpoint)
    with running(create_app(predictor)) as base:
        answer = httpx.post(f"{base}/predict", json={"texts": ["it is a film", "good"], "min_confidence": 0.999})
        assert answer.status_code == 200
        assert all(p["abstained"] and p["label"] is None for p in answer.json()["predictions"])
        answer = httpx.post(f"{base}/predict", json={"texts": ["good"], "min_precision": 1.5})
        assert answer.status_code == 422
        answer = httpx.post(f"{base}/predict", json={"texts": ["good"], "min_precision": 0.5,
                                                     "min_confidence": 0.5})
        assert answer.status_code == 422 and "not both" in answer.json()["detail"]
        assert "abstaining" in httpx.get(f"{base}/metadata").json()
