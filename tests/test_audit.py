"""textcnn audit: out-of-fold probabilities over stratified folds, cleanlab's confident learning,
conflicting duplicates, and the CSV it writes; checked on an SST-2 slice with labels flipped on purpose."""

import csv
import json

import numpy as np
import pandas as pd
import pytest

import datasets
from textcnn.cli import audit_main
from textcnn.errors import UserInputError
from textcnn.training.audit import _check, conflicting_duplicates
from tests.conftest import dataset_dir

SMALL = ["--model.network.conv_channels=[32, 32]", "--data.max_length=48", "--trainer.max_epochs=4",
         "--data.batch_size=64", "--model.network.ngram_dim=16"]  # not the few-labels schedule: 4 times the steps


def test_texts_repeated_with_another_label_are_found_after_case_and_space_folding():
    texts = ["Great film", "great   FILM ", "bad", "bad", "Great film"]
    ids = np.array([0, 1, 0, 0, 0])
    assert conflicting_duplicates(texts, ids) == {0: [1], 1: [0, 4], 4: [1]}  # "bad" twice agrees: not listed


@pytest.mark.parametrize("labels, folds, message", [
    (["a", "a", "a"], 2, "two classes or more"),
    (["a", "a", "a", "b"], 2, "fewer rows than --folds"),
    (["a", "b"] * 4, 1, "at least 2"),
])
def test_data_an_audit_cannot_fold_is_one_clear_error(labels, folds, message):
    with pytest.raises(UserInputError, match=message):
        _check(np.asarray(labels), folds)


@pytest.fixture(scope="module")
def noisy_csv(tmp_path_factory):
    """1,200 SST-2 sentences with 10% of their labels flipped (seeded), and the flipped rows."""
    rows = datasets.load_dataset(str(dataset_dir("sst2")))["train"].shuffle(seed=1).select(range(1200))
    labels = np.array(["negative", "positive"])[rows["label"]]
    flipped = np.random.default_rng(0).choice(1200, 120, replace=False)
    labels[flipped] = np.where(labels[flipped] == "negative", "positive", "negative")
    path = tmp_path_factory.mktemp("audit") / "reviews.csv"
    pd.DataFrame({"review": rows["text"], "sentiment": labels, "id": [f"r{i}" for i in range(1200)]}).to_csv(
        path, index=False)
    return path, set(flipped.tolist())


def test_the_audit_flags_flipped_labels_far_above_their_base_rate(noisy_csv, capsys):
    path, flipped = noisy_csv
    output = path.with_name("suspects.csv")
    audit_main([f"--data.train_file={path}", "--data.text_column=review", "--data.label_column=sentiment",
                "--output", str(output), "--folds", "3", "--keep-columns", "id", *SMALL])
    summary = json.loads(capsys.readouterr().out)
    with open(output, encoding="utf-8", newline="") as file:
        suspects = list(csv.DictReader(file))
    assert summary["rows"] == 1200 and summary["folds"] == 3 and summary["suspected"] == len(suspects) > 0
    assert list(suspects[0]) == ["row", "text", "label", "suggested_label", "label_quality", "issue",
                                 "conflicting_rows", "id"]
    source = pd.read_csv(path)
    for suspect in suspects:  # each row points back at its input row, labelled as given
        row = int(suspect["row"])
        assert suspect["id"] == f"r{row}" and suspect["label"] == source["sentiment"][row]
        assert suspect["text"] == source["review"][row]
    qualities = [float(s["label_quality"]) for s in suspects if s["issue"] == "label"]
    assert qualities == sorted(qualities)  # the most suspicious first
    found = {int(s["row"]) for s in suspects} & flipped
    precision, recall = len(found) / len(suspects), len(found) / len(flipped)
    assert precision >= 0.15 and recall >= 0.4, (precision, recall)  # base rate: 0.10


def test_the_audit_names_a_missing_column_and_a_missing_file(tmp_path, noisy_csv):
    path, _ = noisy_csv
    with pytest.raises(SystemExit) as exited:
        audit_main([f"--data.train_file={path}", "--output", str(tmp_path / "out.csv")])
    assert exited.value.code == 2
    with pytest.raises(UserInputError, match="no rows to audit"):
        from textcnn.training.audit import audit_command

        audit_command(["--output", str(tmp_path / "out.csv")])
