"""A real (tiny) training run on SST-2 and what its checkpoint must hold."""

import json

import torch

from textcnn.training.evaluation import evaluate_checkpoint
from textcnn.training.module import TextCNNClassifier


def test_a_tiny_model_beats_chance_on_held_out_sentences(trained):
    assert trained["split"] == "test" and trained["num_examples"] == 600
    assert trained["accuracy"] > 0.62  # chance is 0.5 on balanced SST-2
    assert set(trained["per_class"]) == {"negative", "positive"}
    assert sum(sum(row) for row in trained["confusion_matrix"]) == 600


def test_the_checkpoint_loads_with_weights_only_and_carries_tokenizer_and_labels(checkpoint):
    raw = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hparams = raw["hyper_parameters"]
    assert hparams["label_names"] == ["negative", "positive"]
    assert hparams["network"]["conv_channels"] == [32, 48]
    assert json.loads(raw["tokenizer_json"])["model"]["vocab"]["[PAD]"] == 0
    assert (checkpoint.parent / "tokenizer.json").read_text(encoding="utf-8") == raw["tokenizer_json"]
    assert (checkpoint.parent / "last.ckpt").is_file()


def test_lightning_reloads_the_checkpoint(checkpoint):
    module = TextCNNClassifier.load_from_checkpoint(checkpoint, weights_only=True, map_location="cpu")
    assert module.label_names == ["negative", "positive"] and module.tokenizer_json


def test_evaluation_reproduces_the_training_run(trained, checkpoint):
    again = evaluate_checkpoint(checkpoint, split="test")
    assert again["accuracy"] == trained["accuracy"]
    assert again["per_class"] == trained["per_class"]
