"""Files written by earlier textcnn releases keep loading and predict exactly as they did."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import torch

import textcnn

FIXTURES = Path(__file__).parent / "fixtures" / "textcnn-0.1.0"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_released_checkpoints_and_exports_predict_as_when_they_were_written(name):
    expected = EXPECTED[name]
    predictor = textcnn.load(FIXTURES / name)
    assert predictor.predict(expected["texts"]) == expected["predictions"]
    torch.testing.assert_close(predictor.logits(expected["texts"]), torch.tensor(expected["logits"]), rtol=0, atol=1e-6)


def test_class_paths_recorded_in_saved_configs_still_import():
    config = (FIXTURES / "sst2_tiny.config.yaml").read_text(encoding="utf-8")
    recorded = re.findall(r"class_path: (\S+)", config)
    for path in recorded + ["textcnn.lit.TextCNNClassifier", "textcnn.data.TextDataModule",
                            "textcnn.callbacks.SaveTokenizer", "textcnn.callbacks.RandomState",
                            "textcnn.callbacks.BestAndLastCheckpoint", "textcnn.model.TextCNNConfig"]:
        module, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(module), name), path
