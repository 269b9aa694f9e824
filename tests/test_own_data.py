"""A practitioner's own data: every common file layout, a DataFrame or Python lists, built from the
real datasets, is read text for text and label for label, and trains a tiny model that beats the
majority class; bad files end in one clear line."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import datasets
import pytest

import textcnn
from tests.conftest import TINY_MODEL_ARGS, dataset_dir, write_slice
from textcnn.cli import train as train_cli
from textcnn.data import TextDataModule
from textcnn.errors import UserInputError
from textcnn.training.evaluation import evaluate_checkpoint
from textcnn.training.run_config import from_command_line

ROWS = {"train": 2000, "validation": 300, "test": 600}
TRAIN_ARGS = [*TINY_MODEL_ARGS, "--trainer.max_epochs=4", "--data.max_length=64"]


def sst2_frames() -> dict:
    """SST-2 slices as pandas DataFrames with string labels and an id column, as a user has them."""
    full = datasets.load_dataset(str(dataset_dir("sst2")))
    names = full["train"].features["label"].names
    frames = {}
    for split, count in ROWS.items():
        frame = full[split].shuffle(seed=0).select(range(count)).to_pandas()
        frame["label"] = [names[label] for label in frame["label"]]
        frame.insert(0, "id", [f"{split}-{i}" for i in range(count)])
        frames[split] = frame
    return frames


def majority_share(labels) -> float:
    return Counter(labels).most_common(1)[0][1] / len(labels)


@pytest.fixture(scope="module")
def frames():
    return sst2_frames()


def write_layout(kind: str, frames: dict, directory: Path) -> list[str]:
    """Write the SST-2 slices in one layout; return the data arguments that point at it."""
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "csv_files":
        for split in ("train", "test"):
            frames[split].to_csv(directory / f"{split}.csv", index=False)  # pandas writes a header, quotes commas
        return [f"--data.train_file={directory / 'train.csv'}", f"--data.test_file={directory / 'test.csv'}"]
    if kind == "csv_directory_with_bom":
        for split in ROWS:
            frames[split].to_csv(directory / f"{split}.csv", index=False, encoding="utf-8-sig")
        return [f"--data.path={directory}"]
    if kind == "tsv_directory":
        for split in ROWS:
            frames[split][["label", "text"]].to_csv(directory / f"{split}.tsv", index=False, sep="\t")
        return [f"--data.path={directory}"]
    if kind == "jsonl_files":
        for split in ROWS:
            frames[split].to_json(directory / f"{split}.jsonl", orient="records", lines=True)
        return [f"--data.train_file={directory / 'train.jsonl'}", f"--data.validation_file={directory / 'validation.jsonl'}",
                f"--data.test_file={directory / 'test.jsonl'}"]
    if kind == "parquet_string_labels":
        for split in ROWS:
            frames[split].to_parquet(directory / f"{split}.parquet", index=False)
        return [f"--data.path={directory}"]
    if kind == "single_csv_file":
        frames["train"].to_csv(directory / "reviews.csv", index=False)
        return [f"--data.path={directory / 'reviews.csv'}"]
    if kind == "fasttext":
        for split in ("train", "test"):
            lines = [f"__label__{label} {text}" for text, label in zip(frames[split]["text"], frames[split]["label"])]
            (directory / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [f"--data.train_file={directory / 'train.txt'}", f"--data.test_file={directory / 'test.txt'}"]
    if kind == "integer_labels_with_names":
        for split in ("train", "test"):
            frame = frames[split].assign(label=(frames[split]["label"] == "positive").astype(int))
            frame.to_csv(directory / f"{split}.csv", index=False)
        return [f"--data.path={directory}", "--data.label_names=[negative, positive]"]
    if kind == "save_to_disk":
        dataset = datasets.DatasetDict({s: datasets.Dataset.from_pandas(f, preserve_index=False) for s, f in frames.items()})
        dataset.save_to_disk(str(directory / "saved"))
        return [f"--data.path={directory / 'saved'}"]
    raise ValueError(kind)


LAYOUTS = ["csv_files", "csv_directory_with_bom", "tsv_directory", "jsonl_files", "parquet_string_labels",
           "single_csv_file", "fasttext", "integer_labels_with_names", "save_to_disk"]


@pytest.mark.parametrize("kind", LAYOUTS)
def test_each_layout_reads_every_text_with_its_label(kind, frames, tmp_path):
    config, _ = from_command_line(write_layout(kind, frames, tmp_path / "data"))
    splits = TextDataModule(**config["data"]).splits
    names = splits["train"].features["label"].names
    assert names == ["negative", "positive"]
    words = lambda text: " ".join(text.split())  # noqa: E731 (a fastText line holds a text's words, one space apart)
    given = {words(text): label for frame in frames.values() for text, label in zip(frame["text"], frame["label"])}
    for split in splits.values():
        assert [given[words(text)] for text in split["text"]] == [names[label] for label in split["label"]]
    assert len(splits["train"]) + len(splits["validation"]) in (ROWS["train"], ROWS["train"] + ROWS["validation"])
    assert kind == "single_csv_file" or len(splits["test"]) == ROWS["test"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["csv_files", "integer_labels_with_names"])  # every layout reads alike (above)
def test_a_layout_trains_a_model_that_beats_the_majority_class(kind, frames, tmp_path):
    data_args = write_layout(kind, frames, tmp_path / "data")
    report = train_cli([*TRAIN_ARGS, *data_args, f"--trainer.default_root_dir={tmp_path / 'run'}"])
    assert list(report["per_class"]) == ["negative", "positive"]
    split = "validation" if kind == "single_csv_file" else "test"
    assert report["split"] == split
    labels = frames["train" if split == "validation" else "test"]["label"]
    assert report["accuracy"] > majority_share(labels) + 0.05, report["accuracy"]


@pytest.mark.slow
def test_one_folder_per_class_from_an_imdb_slice(tmp_path):
    imdb = datasets.load_dataset(str(dataset_dir("imdb")))
    names = imdb["train"].features["label"].names
    majority = 0.0
    for split, count in (("train", 2000), ("test", 400)):
        rows = imdb[split].shuffle(seed=0).select(range(count))
        majority = majority_share(rows["label"])
        for index, (text, label) in enumerate(zip(rows["text"], rows["label"])):
            folder = tmp_path / "aclImdb" / split / names[label]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{index}_0.txt").write_text(text, encoding="utf-8")
    (tmp_path / "aclImdb" / "train" / "unsup").mkdir()
    (tmp_path / "aclImdb" / "train" / "unsup" / "0_0.txt").write_text("no label", encoding="utf-8")
    report = train_cli([*TINY_MODEL_ARGS, "--trainer.max_epochs=6", "--data.max_length=256",
                        f"--data.path={tmp_path / 'aclImdb'}", f"--trainer.default_root_dir={tmp_path / 'run'}"])
    assert report["split"] == "test" and list(report["per_class"]) == ["neg", "pos"]
    assert report["accuracy"] > majority + 0.05, report["accuracy"]


@pytest.mark.slow
def test_a_csv_alone_trains_the_default_recipe_glove_and_the_ngram_bag(frames, tmp_path):
    """No config and no model settings: what a new user runs first (2,000 training rows, with their
    own validation file: the recipe's schedule for larger sets)."""
    data_args = write_layout("csv_directory_with_bom", frames, tmp_path / "data")
    report = train_cli([*data_args, "--trainer.max_epochs=6", "--trainer.enable_progress_bar=false",
                        f"--trainer.default_root_dir={tmp_path / 'run'}"])
    predictor = textcnn.load(report["checkpoint"])
    network = predictor.model.config
    assert (network.embedding_mode, network.embed_dim, network.ngram_order) == ("non-static", 50, 2)
    assert predictor.model.ngrams is not None and predictor.max_length == 512
    assert report["accuracy"] > majority_share(frames["test"]["label"]) + 0.1, report["accuracy"]


@pytest.mark.slow
def test_python_api_trains_on_dataframes_and_on_texts_and_labels(frames, tmp_path):
    overrides = dict(arg[2:].split("=", 1) for arg in TRAIN_ARGS)  # the same run as the CLI tests, as keywords
    overrides["trainer.default_root_dir"] = str(tmp_path / "run")
    result = textcnn.train(frames["train"], test=frames["test"], **overrides)
    assert result.predictor.label_names == ["negative", "positive"]
    assert result.metrics["test"]["accuracy"] > majority_share(frames["test"]["label"]) + 0.05
    assert set(result.metrics) == {"test", "validation"} and Path(result.checkpoint).is_file()
    # scored with the run's own data module: what a fresh evaluation of the checkpoint gives
    assert result.metrics["validation"] == evaluate_checkpoint(result.checkpoint, split="validation")
    texts, labels = list(frames["train"]["text"]), list(frames["train"]["label"])
    pairs = textcnn.train((texts, labels), test=(list(frames["test"]["text"]), list(frames["test"]["label"])),
                          **overrides)
    assert pairs.metrics["test"]["accuracy"] == pytest.approx(result.metrics["test"]["accuracy"])


# -- bad files: one line naming the file, the row where it helps, and the fix --------------------------
def data_module(tmp_path, content: bytes, name: str = "train.csv", **settings) -> TextDataModule:
    path = tmp_path / name
    path.write_bytes(content)
    return TextDataModule(train_file=str(path), **settings)


@pytest.mark.parametrize("content, message", [
    (b"", "is empty; it needs a header row"),
    (b"text,label\n", "no rows"),
    (b"text,label\nfine,pos\nsplit, here,neg\n", "Expected 2 fields in line 3, saw 3"),
    (b"text,label\n\xff\xfe,pos\n", "not UTF-8"),
])
def test_unreadable_csv_files_get_one_clear_error(tmp_path, content, message):
    with pytest.raises(UserInputError, match=message) as error:
        data_module(tmp_path, content).num_classes
    assert "train.csv" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("content, message", [
    (b"text,label\ngood,pos\nfine,pos\nok,pos\n", r"holds one class only \('pos' in data.label_column 'label'\)"),
    (b"text,label,text\na,pos,b\nc,neg,d\n", "the header names the column 'text' twice"),
    (b"text,label\n,pos\n,neg\n", "'text' of .*train.csv is empty in every row"),
])
def test_data_a_classifier_cannot_learn_from_gets_one_line_saying_why(tmp_path, content, message):
    with pytest.raises(UserInputError, match=message) as error:
        data_module(tmp_path, content).num_classes
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("values, kind", [([{"title": "a", "body": "b"}, {"title": "c", "body": "d"}], "records"),
                                          ([["a", "b"], ["c"]], "lists")])
def test_a_nested_parquet_text_column_is_named_with_its_type(tmp_path, values, kind):
    path = tmp_path / "train.parquet"
    datasets.Dataset.from_dict({"text": values, "label": ["pos", "neg"]}).to_parquet(str(path))
    with pytest.raises(UserInputError, match=f"'text' of .*train.parquet holds {kind}.*not strings"):
        TextDataModule(train_file=str(path)).num_classes


def test_a_misspelt_column_lists_the_columns_found(tmp_path):
    with pytest.raises(UserInputError, match=r"'review' is not a column of .*train.csv \(columns: text, label\)"):
        data_module(tmp_path, b"text,label\nfine,pos\nbad,neg\n", text_column="review").num_classes


def test_a_test_label_absent_from_train_is_refused(tmp_path):
    (tmp_path / "test.csv").write_text("text,label\nfine,pos\nodd,neutral\n", encoding="utf-8")
    data = data_module(tmp_path, b"text,label\nfine,pos\nbad,neg\nok,pos\n", test_file=str(tmp_path / "test.csv"))
    with pytest.raises(UserInputError, match="test split has label\\(s\\) 'neutral'"):
        data.num_classes


def test_rows_without_a_label_are_dropped_and_counted(tmp_path, caplog):
    rows = b"text,label\nfine,1\nbad,\nok,0\n,1\ngood,1\nmeh,0\nnice,1\nawful,0\ngreat,1\nsad,0\n"
    data = data_module(tmp_path, rows, validation_fraction=0.34)
    with caplog.at_level("WARNING"):
        assert data.label_names == ["0", "1"]  # pandas read the column with a gap as floats: back to classes
    assert sum(len(split) for split in data.splits.values()) == 9
    assert "dropped 1 of 10 rows with no label" in caplog.text and "1 of 9 rows have an empty or missing text" in caplog.text


NULL_LABEL_TEXTS = ["good film", "bad film", "great movie", "awful movie", "fine", "dull"] * 4  # 24 rows
CLASS_LABEL = datasets.ClassLabel(names=["neg", "pos"])
LABEL_KINDS = {  # label column values of each kind, before every third row loses its label
    "int": ([1, 0] * 12, datasets.Value("int64")),
    "string": (["pos", "neg"] * 12, datasets.Value("string")),
    "bool": ([True, False] * 12, datasets.Value("bool")),
    "class_label": ([1, 0] * 12, CLASS_LABEL),
}


def write_split(path: Path, labels: list, feature) -> None:
    features = datasets.Features({"text": datasets.Value("string"), "label": feature})
    rows = datasets.Dataset.from_dict({"text": NULL_LABEL_TEXTS, "label": labels}, features=features)
    if path.suffix == ".parquet":
        rows.to_parquet(str(path))
    else:
        rows.to_json(str(path))


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
@pytest.mark.parametrize("kind", sorted(LABEL_KINDS))
@pytest.mark.parametrize("unlabelled", ["every split", "test only"])
def test_rows_without_a_label_are_dropped_from_every_split_for_every_label_type(
    tmp_path, caplog, suffix, kind, unlabelled
):
    labels, feature = LABEL_KINDS[kind]
    with_gaps = [None if index % 3 == 0 else label for index, label in enumerate(labels)]  # 8 of 24
    for split in ("train", "validation", "test"):
        gaps = unlabelled == "every split" or split == "test"
        write_split(tmp_path / f"{split}{suffix}", with_gaps if gaps else labels, feature)
    data = TextDataModule(path=str(tmp_path), max_length=16)
    with caplog.at_level("WARNING"):
        assert data.num_classes == 2
    for split in ("train", "validation", "test"):
        expected = 16 if unlabelled == "every split" or split == "test" else 24
        assert len(data.splits[split]) == expected
        assert None not in data.splits[split]["label"]
        batches = list(data.dataloader(split))
        assert sum(len(batch["labels"]) for batch in batches) == expected
    assert "test: dropped 8 of 24 rows with no label in column 'label'" in caplog.text
    assert ("train: dropped 8 of 24 rows" in caplog.text) == (unlabelled == "every split")


def test_a_stream_drops_rows_without_a_label_and_counts_them(tmp_path, caplog):
    labels, feature = LABEL_KINDS["class_label"]
    write_split(tmp_path / "train.parquet", labels, feature)
    write_split(tmp_path / "validation.parquet", labels, feature)
    write_split(tmp_path / "test.parquet", [None if i % 3 == 0 else label for i, label in enumerate(labels)], feature)
    data = TextDataModule(path=str(tmp_path), streaming=True, max_length=16, eval_batch_size=5)
    with caplog.at_level("WARNING"):
        rows = sum(len(batch["labels"]) for batch in data.test_dataloader())
    assert rows == 16
    assert "test: dropped 8 rows with no label in column 'label'" in caplog.text


@pytest.mark.slow
def test_a_run_whose_test_split_has_unlabelled_rows_trains_and_scores(tmp_path):
    labels, feature = LABEL_KINDS["string"]
    for split in ("train", "validation", "test"):
        write_split(tmp_path / f"{split}.jsonl", [None if i % 5 == 0 and split == "test" else x for i, x in
                                                   enumerate(labels)], feature)
    report = train_cli([*TINY_MODEL_ARGS, f"--data.path={tmp_path}", "--data.max_length=16", "--trainer.max_epochs=1",
                        f"--trainer.default_root_dir={tmp_path / 'run'}"])
    assert report["split"] == "test" and report["num_examples"] == 19 and 0.0 <= report["accuracy"] <= 1.0


def test_a_directory_with_no_recognised_files_says_what_it_looks_for(tmp_path):
    (tmp_path / "notes.md").write_text("hello", encoding="utf-8")
    with pytest.raises(UserInputError, match="cannot load a dataset from"):
        TextDataModule(path=str(tmp_path)).num_classes


def test_fasttext_lines_with_several_labels_are_multi_label(tmp_path):
    lines = "__label__pos __label__funny a fun film\n__label__neg dull\n__label__pos warm\n__label__neg __label__funny silly\n"
    data = data_module(tmp_path, lines.encode(), name="train.txt", validation_fraction=0.25)
    assert data.multi_label and data.label_names == ["funny", "neg", "pos"]


def test_a_label_separator_makes_a_string_column_multi_label(tmp_path):
    data = data_module(tmp_path, b"text,label\na,x|y\nb,y\nc,x\nd,y | x\n", label_separator="|",
                       validation_fraction=0.25)
    assert data.multi_label and data.label_names == ["x", "y"]


def test_unknown_file_suffixes_name_the_formats(tmp_path):
    with pytest.raises(UserInputError, match="data.format"):
        data_module(tmp_path, b"x", name="train.xlsx").num_classes



# -- predicting and scoring files with columns, with a checkpoint of an earlier release -------------------
FIXTURE_CHECKPOINT = Path(__file__).parent / "fixtures" / "textcnn-0.1.0" / "sst2_tiny.ckpt"


def test_predict_reads_a_csv_and_keeps_the_id_column(frames, tmp_path, capsys):
    from textcnn.cli import predict

    frames["test"].head(30).rename(columns={"text": "review"}).to_csv(tmp_path / "new.csv", index=False)
    assert predict(["--checkpoint", str(FIXTURE_CHECKPOINT), "--input", str(tmp_path / "new.csv"),
                    "--text-column", "review", "--keep-columns", "id", "--format", "csv"]) == 30
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["id"] for row in rows] == list(frames["test"]["id"][:30])
    assert list(rows[0]) == ["id", "text", "label", "negative", "positive"]
    expected = textcnn.load(FIXTURE_CHECKPOINT).predict(list(frames["test"]["text"][:30]))
    assert [row["label"] for row in rows] == [result["label"] for result in expected]
    assert [float(row["positive"]) for row in rows] == [result["probabilities"]["positive"] for result in expected]
    with pytest.raises(UserInputError, match=r"--keep-columns 'date' is not a column of .*new.csv \(columns: id, review, label\)"):
        predict(["--checkpoint", str(FIXTURE_CHECKPOINT), "--input", str(tmp_path / "new.csv"),
                 "--text-column", "review", "--keep-columns", "date"])


