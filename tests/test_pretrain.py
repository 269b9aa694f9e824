"""Vectors from unlabelled text: ``textcnn pretrain`` writes them, ``--data.pretrained_vectors`` of any
width sets the embeddings' width, and ``--data.unlabeled_file`` has the recipe train them (once)."""

import json
import logging

import datasets
import pytest

from textcnn import cli
from textcnn.errors import UserInputError
from textcnn.inference.checkpoint import read_saved_checkpoint
from textcnn.training.pretrain import VectorRecipe, train_vectors, unlabeled_texts
from tests.conftest import dataset_dir, unlabelled_text_lines_of_two_runs, write_slice_with_unlabeled

SMALL_NETWORK = ["--model.network.conv_channels=[16, 16]", "--model.network.kernel_sizes=[3, 3]",
                 "--data.max_length=48", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def unlabeled(tmp_path_factory):
    """4,000 of GLUE SST-2's phrases as a plain text file, one per line (no labels)."""
    path = tmp_path_factory.mktemp("unlabeled") / "phrases.txt"
    phrases = datasets.load_dataset(str(dataset_dir("glue_sst2")), split="train").select(range(4000))["sentence"]
    path.write_text("\n".join(phrases) + "\n", encoding="utf-8")
    return path


def test_pretrain_writes_word2vec_vectors_of_the_tokenizers_words(unlabeled, tmp_path):
    report = cli.pretrain([f"--data.unlabeled_file={unlabeled}", "--output", str(tmp_path / "out"), "--dim", "16",
                           "--epochs", "2"])
    lines = (tmp_path / "out" / "vectors.txt").read_text(encoding="utf-8").splitlines()
    count, width = map(int, lines[0].split())
    assert width == 16 and count == report["words"] == len(lines) - 1 > 1000
    assert all(len(line.split()) == 17 for line in lines[1:50])
    assert all(word == word.lower() for word in (line.split()[0] for line in lines[1:]))  # lowercased as the tokenizer
    assert json.loads((tmp_path / "out" / "pretrain.json").read_text())["dim"] == 16
    with pytest.raises(UserInputError, match="vectors.txt exists"):
        cli.pretrain([f"--data.unlabeled_file={unlabeled}", "--output", str(tmp_path / "out")])


def test_unlabelled_files_stream_their_text_column_and_bad_ones_say_what_is_wrong(tmp_path):
    (tmp_path / "reviews.csv").write_text("id,review\n1,a fine film\n2,dull\n", encoding="utf-8")
    assert list(unlabeled_texts(str(tmp_path / "reviews.csv"), "review")()) == ["a fine film", "dull"]
    (tmp_path / "reviews.jsonl").write_text('{"text": "good"}\n{"text": "bad"}\n', encoding="utf-8")
    assert list(unlabeled_texts(str(tmp_path / "reviews.jsonl"))()) == ["good", "bad"]
    with pytest.raises(UserInputError, match=r"has no column 'text' \(columns: id, review\)"):
        unlabeled_texts(str(tmp_path / "reviews.csv"))
    with pytest.raises(UserInputError, match="does not exist"):
        unlabeled_texts(str(tmp_path / "missing.txt"))
    with pytest.raises(UserInputError, match="no word occurs 2 times"):
        train_vectors([lambda: ["one two"]], VectorRecipe())


def test_the_scan_of_the_texts_keeps_a_bounded_number_of_word_types(monkeypatch):
    from textcnn.training import pretrain

    # every rare word occurs twice (min_count), so only the scan's cap can drop them
    texts = lambda: ["the film was good"] * 50 + [f"rare{i} word{i}" for i in range(300)] * 2  # noqa: E731
    recipe = VectorRecipe(dim=8, epochs=1)
    assert len(train_vectors([texts], recipe)) == 604
    monkeypatch.setattr(pretrain, "MAX_WORD_TYPES_SCANNED", 100)
    kept = train_vectors([texts], recipe)
    assert len(kept) < 100 and {"the", "film", "was", "good"} <= set(kept.index_to_key)


@pytest.mark.slow
def test_vectors_of_another_width_set_the_embeddings_width(unlabeled, sst2_slice, tmp_path, caplog):
    cli.pretrain([f"--data.unlabeled_file={unlabeled}", "--output", str(tmp_path / "vectors"), "--dim", "24",
                  "--epochs", "1"])
    with caplog.at_level(logging.INFO, logger="textcnn"):
        report = cli.train([f"--data.path={sst2_slice}", f"--data.pretrained_vectors={tmp_path / 'vectors' / 'vectors.txt'}",
                            f"--trainer.default_root_dir={tmp_path / 'run'}", *SMALL_NETWORK])
    assert read_saved_checkpoint(report["checkpoint"]).config.embed_dim == 24
    assert any("has 24 dimensions: the embeddings are 24 wide" in record.getMessage() for record in caplog.records)


@pytest.fixture(scope="module")
def chinese_reviews(tmp_path_factory):
    """2,500 + 300 labelled ChnSentiCorp reviews (test 300), and 2,000 others as an unlabelled text file."""
    return write_slice_with_unlabeled("chnsenticorp", tmp_path_factory.mktemp("chinese"),
                                      {"train": 2500, "validation": 300, "test": 300}, unlabeled=2000)


@pytest.mark.slow
def test_an_unlabeled_file_starts_the_embeddings_from_vectors_trained_once(chinese_reviews, tmp_path, caplog):
    args = [f"--data.path={chinese_reviews}", f"--data.unlabeled_file={chinese_reviews / 'reviews.txt'}",
            f"--trainer.default_root_dir={tmp_path}", *SMALL_NETWORK]
    first, second, report = unlabelled_text_lines_of_two_runs(caplog, lambda: cli.train(args))
    assert len(first) == 2 and "trained 100-dimensional word2vec vectors" in first[0]
    assert len(second) == 2 and "using the word2vec vectors trained before" in second[0]  # cached by the file's digest
    # GloVe knows few Chinese characters: validation chose between the recipe's embeddings learnt from
    # scratch and the ones from the vectors, and says which it kept
    assert "starting from its vectors against" in first[1] and "from scratch; kept the" in first[1]
    saved = read_saved_checkpoint(report["checkpoint"])
    if first[1].endswith("kept the model from its vectors"):
        assert saved.config.embed_dim == VectorRecipe.dim and saved.config.embedding_mode == "non-static"
        assert saved.data["pretrained_vectors"].startswith(str(tmp_path / "vectors"))  # the run's own cache
    else:
        assert not saved.data["pretrained_vectors"]


@pytest.mark.slow
def test_english_text_that_glove_knows_keeps_glove_and_says_why(unlabeled, sst2_slice, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="textcnn"):
        report = cli.train([f"--data.path={sst2_slice}", f"--data.unlabeled_file={unlabeled}",
                            f"--trainer.default_root_dir={tmp_path}", *SMALL_NETWORK])
    lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("unlabelled text:")]
    assert len(lines) == 1 and "no vectors are trained from it: GloVe knows 100% of the training words" in lines[0]
    assert read_saved_checkpoint(report["checkpoint"]).data["pretrained_vectors"] == "glove-6b-50d"
    assert not (tmp_path / "vectors").exists()
