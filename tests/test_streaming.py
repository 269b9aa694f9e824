"""``data.streaming``: nothing needs the whole corpus in memory (slices of the real datasets)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import datasets
import pytest
import torch

import textcnn.data.sources
import textcnn.data.vocabulary
from textcnn.cli import train
from textcnn.data import TextDataModule
from textcnn.errors import UserInputError
from tests.conftest import ROOT, TINY_MODEL_ARGS, write_slice

TREC_ROWS = {"train": 2000, "test": 500}  # TREC has no validation split: streaming carves one


@pytest.fixture(scope="module")
def trec_slice(tmp_path_factory) -> Path:
    return write_slice("trec", tmp_path_factory.mktemp("trec_slice"), TREC_ROWS)


def stream(path: Path, **settings) -> TextDataModule:
    return TextDataModule(path=str(path), label_column="coarse_label", streaming=True, max_length=32, **settings)


def texts_of(split) -> list[str]:
    return [row["text"] for row in split]


@pytest.mark.slow
def test_a_tiny_model_trains_on_a_stream_and_beats_chance(trec_slice, tmp_path):
    report = train(
        ["--config", str(ROOT / "configs" / "trec.yaml"), *TINY_MODEL_ARGS, f"--data.path={trec_slice}",
         "--data.streaming=true", "--data.tokenizer_sample_size=1000", "--data.shuffle_buffer_size=500",
         "--data.bucket_by_length=true", "--trainer.max_epochs=5", f"--trainer.default_root_dir={tmp_path}"]
    )
    majority = max(Counter(datasets.load_dataset(str(trec_slice), split="test")["coarse_label"]).values())
    assert report["num_examples"] == TREC_ROWS["test"]
    assert report["accuracy"] > majority / TREC_ROWS["test"] + 0.15  # the majority class is ~23%


def test_the_tokenizer_sees_at_most_tokenizer_sample_size_texts(trec_slice, monkeypatch):
    seen = []

    def counting(texts, **settings):
        seen.extend(texts)
        return real(seen, **settings)

    real = textcnn.data.vocabulary.train_tokenizer
    monkeypatch.setattr(textcnn.data.vocabulary, "train_tokenizer", counting)
    data = stream(trec_slice, tokenizer_sample_size=300)
    assert data.vocab_size > 100 and len(seen) == 300
    train_texts = set(texts_of(data.splits["train"]))
    assert set(seen) <= train_texts  # drawn from what is left of train: never a validation text
    assert len(Counter(seen)) > 250 and seen[:50] != texts_of(data.splits["train"])[:50]  # a sample, not the head


def test_the_carved_validation_split_is_disjoint_from_train_and_deterministic(trec_slice):
    data = stream(trec_slice, validation_fraction=0.2, seed=3)
    train_texts, validation_texts = texts_of(data.splits["train"]), texts_of(data.splits["validation"])
    original = datasets.load_dataset(str(trec_slice), split="train")["text"]
    assert Counter(train_texts) + Counter(validation_texts) == Counter(original)  # a partition of train
    assert not set(train_texts) & set(validation_texts)  # a repeated text stays on one side
    assert abs(len(validation_texts) - 400) < 60
    assert texts_of(stream(trec_slice, validation_fraction=0.2, seed=3).splits["validation"]) == validation_texts
    assert texts_of(stream(trec_slice, validation_fraction=0.2, seed=4).splits["validation"]) != validation_texts


def test_epochs_are_shuffled_differently_but_reproducibly(trec_slice):
    data = stream(trec_slice, batch_size=32, shuffle_buffer_size=400)
    torch.manual_seed(11)
    loader = data.train_dataloader()

    def epoch(number: int) -> list[list[int]]:
        loader.dataset.epoch = lambda: number
        return [batch["input_ids"].tolist() for batch in loader]

    first, second = epoch(0), epoch(1)
    assert first != second and epoch(0) == first

    def rows(batches):  # token ids without the padding
        return sorted(tuple(i for i in row if i) for batch in batches for row in batch)

    assert rows(first) == rows(second)  # the same rows, in another order
    in_file_order = list(data.encoded("train"))[:32]
    assert first[0] != data.collate(in_file_order)["input_ids"].tolist()


def test_evaluation_batches_cover_the_split_once_in_length_order(trec_slice):
    data = stream(trec_slice, eval_batch_size=64)
    batches = list(data.test_dataloader())
    assert sum(len(batch["labels"]) for batch in batches) == TREC_ROWS["test"]
    lengths = [int(length) for batch in batches for length in (batch["input_ids"] != 0).sum(dim=1)]
    assert lengths == sorted(lengths)  # the whole slice fits in one pool


def test_parquet_streams_are_read_without_pre_buffering_in_small_batches(trec_slice, tmp_path, monkeypatch):
    """pyarrow's pre-buffering held hundreds of MB of a large stream (see _parquet_stream_options);
    parquet directories are streamed without it, other formats with the defaults."""
    options = textcnn.data.sources._parquet_stream_options(trec_slice)
    assert options["fragment_scan_options"].pre_buffer is False and options["batch_size"] == 1000
    csv = tmp_path / "csv"
    csv.mkdir()
    datasets.load_dataset(str(trec_slice), split="test").to_csv(str(csv / "test.csv"))
    assert textcnn.data.sources._parquet_stream_options(csv) == {}
    passed = []
    real = datasets.load_dataset
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **kw: passed.append(kw) or real(*a, **kw))
    rows = textcnn.data.sources.load_dataset_dict(str(trec_slice), streaming=True)["test"]
    assert passed[0]["batch_size"] == 1000 and sum(1 for _ in rows) == TREC_ROWS["test"]


def test_labels_out_of_range_are_reported_when_met(tmp_path):
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b"])})
    datasets.Dataset.from_dict({"text": ["x y", "y z"], "label": [0, 1]}, features=features).to_parquet(
        str(tmp_path / "train.parquet"))
    bad = datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("int64")})
    datasets.Dataset.from_dict({"text": ["x", "z"], "label": [1, -1]}, features=bad).to_parquet(
        str(tmp_path / "test.parquet"))
    data = TextDataModule(path=str(tmp_path), streaming=True)
    assert data.label_names == ["a", "b"]
    with pytest.raises(UserInputError, match=r"split 'test' has label -1 in column 'label', outside the 2 classes"):
        list(data.test_dataloader())


def test_labels_without_class_names_are_refused_for_streaming(tmp_path):
    datasets.Dataset.from_dict({"text": ["a", "b"], "label": ["pos", "neg"]}).to_parquet(str(tmp_path / "train.parquet"))
    with pytest.raises(UserInputError, match=r"data.streaming needs the classes.*ClassLabel.*data.streaming=false"):
        TextDataModule(path=str(tmp_path), streaming=True).splits


def test_bad_streaming_settings_name_the_field(trec_slice, tmp_path):
    with pytest.raises(UserInputError, match="data.tokenizer_sample_size"):
        TextDataModule(streaming=True, tokenizer_sample_size=0)
    with pytest.raises(UserInputError, match="data.num_workers"):
        TextDataModule(streaming=True, num_workers=2)
    with pytest.raises(UserInputError, match=r"data.label_column 'label' is not a column"):
        TextDataModule(path=str(trec_slice), streaming=True).splits
    with pytest.raises(UserInputError, match="trainer.max_steps"):
        train(["--config", str(ROOT / "configs" / "trec.yaml"), f"--data.path={trec_slice}", "--data.streaming=true",
               "--model.lr_schedule=cosine", f"--trainer.default_root_dir={tmp_path}"])