def test_evaluate_scores_a_labelled_file_with_the_checkpoints_classes(frames, tmp_path):
    from textcnn.cli import evaluate

    test = frames["test"].head(200)
    test.to_csv(tmp_path / "labelled.csv", index=False)
    report = evaluate(["--checkpoint", str(FIXTURE_CHECKPOINT), f"--data.test_file={tmp_path / 'labelled.csv'}"])
    predicted = [r["label"] for r in textcnn.load(FIXTURE_CHECKPOINT).predict(list(test["text"]))]
    assert report["num_examples"] == 200
    assert report["accuracy"] == pytest.approx(sum(p == t for p, t in zip(predicted, test["label"])) / 200)
    test.assign(label=["neutral"] + list(test["label"][1:])).to_csv(tmp_path / "odd.csv", index=False)
    with pytest.raises(UserInputError, match="odd.csv: .*'neutral'.*the model knows only these classes"):
        evaluate(["--checkpoint", str(FIXTURE_CHECKPOINT), f"--data.test_file={tmp_path / 'odd.csv'}"])


@pytest.mark.slow
def test_chinese_reviews_train_past_the_majority_class(tmp_path):
    reviews = write_slice("chnsenticorp", tmp_path / "reviews", {"train": 2500, "validation": 300, "test": 400})
    report = train_cli([*TRAIN_ARGS, f"--data.path={reviews}", "--data.max_length=128",
                        f"--trainer.default_root_dir={tmp_path / 'run'}"])
    test_labels = datasets.Dataset.from_parquet(str(reviews / "test.parquet"))["label"]
    assert report["accuracy"] > majority_share(test_labels) + 0.05, report["accuracy"]


