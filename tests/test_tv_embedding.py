"""tv-embeddings: a region embedding trained on unlabelled text to predict the words around each
region, then frozen beside a region network's own first layer, for documents."""

import logging

import datasets
import pytest
import torch

import textcnn
from textcnn import cli
from textcnn.errors import UserInputError
from textcnn.inference.checkpoint import read_saved_checkpoint
from textcnn.model import TextCNN, TextCNNConfig
from textcnn.tokenizer import train_tokenizer
from textcnn.training.tv_embedding import TvObjective, TvRecipe, fit_objective, read, rows_for, save, token_rows
from tests.conftest import unlabelled_text_lines_of_two_runs, write_slice_with_unlabeled

SMALL = TvRecipe(channels=16, width=3, epochs=2)
SMALL_NETWORK = ["--data.max_length=128", "--model.network.conv_channels=[16]", "--model.network.ngram_buckets=1024",
                 "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false", "--self_training=false"]


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    """IMDB: 200 labelled training reviews, 100 test reviews, and 600 others as an unlabelled text file."""
    return write_slice_with_unlabeled("imdb", tmp_path_factory.mktemp("reviews"), {"train": 200, "test": 100},
                                      unlabeled=600)


def test_tv_embeddings_learn_the_words_around_a_region(reviews):
    # 600 reviews teach the windows of these reviews; unseen reviews need tens of thousands (docs/unlabeled.md)
    texts = (reviews / "reviews.txt").read_text(encoding="utf-8").splitlines()
    tokenizer = train_tokenizer(texts)
    rows = next(token_rows([lambda: texts], tokenizer, SMALL.width))

    def loss(objective):
        with torch.no_grad():
            return float(objective(rows, torch.Generator().manual_seed(0)))

    torch.manual_seed(SMALL.seed)
    untrained = TvObjective(tokenizer.get_vocab_size(), SMALL)
    trained = fit_objective([lambda: texts], tokenizer, SMALL)
    assert loss(trained) < 0.97 * loss(untrained)  # untrained: softplus(0) for a target and each drawn word


def test_rows_stream_the_texts_end_to_end_with_padding_between_them():
    tokenizer = train_tokenizer(["a good film", "a dull one"])
    batches = list(token_rows([lambda: ["a good film"] * 4000, lambda: ["a dull one"]], tokenizer, gap=2))
    assert batches[0].shape == (32, 512) and batches[-1].shape[1] == 512
    ids = torch.cat([batch.flatten() for batch in batches])
    assert int((ids != 0).sum()) == 3 * 4001 and len(batches) == 2
    assert ids[:10].tolist() == [*tokenizer.encode("a good film").ids, 0, 0] * 2


def test_a_model_of_another_vocabulary_takes_the_rows_of_the_tokens_it_shares():
    table = {"tokens": ["[PAD]", "[UNK]", "good", "film"], "weight": torch.arange(8.0).view(4, 2),
             "bias": torch.ones(1)}
    weight, bias = rows_for(table, {"[PAD]": 0, "[UNK]": 1, "film": 2, "dull": 3})
    assert weight.tolist() == [[0, 0], [2, 3], [6, 7], [0, 0]] and bias.tolist() == [1.0]


def test_a_network_with_tv_embeddings_keeps_them_frozen_and_scores_a_text_alike_alone_or_in_a_batch():
    config = TextCNNConfig(architecture="region", embedding_mode="rand", conv_channels=[16], kernel_sizes=[3],
                           tv_channels=8, tv_width=5)
    table = (torch.randn(100, 40), torch.randn(8))
    network = TextCNN(100, 2, config, tv_embeddings=table)
    assert torch.equal(network.tv_embedding.weight, table[0]) and not network.tv_embedding.weight.requires_grad
    ids = torch.randint(2, 100, (32, 60), generator=torch.Generator().manual_seed(0))
    for row, length in enumerate(torch.randint(3, 60, (32,), generator=torch.Generator().manual_seed(1))):
        ids[row, length:] = 0
    network.eval()
    with torch.no_grad():
        assert network.packed_batch(ids) is not None  # the batch runs packed: texts end to end
        alone = torch.cat([network(ids[i:i + 1, : int((ids[i] != 0).sum())]) for i in range(32)])
        assert torch.allclose(network(ids), alone, atol=1e-5)
    with pytest.raises(UserInputError, match="tv_channels=8 and tv_width=5 need"):
        TextCNN(100, 2, config, tv_embeddings=(torch.randn(100, 24), torch.randn(8)))
    with pytest.raises(UserInputError, match="takes architecture region"):
        TextCNNConfig(tv_channels=8)


