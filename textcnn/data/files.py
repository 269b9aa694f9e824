"""A practitioner's own files → splits, read with ``datasets``' own builders.

Layouts: a directory with split files (``train.*``, ``validation.*`` / ``valid.*`` / ``dev.*``,
``test.*``), one folder per class (``train/pos/*.txt`` — the aclImdb and scikit-learn ``load_files``
layout), a ``save_to_disk`` directory (``Dataset`` or ``DatasetDict``), a single file (train only),
or one file per split (``data.train_file`` / ``validation_file`` / ``test_file``).

Formats, from the suffix unless ``data.format`` says: CSV, TSV, JSON Lines / JSON, parquet, Arrow,
and the fastText format (``__label__pos __label__funny some text``; ``.txt`` files whose lines start
with ``__label__`` are read as such). Every read error names the file and the fix.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Literal, Optional

import datasets

from textcnn.errors import UserInputError

log = logging.getLogger(__name__)

FileFormat = Literal["csv", "tsv", "json", "parquet", "arrow", "fasttext", "folder"]
FORMATS = ("csv", "tsv", "json", "parquet", "arrow", "fasttext", "folder")
SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "json", ".ndjson": "json",
                  ".parquet": "parquet", ".arrow": "arrow", ".txt": "fasttext", ".ft": "fasttext"}
SPLIT_STEMS = {"train": ("train",), "validation": ("validation", "valid", "val", "dev"), "test": ("test",)}
FASTTEXT_PREFIX = "__label__"
UNLABELLED_FOLDERS = ("unsup",)  # aclImdb's unlabelled reviews sit beside the class folders


def file_format(path: Path, declared: Optional[str]) -> str:
    """``declared`` (``data.format``) or the format the suffix names."""
    if declared:
        if declared not in FORMATS:
            raise UserInputError(f"data.format {declared!r} is not one of {', '.join(FORMATS)}")
        return declared
    if path.is_dir():
        return "folder"
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserInputError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}; name the file .csv, .tsv, .jsonl, "
            f".json, .parquet, .arrow or .txt (fastText), or set data.format to one of {', '.join(FORMATS)}"
        )
    return fmt


def read_file(path: Path, fmt: str, text_column: str, label_column: str, csv_delimiter: Optional[str]) -> datasets.Dataset:
    """One split from one file (or one folder per class)."""
    if not path.exists():
        raise UserInputError(f"{path} does not exist; check the data file path")
    if fmt == "folder":
        return read_class_folders(path, text_column, label_column)
    if path.is_file() and path.stat().st_size == 0:
        raise UserInputError(f"{path} is empty; it needs a header row and at least one example")
    builder, options = fmt, {}
    if fmt in ("csv", "tsv"):
        builder = "csv"
        options = {"sep": csv_delimiter or ("\t" if fmt == "tsv" else ","), "encoding": "utf-8-sig"}
        _check_header(path, options["sep"])
    elif fmt == "fasttext":
        builder = "text"
    try:
        split = datasets.load_dataset(builder, data_files={"train": str(path)}, split="train", **options)
    except Exception as error:  # datasets wraps the reader's error; its cause says what was wrong
        raise UserInputError(f"cannot read {path} as {fmt}: {_reason(error)}") from None
    try:  # the JSON reader keeps bytes that are not UTF-8, which fail only once a text is read
        split.data.validate(full=True)
    except Exception as error:  # pyarrow.ArrowInvalid
        reason = str(error).splitlines()[0].rpartition("Invalid: ")[2]
        raise UserInputError(f"cannot read {path} as {fmt}: {reason}; re-save it as UTF-8") from None
    if fmt == "fasttext":
        split = _fasttext_columns(split, path, text_column, label_column)
    if not len(split):
        raise UserInputError(f"{path} holds no examples (a header row only?); add labelled rows")
    return split


def _check_header(path: Path, delimiter: str) -> None:
    """A column named twice: the reader would rename the second (``text.1``) and train on the first."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        header = next(csv.reader(handle, delimiter=delimiter), [])
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise UserInputError(f"{path}: the header names the column {name[:80]!r} twice; rename or drop one "
                                 "so that each column has its own name")
        seen.add(name)


def _reason(error: BaseException) -> str:
    cause = error.__cause__ or error.__context__ or error
    if isinstance(cause, UnicodeDecodeError):
        return f"it is not UTF-8 ({cause.reason} at byte {cause.start}); re-save it as UTF-8"
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if "Expected" in text and "fields" in text:
        return f"{text} (a row with more fields than the header: quote fields that hold the delimiter)"
    if "corresponds to no data" in text:
        return "no rows (a header only?); add labelled rows"
    return text


