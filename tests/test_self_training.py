"""Self-training on the unlabelled text: confident pseudo-labels in the labelled class shares, a pool
sampled from a stream without the labelled splits' texts, and a second run kept only where
validation prefers it."""

import logging

import datasets
import numpy as np
import pytest

from textcnn import cli
from textcnn.training.self_training import pseudo_labels, reasons_against, sample_pool
from tests.conftest import TINY_MODEL_ARGS, dataset_dir


def test_pseudo_labels_are_the_confident_ones_in_the_labelled_class_shares():
    probabilities = np.array([[0.95, 0.05], [0.99, 0.01], [0.97, 0.03], [0.2, 0.8], [0.05, 0.95], [0.5, 0.5]])
    rows, labels = pseudo_labels(probabilities, train_labels=[0, 1], min_confidence=0.9, per_labelled=2)
    assert rows.tolist() == [1, 2, 4]  # class 0: its two most confident; class 1: the one at 0.9 or more
    assert labels.tolist() == [0, 0, 1]
    rows, _ = pseudo_labels(probabilities, train_labels=[1, 1], min_confidence=0.9, per_labelled=2)
    assert rows.tolist() == [4]  # a class without labelled rows gets no pseudo-labels


def test_the_pool_is_a_seeded_sample_of_the_stream_without_the_labelled_texts():
    texts = [f"text {number}" for number in range(1000)] + ["a  labelled   text", None, ""]
    pool = sample_pool(iter(texts), known={"a labelled text", "text 3"}, size=50, seed=1)
    assert len(pool) == 50 and "text 3" not in pool and "a labelled text" not in pool
    assert pool == sample_pool(iter(texts), known={"a labelled text", "text 3"}, size=50, seed=1)
    assert len(sample_pool(iter(texts[:10]), known=set(), size=50)) == 10


@pytest.mark.parametrize("config, expected", [
    ({"self_training": False, "data": {}}, "self_training is false"),
    ({"self_training": None, "data": {"replay_file": "old.csv"}}, "data.replay_file"),
    ({"self_training": None, "data": {}, "init_from": "model.ckpt"}, "continued model"),
    ({"self_training": None, "data": {}}, "5,000 labelled training rows are enough"),
])
def test_runs_that_do_not_self_train_say_why(config, expected):
    assert expected in reasons_against(config, 5000, multi_label=False)
    assert reasons_against({"self_training": True, "data": {}}, 5000, multi_label=False) is None
    assert "multi-label" in reasons_against({"data": {}}, 100, multi_label=True)


def _few_trec_labels(tmp_path):
    """300 labelled TREC questions, 100 test ones, and 1,000 others as a text file: the run's arguments."""
    trec = datasets.load_dataset(str(dataset_dir("trec")))
    train = trec["train"].shuffle(seed=0)
    labelled = train.select(range(300)).select_columns(["text", "coarse_label"])
    labelled.to_parquet(str(tmp_path / "train.parquet"))
    trec["test"].select(range(100)).select_columns(["text", "coarse_label"]).to_parquet(str(tmp_path / "test.parquet"))
    (tmp_path / "questions.txt").write_text("\n".join(train.select(range(300, 1300))["text"]) + "\n", encoding="utf-8")
    args = [f"--data.train_file={tmp_path / 'train.parquet'}", f"--data.test_file={tmp_path / 'test.parquet'}",
            "--data.label_column=coarse_label", f"--data.unlabeled_file={tmp_path / 'questions.txt'}",
            f"--trainer.default_root_dir={tmp_path / 'run'}", *TINY_MODEL_ARGS]
    return labelled, args


@pytest.mark.slow  # trains two tiny models
def test_few_labels_and_unlabelled_text_train_a_second_model_on_confident_labels(tmp_path, caplog):
    labelled, args = _few_trec_labels(tmp_path)
    with caplog.at_level(logging.INFO, logger="textcnn"):
        report = cli.train([*args, "--trainer.max_epochs=8", "--model.learning_rate=0.01"])
    lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("self-training:")]
    assert len(lines) == 2, lines
    assert "unlabelled texts at 90% confidence or more" in lines[0]
    assert "validation accuracy" in lines[1] and "kept the" in lines[1]
    second_train = datasets.Dataset.from_parquet(str(tmp_path / "run" / "self-training" / "train.parquet"))
    pseudo = second_train["text"][270:]  # after the first run's 270 training rows (30 validate)
    assert 0 < len(pseudo) <= 4 * 270 and set(pseudo).isdisjoint(labelled["text"])
    assert (tmp_path / "run" / "self-training" / "validation.parquet").exists()
    assert report["accuracy"] > 0.3  # six classes: the kept model is well above chance


@pytest.mark.slow  # trains a tiny model
def test_a_run_that_keeps_its_checkpoint_by_loss_says_the_unlabelled_text_goes_unused(tmp_path, caplog):
    _, args = _few_trec_labels(tmp_path)
    with caplog.at_level(logging.INFO, logger="textcnn"):
        cli.train([*args, "--trainer.max_epochs=1", "--checkpoint.monitor=val_loss", "--checkpoint.mode=min"])
    messages = [record.getMessage() for record in caplog.records]
    assert any("chose its checkpoint by val_loss, not by validation accuracy" in message for message in messages)
    assert not any(message.startswith("self-training:") for message in messages)  # a loss never passes as accuracy
