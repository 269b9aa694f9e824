"""The model directory (safetensors + config.json + tokenizer.json + model card): the same predictions as
the checkpoint it came from, no pickle on load, every command accepts it, and a tampered file is one line."""

from __future__ import annotations

import json
from datetime import datetime
import pickle
import shutil
from pathlib import Path

import datasets
import httpx
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import textcnn
from tests.conftest import dataset_dir
from textcnn import cli
from textcnn.errors import UserInputError
from textcnn.inference.model_directory import FILES
from textcnn.inference.predictor import Predictor

# results that depend on the CPU's kernels: CI runs these a second time with ATEN_CPU_CAPABILITY=default
pytestmark = pytest.mark.numerics

FIXTURES = Path(__file__).parent / "fixtures" / "textcnn-0.1.0"
SINGLE, MULTI = FIXTURES / "sst2_tiny.ckpt", FIXTURES / "trec_multilabel_tiny.ckpt"


@pytest.fixture(scope="module")
def sst2_texts() -> list[str]:
    test = datasets.load_dataset(str(dataset_dir("sst2")), split="test")["text"]
    return test[:300] + ["", "!", " ".join(test[:40])]  # empty, no word, past max_length


@pytest.fixture(scope="module")
def trec_texts() -> list[str]:
    return datasets.load_dataset(str(dataset_dir("trec")), split="test")["text"][:200] + ["", "?"]


@pytest.fixture(scope="module")
def single_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("hf") / "sst2_tiny-hf"
    Predictor.from_checkpoint(SINGLE, temperature=1.5).save(directory, language=["en"], datasets=["SetFit/sst2"])
    return directory


@pytest.fixture(scope="module")
def multi_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("hf") / "trec_multilabel_tiny-hf"
    Predictor.from_checkpoint(MULTI).save(directory)
    return directory


def test_a_single_label_model_directory_predicts_exactly_as_its_checkpoint(single_dir, sst2_texts):
    assert sorted(p.name for p in single_dir.iterdir()) == sorted(FILES)
    checkpoint, directory = textcnn.load(SINGLE, temperature=1.5), textcnn.load(single_dir)
    assert type(directory) is Predictor and directory.temperature == 1.5  # the saved temperature
    for batch_size in (1, 256):
        assert torch.equal(directory.logits(sst2_texts, batch_size), checkpoint.logits(sst2_texts, batch_size))
    assert directory.predict(sst2_texts, top_k=1) == checkpoint.predict(sst2_texts, top_k=1)
    assert directory.tokenizer.to_str() == checkpoint.tokenizer.to_str()
    assert directory.metadata() == checkpoint.metadata()
    explained = directory.explain(sst2_texts[:3])[0].to_dict(3)
    assert explained == checkpoint.explain(sst2_texts[:3])[0].to_dict(3)


def test_a_multi_label_model_directory_keeps_its_thresholds_and_label_sets(multi_dir, trec_texts):
    checkpoint, directory = textcnn.load(MULTI), textcnn.load(multi_dir)
    assert directory.multi_label and torch.equal(directory.thresholds, checkpoint.thresholds)
    assert torch.equal(directory.logits(trec_texts), checkpoint.logits(trec_texts))
    got, want = directory.predict(trec_texts), checkpoint.predict(trec_texts)
    assert [r["labels"] for r in got] == [r["labels"] for r in want]
    assert any(r["labels"] for r in got)  # the comparison saw predicted labels, not only empty sets
    config = json.loads((multi_dir / "config.json").read_text())
    assert config["multi_label"] is True and config["thresholds"] == checkpoint.thresholds.tolist()


