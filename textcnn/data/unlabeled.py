"""The unlabelled file as a stream of texts, read again for each pass, and the digest that names
what is learnt from it (vectors, tv-embeddings) in a run's cache.

A plain text file is one text per line; a CSV, TSV, JSON Lines or parquet file gives its text column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Optional

from textcnn.errors import UserInputError

STREAMED_FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
Texts = Callable[[], Iterable[Optional[str]]]  # called again for each pass


def unlabeled_texts(path: str, text_column: str = "text") -> Texts:
    """The texts of an unlabelled file, read as a stream on each call."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserInputError(f"data.unlabeled_file {path} does not exist; give a text file (one text per line), "
                             "or a CSV, TSV, JSON Lines or parquet file with a text column")
    builder = STREAMED_FORMATS.get(file.suffix.lower())
    if builder is None:
        def lines() -> Iterator[str]:
            with open(file, encoding="utf-8", errors="replace") as handle:
                yield from (line.rstrip("\n") for line in handle)
        return lines
    import datasets

    options = {"delimiter": "\t"} if file.suffix.lower() == ".tsv" else {}
    stream = datasets.load_dataset(builder, data_files=str(file), split="train", streaming=True, **options)
    first = next(iter(stream), None)
    if first is None or text_column not in first:
        columns = ", ".join(first) if first else "none"
        raise UserInputError(f"data.unlabeled_file {path} has no column {text_column!r} (columns: {columns}); "
                             "set data.text_column, or give a text file of one text per line")
    return lambda: (row[text_column] for row in stream.select_columns([text_column]))


def hash_texts(hashed, path: str, training: Texts) -> str:
    """``hashed`` (the settings' digest so far) updated with the file's bytes and the training texts."""
    with open(Path(path).expanduser(), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hashed.update(block)
    for text in training():
        encoded = (text or "").encode("utf-8")
        hashed.update(len(encoded).to_bytes(8, "little") + encoded)
    return hashed.hexdigest()[:20]
