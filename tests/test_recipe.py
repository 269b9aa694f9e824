"""The default recipe derives its network from the data: documents get region embeddings, sentences
keep the sentence recipe, and whatever the command sets itself still wins."""

import pytest

import textcnn
from textcnn.training.recipe import DOCUMENT_RECIPE, median_words, with_derived_recipe
from tests.conftest import ROOT, write_slice


@pytest.fixture(scope="module")
def imdb_slice(tmp_path_factory):
    return write_slice("imdb", tmp_path_factory.mktemp("imdb_slice"), {"train": 240, "test": 60})


def test_median_words_counts_whitespace_words():
    assert median_words(["one two three", "a", "four words are here", None]) == 2
    assert median_words([]) == 0


def test_documents_get_the_document_recipe_before_the_command(imdb_slice):
    command = [f"--data.path={imdb_slice}", "--data.max_length=64"]
    derived = with_derived_recipe(command)
    assert derived == [*DOCUMENT_RECIPE, *command]  # the command's own max_length comes last, so it wins


def test_sentences_keep_the_sentence_recipe(sst2_slice):
    command = [f"--data.path={sst2_slice}"]
    assert with_derived_recipe(command) == command


@pytest.mark.parametrize("choice", [
    ["--config", str(ROOT / "configs" / "imdb.yaml")],
    ["--model.network.architecture=textcnn"],
    ["--model.network.embedding_mode", "static"],
    ["--data.pretrained_vectors=null"],
])
def test_a_command_that_chooses_the_network_keeps_its_choice(imdb_slice, choice):
    command = [*choice, f"--data.path={imdb_slice}"]
    assert with_derived_recipe(command) == command


@pytest.mark.slow  # trains
def test_training_on_documents_from_python_uses_region_embeddings(imdb_slice, tmp_path):
    import datasets
    import torch

    splits = datasets.load_dataset(str(imdb_slice))  # a DataFrame or (texts, labels) takes the same path
    result = textcnn.train(splits["train"], test=splits["test"], **{
        "trainer.max_epochs": 1, "trainer.default_root_dir": str(tmp_path), "data.max_length": 128,
        "model.network.conv_channels": [16], "trainer.enable_progress_bar": False})
    saved = torch.load(result.checkpoint, map_location="cpu", weights_only=False)["hyper_parameters"]
    assert saved["network"]["architecture"] == "region"  # the document recipe …
    assert saved["network"]["conv_channels"] == [16]  # … under the caller's own settings
    assert result.metrics["test"]["accuracy"] > 0.0 and result.predictor.predict(["a fine film"])[0]["label"]
