"""Ensembles of trained models: the mean of their probabilities, from Python and the command line."""

import json
from pathlib import Path

import pytest
import torch

import textcnn
from textcnn import cli
from textcnn.errors import UserInputError
from textcnn.inference import Ensemble

# results that depend on the CPU's kernels: CI runs these a second time with ATEN_CPU_CAPABILITY=default
pytestmark = pytest.mark.numerics

TEXTS = ["a gorgeous , witty , seductive movie .", "it 's a bad , bad film", "!", "", "fine " * 100]


def another_model(checkpoint: Path, target: Path, seed: int = 0, label_names=None) -> Path:
    """A copy of ``checkpoint`` whose classifier weights are moved at random: another model of the
    same classes (or of ``label_names``), as another seed's run would be."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    generator = torch.Generator().manual_seed(seed)
    weight = saved["state_dict"]["model.classifier.weight"]
    weight += torch.randn(weight.shape, generator=generator) * weight.std()
    if label_names is not None:
        saved["hyper_parameters"]["label_names"] = label_names
    torch.save(saved, target)
    return target


def test_an_ensembles_probabilities_are_the_mean_of_its_models(checkpoint, tmp_path):
    other = another_model(checkpoint, tmp_path / "other.ckpt")
    first, second = textcnn.load(checkpoint), textcnn.load(other)
    ensemble = textcnn.load([checkpoint, other])
    assert isinstance(ensemble, Ensemble)
    expected = (first.predict_proba(TEXTS) + second.predict_proba(TEXTS)) / 2
    assert not torch.allclose(first.predict_proba(TEXTS), second.predict_proba(TEXTS))  # two different models
    torch.testing.assert_close(ensemble.predict_proba(TEXTS), expected)
    torch.testing.assert_close(ensemble.logits(TEXTS).softmax(dim=-1), expected)
    results = ensemble.predict(TEXTS)
    assert [result["label"] for result in results] == [ensemble.label_names[i] for i in expected.argmax(dim=-1)]
    assert all(sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5) for result in results)
    assert [member["backend"] for member in ensemble.metadata()["members"]] == ["pytorch", "pytorch"]


def test_one_model_in_a_list_is_that_model_and_mismatched_models_are_refused(checkpoint, tmp_path):
    assert type(textcnn.load([checkpoint])) is textcnn.Predictor
    with pytest.raises(UserInputError, match="two or more models, got 0"):
        textcnn.load([])
    renamed = another_model(checkpoint, tmp_path / "renamed.ckpt", label_names=["positive", "negative"])
    with pytest.raises(UserInputError, match=r"model 2 of the ensemble has the classes \['positive', 'negative'\]"):
        textcnn.load([checkpoint, renamed])


def test_the_commands_take_several_checkpoints_as_an_ensemble(checkpoint, sst2_slice, tmp_path, capsys):
    other = another_model(checkpoint, tmp_path / "other.ckpt")
    report = cli.evaluate(["--checkpoint", str(checkpoint), "--checkpoint", str(other), f"--data.path={sst2_slice}"])
    assert report["checkpoint"] == [str(checkpoint), str(other)] and report["num_examples"] == 600
    test = textcnn.load([checkpoint, other])
    import datasets

    split = datasets.load_dataset(str(sst2_slice), split="test")
    predicted = test.predict_proba(split["text"]).argmax(dim=-1)
    assert report["accuracy"] == pytest.approx(float((predicted == torch.tensor(split["label"])).float().mean()))
    assert report["calibration"]["fitted_on"] == "validation"

    cli.predict_main(["--checkpoint", str(checkpoint), "--checkpoint", str(other), *TEXTS[:2]])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = test.predict(TEXTS[:2])
    assert [line["probabilities"] for line in lines] == [result["probabilities"] for result in expected]

    with pytest.raises(SystemExit):
        cli.predict_main(["--checkpoint", str(checkpoint), "--checkpoint", str(other), "--explain", "fine"])
    assert "not an ONNX export or an ensemble" in capsys.readouterr().err
