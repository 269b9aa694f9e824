"""Multi-label classification end to end, on a multi-label set built from real TREC questions."""

import csv
import json
from pathlib import Path

import datasets
import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient
from torchmetrics.functional.classification import multilabel_f1_score, multilabel_precision_recall_curve

import textcnn
from textcnn import cli
from textcnn.inference.checkpoint import read_checkpoint
from textcnn.inference.loader import read_saved_model
from textcnn.data import TextDataModule
from textcnn.errors import UserInputError
from textcnn.training.evaluation import evaluate_checkpoint
from textcnn.inference.export import export_onnx
from textcnn.training.module import TextCNNClassifier
from textcnn.data.joined import build_joined_dataset
from textcnn.training.thresholds import MIN_POSITIVES, THRESHOLD_GRID, tune_thresholds
from textcnn.inference.serve import create_app
from tests.conftest import ROOT, TINY_MODEL_ARGS, dataset_dir

TREC_NAMES = ["ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"]
TEXTS = ["What is the capital of Peru ? Who wrote Hamlet ?", "How many miles is it to the moon ?", ""]


@pytest.fixture(scope="module")
def multilabel_dir(tmp_path_factory):
    summary = build_joined_dataset(
        str(dataset_dir("trec")), tmp_path_factory.mktemp("trec_multilabel"), label_column="coarse_label",
        sizes={"train": 3000, "validation": 400, "test": 400},
    )
    return summary["output"]


@pytest.fixture(scope="module")
def trained_multilabel(tmp_path_factory, multilabel_dir) -> dict:
    root = tmp_path_factory.mktemp("multilabel_run")
    return cli.train(["--config", str(ROOT / "configs" / "trec_multilabel.yaml"), *TINY_MODEL_ARGS,
                      f"--data.path={multilabel_dir}", "--trainer.max_epochs=8", "--model.learning_rate=0.01",
                      f"--trainer.default_root_dir={root}"])


@pytest.fixture(scope="module")
def multilabel_checkpoint(trained_multilabel):
    return trained_multilabel["checkpoint"]


# -- the dataset ----------------------------------------------------------------------------------------

def test_the_built_set_joins_questions_of_different_classes_without_leakage(multilabel_dir):
    built = datasets.load_dataset(multilabel_dir)
    trec = datasets.load_dataset(str(dataset_dir("trec")))
    assert built["train"].features["labels"] == datasets.List(datasets.ClassLabel(names=TREC_NAMES))
    assert {split: len(rows) for split, rows in built.items()} == {"train": 3000, "validation": 400, "test": 400}
    sizes = [len(labels) for labels in built["train"]["labels"]]
    assert set(sizes) == {1, 2, 3} and all(len(set(labels)) == len(labels) for labels in built["train"]["labels"])
    class_of = dict(zip(trec["test"]["text"], trec["test"]["coarse_label"]))
    for text, labels in zip(built["test"]["text"], built["test"]["labels"]):
        if len(labels) == 1:  # one question: a TREC test question, labelled with its own class
            assert class_of[text] == labels[0]
    assert all(any(q in text for q in class_of) for text in built["test"]["text"])
    only_in_test = set(trec["test"]["text"]) - set(trec["train"]["text"])  # 10 questions are in both
    for split in ("train", "validation"):
        assert not any(q in text for text in built[split]["text"] for q in only_in_test)
    validation_texts = " ".join(built["validation"]["text"])
    assert sum(text in validation_texts for text in built["train"]["text"][:200] if len(text) > 40) < 5


def test_a_list_of_class_labels_makes_the_data_module_multi_label(multilabel_dir):
    data = TextDataModule(path=multilabel_dir, label_column="labels", batch_size=32)
    assert data.multi_label and data.label_names == TREC_NAMES and data.num_classes == 6
    batch = next(iter(data.train_dataloader()))
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (32, 6)
    assert set(batch["labels"].unique().tolist()) == {0.0, 1.0}
    assert 1 <= batch["labels"].sum(1).min() and batch["labels"].sum(1).max() <= 3
    assert not TextDataModule(path=str(dataset_dir("trec")), label_column="coarse_label").multi_label


@pytest.mark.parametrize("labels, features, message", [
    ([[0.5], [1.5]], None, r"holds lists of Value\('float64'\) values, not class ids"),
    ([[0, -1], [1]], None, "negative values"),
    ([[0], [1]], datasets.List(datasets.ClassLabel(names=["spam", " "])), "class 1 of .* has an empty name"),
])
def test_bad_multi_label_columns_are_refused(tmp_path, labels, features, message):
    rows = datasets.Dataset.from_dict({"text": ["a b", "c d"], "labels": labels})
    if features is not None:
        rows = rows.cast_column("labels", features)
    rows.to_parquet(str(tmp_path / "train.parquet"))
    with pytest.raises(UserInputError, match=f"data.label_column 'labels'.*{message}|{message}"):
        TextDataModule(path=str(tmp_path), label_column="labels").splits


