import os
import time
from collections import Counter

import datasets
import pytest

from textcnn.data import TextDataModule, load_dataset_dict
from textcnn.errors import UserInputError
from tests.conftest import dataset_dir


def test_label_names_come_from_the_class_label_feature(sst2_dir):
    data = TextDataModule(path=str(sst2_dir))
    assert data.label_names == ["negative", "positive"]
    assert {role: len(split) for role, split in data.splits.items()} == {"train": 6920, "validation": 872, "test": 1821}


def test_a_missing_validation_split_is_carved_from_train_stratified_and_seeded():
    trec = str(dataset_dir("trec"))
    data = TextDataModule(path=trec, label_column="coarse_label", validation_fraction=0.1, seed=7)
    train, validation = data.splits["train"], data.splits["validation"]
    assert data.num_classes == 6 and len(data.splits["test"]) == 500
    assert len(train) + len(validation) == 5452 and abs(len(validation) - 545) <= 1
    original = datasets.load_dataset(trec, split="train")["text"]
    assert Counter(train["text"]) + Counter(validation["text"]) == Counter(original)  # a partition of train
    train_share = {k: v / len(train) for k, v in Counter(train["coarse_label"]).items()}
    for label, count in Counter(validation["coarse_label"]).items():
        assert count / len(validation) == pytest.approx(train_share[label], abs=0.01)
    again = TextDataModule(path=trec, label_column="coarse_label", validation_fraction=0.1, seed=7)
    assert again.splits["validation"]["text"] == validation["text"]


def test_text_column_is_selectable():
    glue = TextDataModule(path=str(dataset_dir("glue_sst2")), text_column="sentence")
    assert glue.label_names == ["negative", "positive"] and not glue.has_test_split


def test_batches_are_padded_token_ids_with_labels(sst2_dir):
    data = TextDataModule(path=str(sst2_dir), batch_size=16, min_length=5, max_length=20)
    batch = next(iter(data.train_dataloader()))
    assert batch["input_ids"].shape[0] == 16 and 5 <= batch["input_ids"].shape[1] <= 20
    assert set(batch["labels"].tolist()) <= {0, 1}
    lengths = (batch["input_ids"] != 0).sum(dim=1)
    assert (lengths >= 1).all()


def test_the_tokenizer_is_trained_on_the_training_split_only(tmp_path):
    train = datasets.Dataset.from_dict({"text": ["alpha beta", "beta gamma"], "label": [0, 1]})
    test = datasets.Dataset.from_dict({"text": ["omega"], "label": [1]})
    train.to_parquet(str(tmp_path / "train.parquet"))
    test.to_parquet(str(tmp_path / "test.parquet"))
    train.to_parquet(str(tmp_path / "validation.parquet"))
    data = TextDataModule(path=str(tmp_path))
    assert data.tokenizer.token_to_id("beta") is not None and data.tokenizer.token_to_id("omega") is None
    assert data.label_names == ["0", "1"]  # integer labels become a ClassLabel


def test_a_given_tokenizer_json_is_used_instead_of_training_one(sst2_dir, tmp_path):
    trained = TextDataModule(path=str(sst2_dir), max_vocab_size=500)
    path = tmp_path / "tokenizer.json"
    path.write_text(trained.tokenizer_json, encoding="utf-8")
    given = TextDataModule(path=str(sst2_dir), tokenizer_path=str(path))
    assert given.vocab_size == 500
    assert given.encoded("validation")["input_ids"] == trained.encoded("validation")["input_ids"]


def test_unknown_or_empty_local_paths_are_clear_errors(tmp_path):
    with pytest.raises(UserInputError, match="no such directory"):
        TextDataModule(path=str(tmp_path / "nope")).splits
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="cannot load a dataset"):
        TextDataModule(path=str(tmp_path / "empty")).splits


def test_unknown_hub_id_offline_fails_fast():
    start = time.monotonic()
    with pytest.raises(UserInputError, match="nonexistent-org/no-such-dataset"):
        load_dataset_dict("nonexistent-org/no-such-dataset")
    assert time.monotonic() - start < 20


def test_missing_column_names_the_field_and_the_columns(sst2_dir):
    with pytest.raises(UserInputError, match=r"data.label_column 'stars'.*columns: text, label"):
        TextDataModule(path=str(sst2_dir), label_column="stars").splits