def test_loading_a_model_directory_unpickles_nothing(single_dir, monkeypatch, sst2_texts):
    def refuse(*args, **kwargs):
        raise AssertionError("a model directory must load without pickle")

    for module, name in ((torch, "load"), (pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")):
        monkeypatch.setattr(module, name, refuse)
    assert textcnn.load(single_dir).predict(sst2_texts[:2])[0]["label"] in ("negative", "positive")


def test_the_model_card_has_hub_metadata_and_every_section(single_dir):
    card = (single_dir / "README.md").read_text(encoding="utf-8")
    _, header, body = card.split("---\n", 2)
    meta = yaml.safe_load(header)
    assert meta["library_name"] == "textcnn" and meta["pipeline_tag"] == "text-classification"
    assert meta["language"] == ["en"] and meta["datasets"] == ["SetFit/sst2"]
    for section in ("## Model", "## Training data", "## Metrics", "## Intended use", "## Limitations", "## How to load"):
        assert section in body
    parameters = sum(p.numel() for p in textcnn.load(SINGLE).model.parameters())
    assert f"Parameters: {parameters:,}" in body
    assert "No evaluation was recorded" in body  # the fixture was renamed: its recorded score is not its own


def test_metrics_from_evaluate_go_into_the_card_and_the_config(tmp_path):
    report = {"split": "test", "num_examples": 1821, "accuracy": 0.8123, "macro_f1": 0.8011, "data_path": "/data/sst2",
              "per_class": {"negative": {}, "positive": {}}}
    (tmp_path / "evaluate.json").write_text(json.dumps(report))
    out = tmp_path / "model"
    cli.export(["--checkpoint", str(SINGLE), "--format", "hf", "--output", str(out), "--metrics",
                str(tmp_path / "evaluate.json"), "--language", "en", "--repo-id", "alice/sst2-tiny"])
    meta = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    [result] = meta["model-index"][0]["results"]
    assert result["dataset"]["split"] == "test" and result["dataset"]["name"] == "sst2"  # the absolute path cut
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"accuracy": 0.8123, "f1": 0.8011}
    assert 'textcnn.load("alice/sst2-tiny")' in (out / "README.md").read_text()
    [record] = json.loads((out / "config.json").read_text())["evaluation"]
    assert record["metrics"] == {"accuracy": 0.8123, "macro_f1": 0.8011} and record["num_examples"] == 1821
    report["per_class"] = {"ABBR": {}, "DESC": {}}
    (tmp_path / "evaluate.json").write_text(json.dumps(report))
    with pytest.raises(UserInputError, match="scores the classes"):
        cli.export(["--checkpoint", str(SINGLE), "--format", "hf", "--output", str(tmp_path / "other"),
                    "--metrics", str(tmp_path / "evaluate.json")])


def test_the_validation_score_a_checkpoint_recorded_for_itself_reaches_the_card(tmp_path):
    raw = torch.load(SINGLE, map_location="cpu", weights_only=True)
    [key] = [k for k in raw["callbacks"] if k.startswith("ModelCheckpoint")]
    raw["callbacks"][key]["best_k_models"] = {"run/checkpoints/best-1-0.5400.ckpt": torch.tensor(0.54)}
    path = tmp_path / "best-1-0.5400.ckpt"
    torch.save(raw, path)
    report = cli.export(["--checkpoint", str(path), "--format", "hf"])
    assert report["output"] == str(tmp_path / "best-1-0.5400-hf") and report["max_abs_diff_vs_pytorch"] == 0.0
    config = json.loads((tmp_path / "best-1-0.5400-hf" / "config.json").read_text())
    assert config["evaluation"] == [{"split": "validation", "source": "checkpoint", "num_examples": None,
                                     "metrics": {"accuracy": 0.54}}]
    assert "| validation |  | 54.0% |" in (tmp_path / "best-1-0.5400-hf" / "README.md").read_text()


def test_predict_and_serve_take_a_model_directory(single_dir, sst2_texts, capsys):
    from textcnn.inference.serve import create_app
    from tests.test_serve import running

    texts = sst2_texts[:5]
    cli.predict(["--checkpoint", str(SINGLE), "--temperature", "1.5", *texts])
    from_checkpoint = capsys.readouterr().out
    cli.predict(["--checkpoint", str(single_dir), *texts])
    assert capsys.readouterr().out == from_checkpoint
    with running(create_app(textcnn.load(single_dir))) as url:
        answer = httpx.post(f"{url}/predict", json={"texts": texts, "explain": True}).json()["predictions"]
        assert [p["label"] for p in answer] == [json.loads(line)["label"] for line in from_checkpoint.splitlines()]
        assert httpx.get(f"{url}/metadata").json()["backend"] == "pytorch"


def test_evaluate_takes_a_model_directory_and_scores_as_the_checkpoint(single_dir):
    data = [f"--data.path={dataset_dir('sst2')}", "--split", "validation"]
    from_checkpoint = cli.evaluate(["--checkpoint", str(SINGLE), *data])
    from_directory = cli.evaluate(["--checkpoint", str(single_dir), *data])
    assert from_directory["accuracy"] == from_checkpoint["accuracy"] > 0.5
    assert from_directory["per_class"] == from_checkpoint["per_class"]
    from_export = cli.evaluate(["--checkpoint", str(FIXTURES / "sst2_tiny-onnx"), *data])  # ONNX Runtime, row order
    assert from_export["accuracy"] == pytest.approx(from_checkpoint["accuracy"], abs=1.5 / 872)
    with pytest.raises(UserInputError, match="keeps no training data settings"):
        cli.evaluate(["--checkpoint", str(FIXTURES / "sst2_tiny-onnx")])


def test_exports_do_not_share_a_directory(single_dir, tmp_path):
    with pytest.raises(UserInputError, match="holds a model directory"):
        cli.export(["--checkpoint", str(SINGLE), "--output", str(single_dir)])
    onnx_dir = tmp_path / "onnx"
    shutil.copytree(FIXTURES / "sst2_tiny-onnx", onnx_dir)
    with pytest.raises(UserInputError, match="holds an ONNX export"):
        cli.export(["--checkpoint", str(SINGLE), "--format", "hf", "--output", str(onnx_dir)])
    with pytest.raises(UserInputError, match="add --format hf"):
        cli.export(["--checkpoint", str(SINGLE), "--language", "en"])
    with pytest.raises(UserInputError, match=r"language 'en\\nlicense: evil' is not a language code"):
        cli.export(["--checkpoint", str(SINGLE), "--format", "hf", "--output", str(tmp_path / "x"),
                    "--language", "en\nlicense: evil"])
    with pytest.raises(UserInputError, match="datasets 'my data' is not a Hub dataset id"):
        cli.export(["--checkpoint", str(SINGLE), "--format", "hf", "--output", str(tmp_path / "x"),
                    "--dataset-id", "my data"])
    assert not (tmp_path / "x").exists()


# -- damaged or crafted directories ----------------------------------------------------------------------

DAMAGED_CONFIGS = {
    "another library's model": (lambda c: c.update(model_type="bert"), "not a textcnn model's config"),
    "a newer format": (lambda c: c.update(format_version=99), "format version 99"),
    "no vocab_size": (lambda c: c.pop("vocab_size"), "no 'vocab_size'"),
    "vocabulary smaller than the tokenizer": (lambda c: c.update(vocab_size=10), "embeds only 10"),
    "vocabulary larger than the weights": (lambda c: c.update(vocab_size=400),
                                           r"embedding.weight has shape \[300, 8\], its config.json describe \[400, 8\]"),
    "three classes, two scores": (lambda c: c.update(num_classes=3, label_names=["a", "b", "c"]),
                                  r"classifier.weight has shape \[2, 8\]"),
    "label count off": (lambda c: c.update(label_names=["a", "b", "c"]), "3 label names for 2 classes"),
    "duplicate labels": (lambda c: c.update(label_names=["a", "a"]), "repeat 'a'"),
    "360 GB of channels": (lambda c: c["network"].update(conv_channels=[100000, 100000]), r"describe \[100000, 8, 2\]"),
    "unknown network key": (lambda c: c["network"].update(width=3), "unexpected keyword argument 'width'"),
    "min_length off": (lambda c: c.update(min_length=7), "min_length is 7"),
    "max_length 0": (lambda c: c.update(max_length=0), "max_length is 0"),
    "temperature negative": (lambda c: c.update(temperature=-1), "temperature is -1"),
    "multi-label without thresholds": (lambda c: c.update(multi_label=True), "multi-label but has no thresholds"),
    "thresholds on a single-label model": (lambda c: c.update(thresholds=[0.5, 0.5]), "not multi-label"),
    "multi_label a string": (lambda c: c.update(multi_label="no"), "multi_label is 'no'"),
    "language with YAML in it": (lambda c: c.update(language=["en\nlicense: x"]), "are not language codes"),
    "dataset id with spaces": (lambda c: c.update(datasets=["my data"]), "are not Hub dataset ids"),
    "a metric of 5": (lambda c: c.update(evaluation=[{"split": "test", "source": "evaluate", "metrics": {"accuracy": 5}}]),
                      "not a number in \\[0, 1\\]"),
    "nested data settings": (lambda c: c.update(data={"path": {"a": 1}}), "not a mapping of plain values"),
}


def damaged_directory(tmp_path: Path, source: Path) -> Path:
    directory = tmp_path / "model"
    shutil.copytree(source, directory)
    return directory


@pytest.mark.parametrize("case", DAMAGED_CONFIGS)
def test_a_tampered_config_is_refused_in_one_line(case, single_dir, tmp_path):
    mutate, message = DAMAGED_CONFIGS[case]
    directory = damaged_directory(tmp_path, single_dir)
    config = json.loads((directory / "config.json").read_text())
    mutate(config)
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserInputError, match=message) as error:
        textcnn.load(directory)
    assert "\n" not in str(error.value)


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(directory / "model.safetensors")


