"""The default recipe derives its network from the data: documents get region embeddings, text GloVe
hardly knows gets embeddings learned from scratch (given enough rows to learn them from), a small
training set a longer schedule in smaller batches, English sentences keep the sentence recipe, and
whatever the command sets itself still wins."""

import pytest

import textcnn
from textcnn.training.recipe import (DOCUMENT_MEDIAN_WORDS, DOCUMENT_RECIPE, FROM_SCRATCH_RECIPE, SMALL_DATA_SCHEDULE,
                                     SMALL_TRAINING_ROWS, TextStatistics, median_words, pretrained_word_share, recipe,
                                     schedule, with_recipe)
from textcnn.training.run_config import from_command_line, get_dotted
from tests.conftest import ROOT, write_slice


def derived(command):
    """The config a command line resolves to, and the same completed by the recipe."""
    config, chosen = from_command_line(command)
    return config, with_recipe(config, chosen)


def changed_keys(before, after, keys):
    return {key: get_dotted(after, key) for key in keys if get_dotted(after, key) != get_dotted(before, key)}


@pytest.fixture(scope="module")
def imdb_slice(tmp_path_factory):
    return write_slice("imdb", tmp_path_factory.mktemp("imdb_slice"), {"train": 240, "test": 60})


@pytest.fixture(scope="module")
def chinese_slice(tmp_path_factory):
    """Enough training reviews (with their own validation split) for the recipe to learn embeddings from scratch."""
    return write_slice("chnsenticorp", tmp_path_factory.mktemp("chinese_slice"),
                       {"train": SMALL_TRAINING_ROWS, "validation": 60, "test": 60})


@pytest.fixture(scope="module")
def small_chinese_slice(tmp_path_factory):
    return write_slice("chnsenticorp", tmp_path_factory.mktemp("small_chinese_slice"), {"train": 300, "test": 60})


def test_median_words_counts_whitespace_words():
    assert median_words(["one two three", "a", "four words are here", None]) == 2
    assert median_words([]) == 0


def test_the_recipe_is_a_function_of_the_text_statistics_alone():
    assert recipe(TextStatistics(DOCUMENT_MEDIAN_WORDS)).settings == DOCUMENT_RECIPE
    assert recipe(TextStatistics(DOCUMENT_MEDIAN_WORDS, pretrained_word_share=0.1)).settings == DOCUMENT_RECIPE
    assert recipe(TextStatistics(12, pretrained_word_share=0.14)).settings == FROM_SCRATCH_RECIPE
    assert recipe(TextStatistics(12, pretrained_word_share=0.99)).settings == {}
    assert recipe(TextStatistics(12)).settings == {} and recipe(TextStatistics(12)).reason is None
    assert "documents (median 170 words" in recipe(TextStatistics(170)).reason
    # few rows to learn embeddings from: the recipe keeps GloVe's, whatever share of the words it knows
    assert recipe(TextStatistics(12, pretrained_word_share=0.14, training_rows=450)).settings == {}
    assert recipe(TextStatistics(12, pretrained_word_share=0.14, training_rows=SMALL_TRAINING_ROWS)).settings == \
        FROM_SCRATCH_RECIPE


def test_a_small_training_set_gets_the_longer_schedule_in_smaller_batches():
    assert schedule(TextStatistics(12, training_rows=SMALL_TRAINING_ROWS - 1)).settings == SMALL_DATA_SCHEDULE
    assert "1,999 training rows" in schedule(TextStatistics(12, training_rows=SMALL_TRAINING_ROWS - 1)).reason
    assert schedule(TextStatistics(12, training_rows=SMALL_TRAINING_ROWS)).settings == {}
    assert schedule(TextStatistics(12)).settings == {}  # rows not counted: nothing changes


def test_the_schedule_yields_to_the_command(small_chinese_slice):
    config, completed = derived([f"--data.path={small_chinese_slice}", "--data.batch_size=8"])
    assert changed_keys(config, completed, SMALL_DATA_SCHEDULE) == {
        "trainer.max_epochs": 40, "early_stopping.patience": 10,  # the command's own batch size wins
        "model.network.ngram_dim": 64}
    assert get_dotted(completed, "data.batch_size") == 8
    assert get_dotted(completed, "data.pretrained_vectors") == "glove-6b-50d"  # too few rows to learn embeddings
    config, completed = derived(["--config", str(ROOT / "configs" / "chnsenticorp.yaml"),
                                 f"--data.path={small_chinese_slice}"])
    assert completed == config  # a whole config keeps its schedule


def test_documents_get_the_document_recipe_under_the_command(imdb_slice):
    config, completed = derived([f"--data.path={imdb_slice}", "--data.max_length=64"])
    expected = {key: value for key, value in DOCUMENT_RECIPE.items() if key != "data.max_length"}
    assert changed_keys(config, completed, DOCUMENT_RECIPE) == {  # the command's own max_length wins, and
        **expected, "model.network.kernel_sizes": [3],  # 216 training reviews get the small set's patience
        "early_stopping.patience": SMALL_DATA_SCHEDULE["early_stopping.patience"]}
    assert get_dotted(completed, "data.max_length") == 64


def test_sentences_keep_the_sentence_recipe(sst2_slice):
    config, completed = derived([f"--data.path={sst2_slice}"])
    assert completed == config


def test_glove_knows_english_words_and_few_chinese_ones():
    assert pretrained_word_share(["The film is a delight, start to finish.", None]) == 1.0
    assert pretrained_word_share(["酒店很好，早餐一般"]) < 0.5  # Han characters, one word each; the comma is known
    assert pretrained_word_share(["xqzv blorptastic, fine"]) == 0.5  # "," and "fine" of four words


def test_text_glove_hardly_knows_learns_its_embeddings_from_scratch(chinese_slice):
    config, completed = derived([f"--data.path={chinese_slice}", "--model.network.embed_dim=64"])
    assert changed_keys(config, completed, FROM_SCRATCH_RECIPE) == {
        "model.network.embedding_mode": "rand", "data.pretrained_vectors": None}  # the command's own width wins
    assert get_dotted(completed, "model.network.embed_dim") == 64
    config, completed = derived([f"--data.path={chinese_slice}", "--data.pretrained_vectors=glove-6b-50d"])
    assert completed == config  # a command that names the vectors keeps them


@pytest.mark.parametrize("choice", [
    ["--config", str(ROOT / "configs" / "imdb.yaml")],
    ["--model.network.architecture=textcnn"],
    ["--model.network.embedding_mode", "static"],
    ["--data.pretrained_vectors=null"],
])
def test_a_command_that_chooses_the_network_keeps_its_choice(imdb_slice, choice):
    config, completed = derived([*choice, f"--data.path={imdb_slice}"])
    network = [key for key in DOCUMENT_RECIPE if key != "early_stopping.patience"]
    assert changed_keys(config, completed, network) == {}


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