def _fasttext_columns(lines: datasets.Dataset, path: Path, text_column: str, label_column: str) -> datasets.Dataset:
    """``__label__a __label__b text`` lines → text and labels: one label per line, or lists of them."""
    texts, labels = [], []
    for number, line in enumerate(lines["text"], start=1):
        words = line.split()
        if not words:
            continue
        cut = next((i for i, word in enumerate(words) if not word.startswith(FASTTEXT_PREFIX)), len(words))
        if cut == 0:
            raise UserInputError(
                f"{path} line {number} has no {FASTTEXT_PREFIX} label before its text; fastText lines read "
                f"'{FASTTEXT_PREFIX}pos some text' (or set data.format for another format)"
            )
        labels.append([word[len(FASTTEXT_PREFIX):] for word in words[:cut]])
        texts.append(" ".join(words[cut:]))
    if all(len(row) == 1 for row in labels):
        return datasets.Dataset.from_dict({text_column: texts, label_column: [row[0] for row in labels]})
    return datasets.Dataset.from_dict({text_column: texts, label_column: labels})


def read_class_folders(directory: Path, text_column: str, label_column: str) -> datasets.Dataset:
    """``directory/<class>/*.txt`` → one text per file, its folder's name as the label."""
    folders = sorted(p for p in directory.iterdir() if p.is_dir() and p.name not in UNLABELLED_FOLDERS)
    texts, labels = [], []
    for folder in folders:
        for file in sorted(folder.glob("*.txt")):
            try:
                texts.append(file.read_text(encoding="utf-8"))
            except UnicodeDecodeError as error:
                raise UserInputError(f"{file} is not UTF-8 ({error.reason}); re-save it as UTF-8") from None
            labels.append(folder.name)
    if not texts:
        raise UserInputError(
            f"{directory} has no class folders of .txt files; lay it out as {directory}/<class>/<name>.txt"
        )
    names = sorted(set(labels))
    features = datasets.Features({text_column: datasets.Value("string"), label_column: datasets.ClassLabel(names=names)})
    return datasets.Dataset.from_dict({text_column: texts, label_column: labels}, features=features)


def split_files(directory: Path) -> dict[str, Path]:
    """The split files or class-folder trees of a directory, by role; {} when it has none."""
    found: dict[str, Path] = {}
    for role, stems in SPLIT_STEMS.items():
        for stem in stems:
            candidates = [p for p in directory.iterdir() if p.stem == stem and
                          (p.suffix.lower() in SUFFIX_FORMATS or (p.is_dir() and _has_class_folders(p)))]
            if candidates:
                found[role] = sorted(candidates)[0]
                break
    return found


def _has_class_folders(directory: Path) -> bool:
    return any(child.is_dir() and any(child.glob("*.txt")) for child in directory.iterdir())


def read_layout(
    path: Optional[str],
    files: dict[str, Optional[str]],
    declared_format: Optional[str],
    text_column: str,
    label_column: str,
    csv_delimiter: Optional[str],
) -> Optional[datasets.DatasetDict]:
    """The splits of the user's own files, keyed ``train`` / ``validation`` / ``test``; None when
    ``path`` is a dataset directory that ``datasets.load_dataset`` reads as it is (e.g. a Hub-layout
    parquet copy) or a Hub id."""
    given = {role: Path(file).expanduser() for role, file in files.items() if file}
    if given:
        if "train" not in given:
            raise UserInputError("data.validation_file / data.test_file given without data.train_file; add it")
    elif path is not None and Path(path).expanduser().exists():
        local = Path(path).expanduser()
        if local.is_file():
            given = {"train": local}
        elif (local / "dataset_dict.json").exists() or (local / "state.json").exists():
            return _saved_to_disk(local)
        else:
            given = split_files(local)
            if declared_format == "folder" or (not given and _has_class_folders(local)):
                given = {"train": local}
            elif not given or all(p.suffix.lower() == ".parquet" for p in given.values()):
                return None  # what datasets reads as it is: parquet split files (features kept), Hub layouts
    else:
        return None
    splits = {}
    for role, file in given.items():
        fmt = file_format(file, "folder" if file.is_dir() else declared_format)
        splits[role] = read_file(file, fmt, text_column, label_column, csv_delimiter)
    return datasets.DatasetDict(splits)


def _saved_to_disk(directory: Path) -> datasets.DatasetDict:
    try:
        saved = datasets.load_from_disk(str(directory))
    except Exception as error:
        raise UserInputError(f"cannot load {directory} (written by save_to_disk?): {_reason(error)}") from None
    return saved if isinstance(saved, datasets.DatasetDict) else datasets.DatasetDict({"train": saved})