DAMAGED_WEIGHTS = {
    "truncated": (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:100]),
                  "not a readable safetensors file"),
    "not safetensors": (lambda d: (d / "model.safetensors").write_bytes(b"\x80\x04 pickled? no"),
                        "not a readable safetensors file"),
    "a tensor missing": (lambda d: save_file({k: v for k, v in _weights(d).items() if k != "classifier.bias"},
                                             d / "model.safetensors"), "lack classifier.bias"),
    "an extra tensor": (lambda d: save_file({**_weights(d), "backdoor": torch.zeros(1)}, d / "model.safetensors"),
                        "hold backdoor"),
    "a tensor of another shape": (lambda d: save_file({**_weights(d), "classifier.weight": torch.zeros(3, 8)},
                                                      d / "model.safetensors"), r"classifier.weight has shape \[3, 8\]"),
    "float16 weights": (lambda d: save_file({k: v.half() for k, v in _weights(d).items()}, d / "model.safetensors"),
                        "is not float32"),
    "NaN weights": (lambda d: save_file({**_weights(d), "classifier.bias": torch.full((2,), float("nan"))},
                                        d / "model.safetensors"), "NaN or infinite in classifier.bias"),
    "a broken tokenizer": (lambda d: (d / "tokenizer.json").write_text("{not json"), "not a tokenizer.json"),
    "no tokenizer": (lambda d: (d / "tokenizer.json").unlink(), "has no tokenizer.json"),
    "config not JSON": (lambda d: (d / "config.json").write_text("{"), "cannot read"),
}