# -- imbalanced data -------------------------------------------------------------------------------------
def test_balanced_class_weights_follow_the_training_label_counts():
    import torch

    from textcnn.training.module import TextCNNClassifier

    model = TextCNNClassifier(50, 2, ["rare", "common"], class_weights="balanced", label_counts=[100, 900])
    torch.testing.assert_close(model.loss_weight, torch.tensor([1000 / (2 * 100), 1000 / (2 * 900)]))
    logits, labels = torch.randn(8, 2), torch.tensor([0, 1, 1, 1, 0, 1, 1, 1])
    expected = torch.nn.functional.cross_entropy(logits, labels, weight=model.loss_weight)
    torch.testing.assert_close(model.loss(logits, labels), expected)
    assert TextCNNClassifier(50, 2).loss_weight is None
    with pytest.raises(UserInputError, match="2 positive numbers"):
        TextCNNClassifier(50, 2, class_weights=[1.0])
    with pytest.raises(UserInputError, match="label counts"):
        TextCNNClassifier(50, 2, class_weights="balanced")


def test_the_data_module_counts_training_labels(frames, tmp_path):
    frames["train"].to_csv(tmp_path / "train.csv", index=False)
    data = TextDataModule(train_file=str(tmp_path / "train.csv"))
    assert sum(data.label_counts) == len(data.splits["train"]) and len(data.label_counts) == 2