def test_lists_of_strings_become_class_labels_and_empty_sets_are_allowed(tmp_path):
    rows = {"text": ["a b", "c d", "e f"], "tags": [["sport", "news"], [], ["news"]]}
    datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "train.parquet"))
    datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "validation.parquet"))
    data = TextDataModule(path=str(tmp_path), label_column="tags")
    assert data.multi_label and data.label_names == ["news", "sport"]
    batch = data.collate([data.encoded("train")[i] for i in range(3)])
    assert batch["labels"].tolist() == [[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]


# -- training -------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # training_step outside a Trainer
def test_the_loss_is_binary_cross_entropy_on_multi_hot_targets(multilabel_checkpoint, multilabel_dir):
    module = TextCNNClassifier.load_from_checkpoint(multilabel_checkpoint, weights_only=True, map_location="cpu")
    assert module.hparams.multi_label
    module.eval()
    data = TextDataModule(path=multilabel_dir, label_column="labels", batch_size=16)
    data.use_tokenizer(read_saved_model(multilabel_checkpoint).tokenizer)
    batch = next(iter(data.dataloader("validation")))
    with torch.no_grad():
        loss = module.training_step(batch, 0)
        expected = F.binary_cross_entropy_with_logits(module(batch["input_ids"]), batch["labels"])
    assert float(loss) == pytest.approx(float(expected), abs=1e-6)


def test_a_trained_model_beats_trivial_baselines_on_micro_f1(trained_multilabel, multilabel_dir):
    targets = torch.zeros(400, 6, dtype=torch.int)
    for row, labels in enumerate(datasets.load_dataset(multilabel_dir)["test"]["labels"]):
        targets[row, labels] = 1
    train_frequency = torch.zeros(6)
    for labels in datasets.load_dataset(multilabel_dir)["train"]["labels"]:
        train_frequency[labels] += 1

    def micro_f1(predictions: torch.Tensor) -> float:
        return float(multilabel_f1_score(predictions.int(), targets, num_labels=6, average="micro"))

    every_label = micro_f1(torch.ones_like(targets))  # recall 1, precision ≈ 2/6: F1 ≈ 0.5
    commonest = micro_f1(torch.zeros_like(targets).index_fill_(1, train_frequency.topk(2).indices, 1))
    assert trained_multilabel["num_examples"] == 400
    assert trained_multilabel["micro_f1"] > max(every_label, commonest) + 0.15
    assert trained_multilabel["macro_f1"] > 0.4


def test_thresholds_are_tuned_on_validation_and_saved(multilabel_checkpoint, multilabel_dir):
    checkpoint = read_checkpoint(multilabel_checkpoint)
    saved = checkpoint["state_dict"]["decision_thresholds"]
    assert saved.shape == (6,) and not torch.all(saved == 0.5)
    assert all(any(torch.isclose(t, THRESHOLD_GRID)) for t in saved)
    data = TextDataModule(path=multilabel_dir, label_column="labels")
    saved_model = read_saved_model(multilabel_checkpoint)
    data.use_tokenizer(saved_model.tokenizer)
    model = saved_model.network()
    with torch.inference_mode():
        batches = list(data.dataloader("validation"))
        probabilities = torch.cat([model(batch["input_ids"]).sigmoid() for batch in batches])
    targets = torch.cat([batch["labels"] for batch in batches]).int()
    precision, recall, grid = multilabel_precision_recall_curve(probabilities, targets, 6, thresholds=THRESHOLD_GRID)
    positives = targets.sum(dim=0)
    torch.testing.assert_close(tune_thresholds(precision, recall, grid, positives), saved)
    assert positives[0] < MIN_POSITIVES and saved[0] == 0.5  # ABBR: too rare in 400 examples to tune
    validation = evaluate_checkpoint(multilabel_checkpoint, split="validation")
    assert validation["macro_f1"] >= validation["at_threshold_0.5"]["macro_f1"]  # 0.5 is on the grid


# -- the checkpoint, predictions, commands --------------------------------------------------------------

def test_the_checkpoint_round_trips(multilabel_checkpoint, trained_multilabel):
    raw = torch.load(multilabel_checkpoint, map_location="cpu", weights_only=True)
    assert raw["hyper_parameters"]["multi_label"] is True and raw["textcnn_format"] == 2
    module = TextCNNClassifier.load_from_checkpoint(multilabel_checkpoint, weights_only=True, map_location="cpu").eval()
    torch.testing.assert_close(module.decision_thresholds, raw["state_dict"]["decision_thresholds"])
    predictor = textcnn.load(multilabel_checkpoint)
    with torch.inference_mode():
        expected = module(predictor.batch(TEXTS)).sigmoid()
    torch.testing.assert_close(predictor.predict_proba(TEXTS), expected, rtol=0, atol=1e-6)
    again = evaluate_checkpoint(multilabel_checkpoint, split="test")
    assert again["micro_f1"] == trained_multilabel["micro_f1"] and again["per_class"] == trained_multilabel["per_class"]


def test_predictions_are_sets_of_labels_at_the_thresholds(multilabel_checkpoint):
    predictor = textcnn.load(multilabel_checkpoint)
    assert predictor.multi_label and predictor.metadata()["thresholds"].keys() == set(TREC_NAMES)
    probabilities = predictor.predict_proba(TEXTS)
    results = predictor.predict(TEXTS)
    for result, row in zip(results, probabilities):
        assert "label" not in result and list(result["probabilities"]) == TREC_NAMES
        assert result["labels"] == [name for name, p, t in zip(TREC_NAMES, row, predictor.thresholds) if p >= t]
    top = predictor.predict(TEXTS, top_k=2)
    assert [r["labels"] for r in top] == [r["labels"] for r in results] and all(len(r["probabilities"]) == 2 for r in top)
    with pytest.raises(UserInputError, match="multi-label model decides by per-class thresholds"):
        textcnn.load(multilabel_checkpoint, temperature=2.0)


def test_predict_command_prints_label_sets(multilabel_checkpoint, capsys):
    cli.predict(["--checkpoint", multilabel_checkpoint, *TEXTS[:2]])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = textcnn.load(multilabel_checkpoint).predict(TEXTS[:2])
    assert [line["labels"] for line in lines] == [r["labels"] for r in expected] and lines[0]["text"] == TEXTS[0]
    cli.predict(["--checkpoint", multilabel_checkpoint, "--format", "csv", *TEXTS[:2]])
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert rows[0] == ["text", "labels", *TREC_NAMES]
    assert [row[1].split("|") for row in rows[1:]] == [r["labels"] for r in expected]


def test_evaluating_on_single_label_data_is_refused(multilabel_checkpoint):
    with pytest.raises(UserInputError, match="dataset is single-label but the model is multi-label"):
        evaluate_checkpoint(multilabel_checkpoint, data_overrides={"path": str(dataset_dir("trec")),
                                                                   "label_column": "coarse_label"})


def test_onnx_export_and_the_service_keep_label_sets(multilabel_checkpoint, tmp_path):
    export = export_onnx(multilabel_checkpoint, tmp_path / "onnx")
    onnx_predictor, torch_predictor = textcnn.load(export["output"]), textcnn.load(multilabel_checkpoint)
    torch.testing.assert_close(onnx_predictor.thresholds, torch_predictor.thresholds)
    assert [r["labels"] for r in onnx_predictor.predict(TEXTS)] == [r["labels"] for r in torch_predictor.predict(TEXTS)]
    with pytest.raises(UserInputError, match="temperature is 1.5, but a multi-label model decides by per-class thresholds"):
        export_onnx(multilabel_checkpoint, tmp_path / "warm", temperature=1.5)
    response = TestClient(create_app(onnx_predictor)).post("/predict", json={"texts": TEXTS, "top_k": 1})
    assert response.status_code == 200
    assert [p["labels"] for p in response.json()["predictions"]] == [r["labels"] for r in torch_predictor.predict(TEXTS)]


def test_single_label_checkpoints_stay_as_they_were(checkpoint):
    raw = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert raw["textcnn_format"] == 1 and raw["hyper_parameters"]["multi_label"] is False
    assert not any(key.startswith("decision_thresholds") for key in raw["state_dict"])
    predictor = textcnn.load(checkpoint)
    assert not predictor.multi_label and "thresholds" not in predictor.metadata()
    assert set(predictor.predict(["a gorgeous film"])[0]) == {"label", "probabilities"}


def test_evaluate_report_lists_the_texts_whose_set_is_wrong(multilabel_checkpoint, tmp_path):
    report = cli.evaluate(["--checkpoint", str(multilabel_checkpoint), "--report", str(tmp_path)])
    assert [Path(path).name for path in report["report_files"]] == ["misclassified.csv", "metrics.json"]
    with open(tmp_path / "misclassified.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == round((1 - report["exact_match"]) * report["num_examples"])
    wrong = [int(row["wrong_classes"]) for row in rows]
    assert wrong == sorted(wrong, reverse=True) and min(wrong) >= 1
    assert all(row["gold"] != row["predicted"] for row in rows)
    assert all(set(filter(None, row["gold"].split("|"))) <= set(TREC_NAMES) for row in rows)
