"""Texts from a file sent to the service's page: a CSV's (or TSV's) ``text`` column, each JSON Lines
object's ``text``, or plain text one per line, told apart by the file's name. The standard library
parses them, so serving needs no data extra (``textcnn predict --input`` reads more through datasets)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from textcnn.errors import UserInputError
from textcnn.inference.prediction_io import read_lines

TEXT_COLUMN = "text"
CSV_SUFFIXES, JSON_LINES_SUFFIXES = {".csv": ",", ".tsv": "\t"}, (".jsonl", ".ndjson", ".json")


def upload_texts(body: bytes, filename: str) -> list[str]:
    """The texts of an uploaded file, in file order; an empty CSV cell or JSON null is the empty text."""
    suffix = Path(filename).suffix.lower()
    if suffix not in CSV_SUFFIXES and suffix not in JSON_LINES_SUFFIXES:
        try:
            texts = list(read_lines(io.BytesIO(body)))
        except UserInputError as error:
            raise UserInputError(f"{filename}: {error}") from None
    else:
        try:
            decoded = body.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise UserInputError(f"{filename} is not valid UTF-8 ({error.reason} at byte {error.start}); "
                                 "re-encode it as UTF-8") from None
        texts = csv_texts(decoded, filename, CSV_SUFFIXES[suffix]) if suffix in CSV_SUFFIXES \
            else json_lines_texts(decoded, filename)
    if not texts:
        raise UserInputError(f"{filename} holds no texts; send a CSV with a {TEXT_COLUMN!r} column, JSON Lines "
                             "or one text per line")
    return texts


def csv_texts(decoded: str, filename: str, delimiter: str) -> list[str]:
    reader = csv.DictReader(io.StringIO(decoded, newline=""), delimiter=delimiter)
    try:
        if reader.fieldnames is None or TEXT_COLUMN not in reader.fieldnames:
            columns = ", ".join(reader.fieldnames or []) or "none"
            raise UserInputError(f"{filename} has no {TEXT_COLUMN!r} column (columns: {columns}); name the "
                                 f"column of texts {TEXT_COLUMN!r}")
        return [row[TEXT_COLUMN] or "" for row in reader]
    except csv.Error as error:
        raise UserInputError(f"{filename} line {reader.line_num} is not CSV: {error}") from None


def json_lines_texts(decoded: str, filename: str) -> list[str]:
    texts = []
    for number, line in enumerate(decoded.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserInputError(f"{filename} line {number} is not JSON ({error.msg}); send one object a line") from None
        text = row.get(TEXT_COLUMN, 0) if isinstance(row, dict) else 0
        if not isinstance(text, str) and text is not None:
            raise UserInputError(f"{filename} line {number} has no string {TEXT_COLUMN!r}; send "
                                 f'{{"{TEXT_COLUMN}": "…"}} on each line')
        texts.append(text or "")
    return texts
