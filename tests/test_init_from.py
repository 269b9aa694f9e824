"""``--init_from``: a model trained further on new data keeps its weights, tokenizer and classes, and
gains the classes the new data brings."""

import logging
import shutil
from types import SimpleNamespace

import datasets
import pytest
import torch

import textcnn
from textcnn import cli
from textcnn.errors import UserInputError
from textcnn.inference.checkpoint import read_saved_checkpoint
from textcnn.model import TextCNN, TextCNNConfig
from textcnn.tokenizer import UNK_ID, encode, tokenizer_from_json, train_tokenizer
from textcnn.training.init_from import Start, grown_tokenizer, load_weights
from tests.conftest import ROOT, dataset_dir

RELEASED = ROOT / "tests" / "fixtures" / "textcnn-0.1.0"


def test_classifier_rows_follow_their_class_and_a_new_class_keeps_its_fresh_row(checkpoint):
    saved = read_saved_checkpoint(checkpoint)
    names = ["question", "positive", "negative"]  # another order, and a class the model never saw
    torch.manual_seed(0)
    network = TextCNN(saved.vocab_size, len(names), saved.config)
    fresh = network.classifier.weight.detach().clone()
    load_weights(network, Start(saved, names))
    weight, bias = network.classifier.weight.detach(), network.classifier.bias.detach()
    for index, name in ((1, "positive"), (2, "negative")):
        old = saved.label_names.index(name)
        assert torch.equal(weight[index], saved.weights["classifier.weight"][old])
        assert torch.equal(bias[index], saved.weights["classifier.bias"][old])
    assert torch.equal(weight[0], fresh[0])
    for key, value in network.state_dict().items():
        if not key.startswith("classifier."):
            assert torch.equal(value, saved.weights[key]), key


OLD_TEXTS = ["a gripping , funny film", "a dull , lifeless film", "funny and gripping"]


def test_the_vocabulary_grows_by_new_words_that_are_frequent_enough_and_old_texts_tokenize_as_before():
    tokenizer = train_tokenizer(OLD_TEXTS)
    new_texts = ["a gripping thriller", "a tense thriller , gripping", "one unique word"]
    grown_json, words = grown_tokenizer(tokenizer, new_texts, min_frequency=2, limit=100)
    grown = tokenizer_from_json(grown_json)
    assert words == ["thriller"]  # twice; "tense", "one", "unique", "word" once
    assert grown.token_to_id("thriller") == tokenizer.get_vocab_size() == grown.get_vocab_size() - 1
    assert encode(grown, OLD_TEXTS + ["gripping [PAD] film"], 64) == encode(tokenizer, OLD_TEXTS + ["gripping [PAD] film"], 64)
    _, every_word = grown_tokenizer(tokenizer, new_texts, min_frequency=1, limit=3)
    assert every_word == ["thriller", "one", "tense"]  # the most frequent first, then alphabetical, at most limit
    sub_words = train_tokenizer(OLD_TEXTS * 5, kind="wordpiece", vocab_size=60)
    assert grown_tokenizer(sub_words, new_texts, 1, 100) == (sub_words.to_str(), [])


def test_added_words_start_from_their_vectors_or_as_the_unknown_word_and_the_ngram_rows_follow():
    config = TextCNNConfig(embed_dim=4, conv_channels=[3], kernel_sizes=[2], ngram_order=2, ngram_buckets=5,
                           ngram_dim=3, embedding_mode="multichannel")
    torch.manual_seed(0)
    old = TextCNN(10, 2, config)
    saved = SimpleNamespace(weights=old.state_dict(), label_names=["negative", "positive"], vocab_size=10,
                            source="old.ckpt")
    network = TextCNN(13, 2, config)
    vectors = {0: torch.ones(4), 2: torch.full((4,), 2.0)}  # "y" has no vector: it starts as [UNK] did
    load_weights(network, Start(saved, ["negative", "positive"], ["x", "y", "z"], vectors))
    for key in ("embedding.weight", "static_embedding.weight"):
        grown, before = network.state_dict()[key], saved.weights[key]
        assert torch.equal(grown[:10], before)
        assert torch.equal(grown[10], vectors[0]) and torch.equal(grown[11], before[UNK_ID])
        assert torch.equal(grown[12], vectors[2])
    bag, old_bag = network.state_dict()["ngrams.embedding.weight"], saved.weights["ngrams.embedding.weight"]
    assert bag.shape == (18, 3)
    assert torch.equal(bag[:10], old_bag[:10]) and torch.equal(bag[13:], old_bag[10:])  # the hashed buckets
    assert all(torch.equal(bag[row], old_bag[UNK_ID]) for row in (10, 11, 12))
    assert torch.equal(network.state_dict()["classifier.weight"], saved.weights["classifier.weight"])


def new_data(sst2_slice) -> datasets.Dataset:
    """SST-2 sentences with their string labels, and TREC questions as a third class."""
    sst2 = datasets.load_dataset(str(sst2_slice), split="validation")
    names = sst2.features["label"].names
    questions = datasets.load_dataset(str(dataset_dir("trec")), split="train").select(range(150))["text"]
    return datasets.Dataset.from_dict({"text": list(sst2["text"]) + list(questions),
                                       "label": [names[i] for i in sst2["label"]] + ["question"] * 150})


@pytest.mark.slow
def test_continuing_adds_the_new_class_and_grows_the_tokenizer(checkpoint, sst2_slice, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="textcnn"):
        result = textcnn.train(new_data(sst2_slice), init_from=checkpoint, **{
            "trainer.max_epochs": 2, "trainer.default_root_dir": str(tmp_path), "trainer.enable_progress_bar": False})
    saved = read_saved_checkpoint(checkpoint)
    assert result.predictor.label_names == ["negative", "positive", "question"]
    old_vocab, new_vocab = saved.tokenizer.get_vocab(), result.predictor.tokenizer.get_vocab()
    assert all(new_vocab[word] == index for word, index in old_vocab.items())  # every old word keeps its id
    added = [word for word in new_vocab if word not in old_vocab]
    assert added and min(new_vocab[word] for word in added) == len(old_vocab)  # the new words follow the old
    assert result.predictor.model.config == saved.config
    report = result.metrics["validation"]["init_from"]
    assert report["classes_added"] == ["question"] and report["words_added"] == len(new_vocab) - len(old_vocab) > 0
    lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("init_from: ")]
    assert len(lines) == 1 and f"new classes: question; vocabulary grew by {report['words_added']:,} words" in lines[0]
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


@pytest.mark.slow
def test_an_automatic_learning_rate_is_found_from_the_continued_weights(checkpoint, sst2_slice, tmp_path, monkeypatch):
    import textcnn.training.init_from as init_from

    loaded = []
    real = init_from.load_weights
    monkeypatch.setattr(init_from, "load_weights", lambda network, start: loaded.append(start) or real(network, start))
    monkeypatch.setattr("textcnn.training.run.load_weights", init_from.load_weights)
    cli.train([f"--init_from={checkpoint}", f"--data.path={sst2_slice}", "--model.learning_rate=auto",
               "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={tmp_path}"])
    assert len(loaded) == 2 and loaded[0] is loaded[1]  # the range test, then the run: both from the model's weights
