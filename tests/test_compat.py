"""Files written by earlier textcnn releases keep loading and predict as they did.

The expected figures were written on one machine; another CPU (AVX2 or baseline kernels instead of
AVX-512), thread count or library version differs in the last bits, so labels are compared exactly
and probabilities and logits within :data:`TOLERANCE`."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import torch

import textcnn

# results that depend on the CPU's kernels: CI runs these a second time with ATEN_CPU_CAPABILITY=default
pytestmark = pytest.mark.numerics

FIXTURES = Path(__file__).parent / "fixtures" / "textcnn-0.1.0"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
TOLERANCE = 1e-5  # absolute: far above the kernels' last-bit differences, far below any change of behaviour


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_released_checkpoints_and_exports_predict_as_when_they_were_written(name):
    expected = EXPECTED[name]
    predictor = textcnn.load(FIXTURES / name)
    predictions = predictor.predict(expected["texts"])
    assert [_without_probabilities(p) for p in predictions] == [_without_probabilities(p) for p in expected["predictions"]]
    for got, wanted in zip(predictions, expected["predictions"]):
        assert list(got["probabilities"]) == list(wanted["probabilities"])  # same classes, same order
        torch.testing.assert_close(torch.tensor(list(got["probabilities"].values())),
                                   torch.tensor(list(wanted["probabilities"].values())), rtol=0, atol=TOLERANCE)
    torch.testing.assert_close(predictor.logits(expected["texts"]), torch.tensor(expected["logits"]),
                               rtol=0, atol=TOLERANCE)


def _without_probabilities(prediction: dict) -> dict:
    return {key: value for key, value in prediction.items() if key != "probabilities"}


def test_class_paths_recorded_in_saved_configs_still_import():
    config = (FIXTURES / "sst2_tiny.config.yaml").read_text(encoding="utf-8")
    recorded = re.findall(r"class_path: (\S+)", config)
    for path in recorded + ["textcnn.lit.TextCNNClassifier", "textcnn.data.TextDataModule",
                            "textcnn.callbacks.SaveTokenizer", "textcnn.callbacks.RandomState",
                            "textcnn.callbacks.BestAndLastCheckpoint", "textcnn.model.TextCNNConfig"]:
        module, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(module), name), path