def test_the_model_card_names_the_tv_embeddings():
    from dataclasses import asdict

    from textcnn.inference.model_card import architecture_text

    network = asdict(TextCNNConfig(architecture="region", embedding_mode="rand", conv_channels=[300], kernel_sizes=[3],
                                   tv_channels=100))
    assert "300 maps each (plus the 100 maps of frozen width-5 tv-embeddings learnt from unlabelled text)" in \
        architecture_text(network, 2)
    assert "tv-embeddings" not in architecture_text({**network, "tv_channels": 0}, 2)


def test_a_file_that_is_not_tv_embeddings_gets_a_clear_error(tmp_path):
    (tmp_path / "vectors.txt").write_text("2 2\nfilm 0.1 0.2\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="is not a tv-embeddings file"):
        read(str(tmp_path / "vectors.txt"))
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(UserInputError, match="is not a tv-embeddings file"):
        read(str(tmp_path / "other.pt"))
    with pytest.raises(UserInputError, match="does not exist"):
        read(str(tmp_path / "missing.pt"))


def test_few_labels_train_no_tv_embeddings_and_say_why(reviews, caplog):
    from textcnn.training.recipe import _data_module, with_unlabeled_tv_embeddings
    from textcnn.training.run_config import from_command_line

    config, chosen = from_command_line([f"--data.path={reviews}", f"--data.unlabeled_file={reviews / 'reviews.txt'}"])
    with caplog.at_level(logging.INFO, logger="textcnn"):
        assert with_unlabeled_tv_embeddings(config, chosen, _data_module(config)) is None
    assert "no tv-embeddings are trained from it: 180 training rows (fewer than 2,000)" in caplog.text


@pytest.mark.slow  # trains tv-embeddings and two region networks, twice
def test_documents_with_unlabelled_text_train_tv_embeddings_once_and_keep_the_better_model(reviews, tmp_path, caplog,
                                                                                           monkeypatch):
    from textcnn.training import recipe

    monkeypatch.setattr(recipe, "TV_MIN_TRAINING_ROWS", 100)  # the 180 training rows count as enough
    args = [f"--data.path={reviews}", f"--data.unlabeled_file={reviews / 'reviews.txt'}",
            f"--trainer.default_root_dir={tmp_path}", *SMALL_NETWORK]
    first, second, report = unlabelled_text_lines_of_two_runs(caplog, lambda: cli.train(args))
    assert len(first) == 2 and "trained tv-embeddings (100 maps over 5-token regions)" in first[0]
    assert len(second) == 2 and "using the tv-embeddings trained before" in second[0]  # cached by the file's digest
    assert "with its tv-embeddings against" in first[1] and "without; kept the" in first[1]
    saved = read_saved_checkpoint(report["checkpoint"])
    kept_tv = first[1].endswith("kept the model with its tv-embeddings")
    assert saved.config.tv_channels == (100 if kept_tv else 0)


@pytest.mark.slow  # trains
def test_pretrained_tv_embeddings_of_another_vocabulary_feed_a_region_network_that_saves_loads_and_exports(
        reviews, tmp_path):
    from textcnn.inference.export import export_onnx

    report = cli.pretrain([f"--data.unlabeled_file={reviews / 'reviews.txt'}", "--output", str(tmp_path / "pre"),
                           "--tv-embeddings", "--dim", "8", "--epochs", "1"])
    assert report["tv_embeddings"] == str(tmp_path / "pre" / "tv-embeddings.pt")
    trained = cli.train([f"--data.path={reviews}", f"--model.tv_embeddings={report['tv_embeddings']}",
                         f"--trainer.default_root_dir={tmp_path / 'run'}", *SMALL_NETWORK])
    saved = read_saved_checkpoint(trained["checkpoint"])
    assert (saved.config.tv_channels, saved.config.tv_width) == (TvRecipe.channels, TvRecipe.width)  # from the file
    texts = list(datasets.load_dataset(str(reviews), split="test")["text"][:20])
    predictor = textcnn.load(trained["checkpoint"])
    exported = textcnn.load(export_onnx(trained["checkpoint"], tmp_path / "onnx")["output"])
    assert float((exported.logits(texts, 8) - predictor.logits(texts, 8)).abs().max()) <= 1e-4
    (tmp_path / "pre" / "vectors.txt").unlink()
    with pytest.raises(UserInputError, match="tv-embeddings.pt exists"):  # nothing written is replaced
        cli.pretrain([f"--data.unlabeled_file={reviews / 'reviews.txt'}", "--output", str(tmp_path / "pre"),
                      "--tv-embeddings"])
    save({"format": "other"}, tmp_path / "bad.pt")
    with pytest.raises(UserInputError, match="is not a tv-embeddings file"):
        cli.train([f"--data.path={reviews}", f"--model.tv_embeddings={tmp_path / 'bad.pt'}",
                   f"--trainer.default_root_dir={tmp_path / 'bad'}", *SMALL_NETWORK])
