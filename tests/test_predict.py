import pytest
import torch

import textcnn
from textcnn.errors import UserInputError
from textcnn.lit import TextCNNClassifier

TEXTS = ["a gorgeous , witty , seductive movie .", "it 's a bad , bad film", "!", "", "good " * 500]


def test_predictions_have_label_names_and_probabilities(checkpoint):
    results = textcnn.load(checkpoint).predict(TEXTS)
    assert len(results) == len(TEXTS)
    for result in results:
        assert result["label"] in ("negative", "positive")
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert result["label"] == max(result["probabilities"], key=result["probabilities"].get)


def test_batch_and_single_text_predictions_agree(checkpoint):
    predictor = textcnn.load(checkpoint)
    together = predictor.predict_proba(TEXTS, batch_size=64)
    for i, text in enumerate(TEXTS):
        torch.testing.assert_close(predictor.predict_proba([text])[0], together[i], rtol=0, atol=1e-6)


def test_predictor_matches_the_lightning_module(checkpoint):
    predictor = textcnn.load(checkpoint)
    module = TextCNNClassifier.load_from_checkpoint(checkpoint, weights_only=True, map_location="cpu").eval()
    with torch.inference_mode():
        expected = module(predictor.batch(TEXTS))
    torch.testing.assert_close(predictor.logits(TEXTS), expected, rtol=0, atol=0)
    assert textcnn.load(checkpoint).predict(TEXTS) == predictor.predict(TEXTS)


def test_empty_and_non_string_inputs_are_refused(checkpoint):
    predictor = textcnn.load(checkpoint)
    with pytest.raises(UserInputError, match="no texts"):
        predictor.predict([])
    with pytest.raises(UserInputError, match="text 1 is int"):
        predictor.predict(["fine", 3])


def test_missing_corrupt_and_foreign_checkpoints_are_refused(checkpoint, tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        textcnn.load(tmp_path / "missing.ckpt")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(checkpoint.read_bytes()[:5000])
    with pytest.raises(UserInputError, match="not a readable PyTorch checkpoint"):
        textcnn.load(truncated)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(UserInputError, match="not a textcnn checkpoint"):
        textcnn.load(foreign)


class _RunsCodeOnLoad:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    crafted = tmp_path / "crafted.ckpt"
    with open(crafted, "wb") as handle:
        torch.save({"state_dict": _RunsCodeOnLoad(marker)}, handle)
    with pytest.raises(UserInputError, match="refusing to load"):
        textcnn.load(crafted)
    assert not marker.exists()
