"""``--init_from``: a model trained further on new data keeps its weights, tokenizer and classes, and
gains the classes the new data brings."""

import logging
import shutil

import datasets
import pytest
import torch

import textcnn
from textcnn import cli
from textcnn.errors import UserInputError
from textcnn.inference.checkpoint import read_saved_checkpoint
from textcnn.model import TextCNN
from textcnn.training.init_from import load_weights
from tests.conftest import ROOT, dataset_dir

RELEASED = ROOT / "tests" / "fixtures" / "textcnn-0.1.0"


def test_classifier_rows_follow_their_class_and_a_new_class_keeps_its_fresh_row(checkpoint):
    saved = read_saved_checkpoint(checkpoint)
    names = ["question", "positive", "negative"]  # another order, and a class the model never saw
    torch.manual_seed(0)
    network = TextCNN(saved.vocab_size, len(names), saved.config)
    fresh = network.classifier.weight.detach().clone()
    load_weights(network, saved, names)
    weight, bias = network.classifier.weight.detach(), network.classifier.bias.detach()
    for index, name in ((1, "positive"), (2, "negative")):
        old = saved.label_names.index(name)
        assert torch.equal(weight[index], saved.weights["classifier.weight"][old])
        assert torch.equal(bias[index], saved.weights["classifier.bias"][old])
    assert torch.equal(weight[0], fresh[0])
    for key, value in network.state_dict().items():
        if not key.startswith("classifier."):
            assert torch.equal(value, saved.weights[key]), key


def new_data(sst2_slice) -> datasets.Dataset:
    """SST-2 sentences with their string labels, and TREC questions as a third class."""
    sst2 = datasets.load_dataset(str(sst2_slice), split="validation")
    names = sst2.features["label"].names
    questions = datasets.load_dataset(str(dataset_dir("trec")), split="train").select(range(150))["text"]
    return datasets.Dataset.from_dict({"text": list(sst2["text"]) + list(questions),
                                       "label": [names[i] for i in sst2["label"]] + ["question"] * 150})


@pytest.mark.slow
def test_continuing_adds_the_new_class_and_keeps_the_tokenizer(checkpoint, sst2_slice, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="textcnn"):
        result = textcnn.train(new_data(sst2_slice), init_from=checkpoint, **{
            "trainer.max_epochs": 2, "trainer.default_root_dir": str(tmp_path), "trainer.enable_progress_bar": False})
    saved = read_saved_checkpoint(checkpoint)
    assert result.predictor.label_names == ["negative", "positive", "question"]
    assert result.predictor.tokenizer.to_str() == saved.tokenizer.to_str()  # every text tokenizes as before
    assert result.predictor.model.config == saved.config
    assert result.metrics["validation"]["init_from"]["classes_added"] == ["question"]
    lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("init_from: ")]
    assert len(lines) == 1 and lines[0].endswith("new classes: question")
    guesses = result.predictor.predict(["what is the capital of peru ?", "who wrote hamlet ?"])
    assert {guess["label"] for guess in guesses} == {"question"}  # it learned the new class


def test_a_model_continues_only_on_data_labelled_its_way(sst2_slice, tmp_path):
    with pytest.raises(UserInputError, match="is multi-label but the new data is single-label"):
        cli.train([f"--init_from={RELEASED / 'trec_multilabel_tiny.ckpt'}", f"--data.path={sst2_slice}",
                   f"--trainer.default_root_dir={tmp_path}"])
    resumed = tmp_path / "last.ckpt"  # a copy: resuming writes tokenizer.json beside the checkpoint
    shutil.copy(RELEASED / "sst2_tiny.ckpt", resumed)
    with pytest.raises(UserInputError, match="not both"):
        cli.train([f"--init_from={RELEASED / 'sst2_tiny.ckpt'}", f"--ckpt_path={resumed}",
                   f"--data.path={sst2_slice}", f"--trainer.default_root_dir={tmp_path}"])
    assert not (RELEASED / "tokenizer.json").exists()