def test_a_replay_file_mixes_a_sample_of_earlier_rows_into_train_only(tmp_path, caplog):
    old = tmp_path / "old.jsonl"  # another format than the new data's: any training format will do
    old.write_text("".join(f'{{"text": "old review {i}", "label": "{("neg", "pos")[i % 2]}"}}\n' for i in range(300)),
                   encoding="utf-8")
    new = b"text,label\n" + b"".join(f"new review {i},{('neg', 'pos')[i % 2]}\n".encode() for i in range(100))
    with caplog.at_level("INFO", logger="textcnn"):
        data = data_module(tmp_path, new, replay_file=str(old))
        train, validation = data.splits["train"]["text"], data.splits["validation"]["text"]
    assert len(train) == 90 + 90 and sum(text.startswith("old") for text in train) == 90  # as many as the new rows
    assert not any(text.startswith("old") for text in validation)  # the checkpoint is chosen on the new data
    assert any("replay: 90 of the 300 rows of" in record.getMessage() for record in caplog.records)
    assert len(data_module(tmp_path, new, replay_file=str(old), replay_size=1000).splits["train"]) == 90 + 300
    (tmp_path / "other.csv").write_text("review,label\nfine,pos\n", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"replay_file .*other.csv has no column 'text'"):
        data_module(tmp_path, new, replay_file=str(tmp_path / "other.csv")).num_classes
    (tmp_path / "unknown.csv").write_text("text,label\nfine,neutral\n", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"replay split has label\(s\) 'neutral'"):
        data_module(tmp_path, new, replay_file=str(tmp_path / "unknown.csv")).num_classes