@pytest.mark.parametrize("case", DAMAGED_WEIGHTS)
def test_tampered_weights_or_tokenizer_are_refused_in_one_line(case, single_dir, tmp_path):
    mutate, message = DAMAGED_WEIGHTS[case]
    directory = damaged_directory(tmp_path, single_dir)
    mutate(directory)
    with pytest.raises(UserInputError, match=message) as error:
        textcnn.load(directory)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("command", ["predict", "evaluate", "serve"])
def test_every_command_refuses_a_tampered_directory_with_exit_status_2(command, single_dir, tmp_path, capsys):
    directory = damaged_directory(tmp_path, single_dir)
    save_file({**_weights(directory), "classifier.weight": torch.zeros(3, 8)}, directory / "model.safetensors")
    extra = {"predict": ["fine"], "evaluate": [f"--data.path={dataset_dir('sst2')}"], "serve": ["--port", "0"]}[command]
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--checkpoint", str(directory), *extra])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "classifier.weight has shape [3, 8]" in last


def test_when_the_checkpoint_was_trained_reaches_the_directory_and_its_card(checkpoint, tmp_path):
    trained_at = torch.load(checkpoint, map_location="cpu", weights_only=True)["trained_at"]
    assert datetime.fromisoformat(trained_at).tzinfo is not None
    cli.export(["--checkpoint", str(checkpoint), "--format", "hf", "--output", str(tmp_path / "model")])
    assert json.loads((tmp_path / "model" / "config.json").read_text())["trained_at"] == trained_at
    assert f"- Trained: {trained_at}" in (tmp_path / "model" / "README.md").read_text()
    assert textcnn.load(tmp_path / "model").provenance["trained_at"] == trained_at
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    (tmp_path / "model" / "config.json").write_text(json.dumps({**config, "trained_at": "yesterday"}))
    with pytest.raises(UserInputError, match="its trained_at 'yesterday' is not a time"):
        textcnn.load(tmp_path / "model")


def test_published_data_settings_name_files_but_not_the_machine():
    from textcnn.inference.model_directory import clean_data_settings

    settings = {"path": "../shared/data/sst2", "train_file": "/home/me/reviews.csv", "test_file": "~/test.csv",
                "validation_file": "./data/dev.csv", "label_names": ["negative", "positive"]}
    assert clean_data_settings({**settings, "hub": "SetFit/sst2"}) == {
        "path": "sst2", "train_file": "reviews.csv", "test_file": "test.csv", "validation_file": "dev.csv",
        "label_names": ["negative", "positive"], "hub": "SetFit/sst2"}