@pytest.mark.parametrize(
    "labels, message",
    [([0.5, 1.5], "fractional numbers; labels must be classes"), ([-1, 1], "negative values")],
)
def test_labels_that_are_not_class_ids_are_refused(tmp_path, labels, message):
    datasets.Dataset.from_dict({"text": ["a", "b"], "label": labels}).to_parquet(str(tmp_path / "train.parquet"))
    with pytest.raises(UserInputError, match=message):
        TextDataModule(path=str(tmp_path)).splits


def test_labels_outside_the_class_range_are_refused(tmp_path):
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("int64")})
    datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}, features=features).cast_column(
        "label", datasets.ClassLabel(names=["x", "y"])).to_parquet(str(tmp_path / "train.parquet"))
    bad = datasets.Dataset.from_dict({"text": ["c"], "label": [7]}, features=features)
    bad.to_parquet(str(tmp_path / "test.parquet"))
    with pytest.raises(UserInputError, match="outside the 2 classes"):
        TextDataModule(path=str(tmp_path)).splits


def test_bad_settings_name_the_field():
    with pytest.raises(UserInputError, match="data.batch_size"):
        TextDataModule(batch_size=0)
    with pytest.raises(UserInputError, match="data.validation_fraction"):
        TextDataModule(validation_fraction=1.0)


def test_length_batches_cover_every_row_once_and_cut_padding(sst2_dir):
    from textcnn.data.samplers import EpochShuffle, LengthBatches

    lengths = [len(ids) for ids in TextDataModule(path=str(sst2_dir)).encoded("train")["input_ids"]]
    shuffle = EpochShuffle(len(lengths), seed=3)
    batches = list(LengthBatches(lengths, 64, shuffle))
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert list(LengthBatches(lengths, 64, EpochShuffle(len(lengths), seed=3))) == batches  # same seed and epoch
    shuffle.set_epoch(1)
    assert list(LengthBatches(lengths, 64, shuffle)) != batches  # a new order every epoch

    def padded_tokens(batches):
        return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)

    random_batches = [list(shuffle)[i : i + 64] for i in range(0, len(lengths), 64)]
    assert padded_tokens(batches) < 0.7 * padded_tokens(random_batches)
    evaluation = list(LengthBatches(lengths, 512))
    assert [lengths[i] for batch in evaluation for i in batch] == sorted(lengths)


def test_loading_leaves_the_environment_and_hub_settings_as_they_were(sst2_dir):
    import huggingface_hub.constants

    environment = dict(os.environ)
    hub_settings = (datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE)
    data = TextDataModule(path=str(sst2_dir))
    assert data.num_classes == 2 and data.vocab_size > 1000
    with pytest.raises(UserInputError):  # a Hub id, offline here: refused without touching the environment
        load_dataset_dict("nonexistent-org/no-such-dataset")
    assert dict(os.environ) == environment
    assert (datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE) == hub_settings


def test_string_labels_of_any_arrow_string_type_become_classes(tmp_path, sst2_dir):
    """pandas 3 and the CSV builder of datasets write large_string columns."""
    full = datasets.load_dataset(str(sst2_dir))
    for split in ("train", "test"):
        rows = full[split].select(range(200))
        names = rows.features["label"].names
        table = {"text": rows["text"], "label": [names[label] for label in rows["label"]]}
        features = datasets.Features({"text": datasets.Value("large_string"), "label": datasets.Value("large_string")})
        datasets.Dataset.from_dict(table, features=features).to_parquet(str(tmp_path / f"{split}.parquet"))
    data = TextDataModule(path=str(tmp_path))
    assert data.label_names == ["negative", "positive"]
    labels = data.encoded("test")["labels"]
    assert set(labels) == {0, 1} and labels == [full["test"][i]["label"] for i in range(200)]


def test_label_names_reorder_and_extend_a_class_label_column_by_name(sst2_dir):
    data = TextDataModule(path=str(sst2_dir), label_names=["positive", "question", "negative"])
    plain = TextDataModule(path=str(sst2_dir))
    assert data.label_names == ["positive", "question", "negative"]
    names = plain.label_names
    assert [data.label_names[i] for i in data.splits["test"]["label"]] == [names[i] for i in plain.splits["test"]["label"]]
    with pytest.raises(UserInputError, match=r"label\(s\) 'negative'.* not in data.label_names"):
        TextDataModule(path=str(sst2_dir), label_names=["positive", "question"]).num_classes
