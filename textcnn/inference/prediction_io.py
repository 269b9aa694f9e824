"""The predict command's input and output: texts from arguments, a file, stdin, a table's column or
a dataset split, read a chunk at a time; predictions out as JSON Lines or CSV, and the ``--html``
page of explanations written as they come. Nothing here imports Lightning."""

from __future__ import annotations

import contextlib
import csv
import itertools
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Optional

from jsonargparse import Namespace

from textcnn.atomic import check_writable, refuse_overwriting_inputs, text_file_atomic
from textcnn.console import strict_json
from textcnn.errors import UserInputError

CHUNK_TEXTS = 4096  # texts read, predicted and printed at a time: memory stays flat in the input's size
MAX_LINE_BYTES = 16 * 2**20  # a --file line longer than this is not one text per line (or /dev/zero)


def read_lines(source) -> Iterator[str]:
    """The lines of a binary stream as text, one at a time, without their line ends."""
    number = 0
    while raw := source.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise UserInputError(f"line {number} is longer than {MAX_LINE_BYTES // 2**20} MiB; texts are read one per "
                                 "line: is it a text file?")
        try:
            yield raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as error:
            raise UserInputError(f"line {number} is not valid UTF-8 ({error.reason}); re-encode the file as UTF-8") from None


def check_html_path(args: Namespace) -> None:
    """Before any text is read: the --html page can be written, and is none of the inputs."""
    path = Path(args.html)
    if path.is_dir():
        raise UserInputError(f"--html {path} is a directory; give the path of the HTML file to write")
    refuse_overwriting_inputs(path, [args.file, args.input], "--html")
    check_writable(path.parent, "--html")


@contextlib.contextmanager
def html_page(args: Namespace) -> Iterator:
    """The --html page, a temporary file beside its path until the last text is in."""
    from textcnn.inference.explain import html_head

    with text_file_atomic(Path(args.html)) as page:
        page.write(html_head())
        yield page


def text_chunks(args: Namespace) -> Iterator[tuple[list[str], dict[str, list]]]:
    """The texts in chunks of at most :data:`CHUNK_TEXTS`, each with its ``--keep-columns`` of ``--input``
    (column → values in text order). Stdin typed at a terminal is answered line by line."""
    from textcnn.inference.predictor import first_surrogate

    texts = list(args.texts)
    for number, text in enumerate(texts, start=1):
        if first_surrogate(text) is not None:  # an undecodable byte of the argument (surrogateescape)
            raise UserInputError(f"text argument {number} is not valid UTF-8; pass UTF-8 text, or the texts "
                                 "in a UTF-8 file with --file")
    keep = [c for c in args.keep_columns.split(",") if c]
    if args.input:
        if texts or args.dataset or args.file:
            raise UserInputError("--input takes the texts from its file; drop the other texts, --dataset or --file")
        return column_chunks(file_rows(Path(args.input), args.text_column, keep), args.text_column, keep)
    if keep:
        raise UserInputError("--keep-columns copies columns of --input; give --input FILE")
    sources: list[Iterable[str]] = [texts]
    if args.dataset:
        rows = dataset_rows(args.dataset, args.split, args.text_column, args.limit)
        sources.append(text for chunk, _ in column_chunks(rows, args.text_column, []) for text in chunk)
    chunk_size = CHUNK_TEXTS
    if args.file == "-" or (args.file is None and not texts and not args.dataset and not sys.stdin.isatty()):
        sources.append(read_lines(sys.stdin.buffer))
        if sys.stdin.isatty():  # typed: answer each line as it comes
            chunk_size = 1
    elif args.file:
        sources.append(file_lines(args.file))
    lines = itertools.chain.from_iterable(sources)
    return ((chunk, {}) for chunk in iter(lambda: list(itertools.islice(lines, chunk_size)), []))


def file_lines(path: str) -> Iterator[str]:
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise UserInputError(f"cannot read --file {path}: {error.strerror}") from None
    with handle:
        yield from read_lines(handle)


def column_chunks(rows, column: str, keep: list[str]) -> Iterator[tuple[list[str], dict[str, list]]]:
    """A table's texts (None as "") and kept columns, :data:`CHUNK_TEXTS` rows at a time."""
    for start in range(0, len(rows), CHUNK_TEXTS):
        chunk = rows[start : start + CHUNK_TEXTS]
        yield [text or "" for text in chunk[column]], {name: chunk[name] for name in keep}


def file_rows(path: Path, column: str, keep: list[str]):
    from textcnn.data.files import file_format, read_file
    from textcnn.data.sources import check_text_column

    rows = read_file(path, file_format(path, None), column, "label", None)
    for name in [column, *keep]:
        if name not in rows.column_names:
            option = "--text-column" if name == column else "--keep-columns"
            raise UserInputError(f"{option} {name!r} is not a column of {path} (columns: {', '.join(rows.column_names)})")
    check_text_column(rows.features[column], f"--text-column {column!r}", str(path))
    return rows


def dataset_rows(path: str, split: str, column: str, limit: Optional[int]):
    from textcnn.data.sources import check_text_column, load_dataset_dict

    splits = load_dataset_dict(path)
    if split not in splits:
        raise UserInputError(f"{path} has no split {split!r} (splits: {', '.join(splits)}); set --split")
    if column not in splits[split].column_names:
        raise UserInputError(
            f"--text-column {column!r} is not a column of {path} (columns: {', '.join(splits[split].column_names)})"
        )
    if limit is not None and limit < 1:
        raise UserInputError(f"--limit must be a positive integer, got {limit}")
    rows = splits[split] if limit is None else splits[split].select(range(min(limit, len(splits[split]))))
    check_text_column(rows.features[column], f"--text-column {column!r}", f"{path} ({split})")
    return rows


def predict_parser(model_help: str, device_help: str):
    """The predict command's options."""
    from textcnn.config_loader import CommandParser

    parser = CommandParser(prog="textcnn predict", description="Predict labels for texts with a textcnn checkpoint or ONNX export.")
    parser.add_argument("--checkpoint", required=True, action="append", help=model_help)
    parser.add_argument("texts", nargs="*", default=[], help="texts to classify; none given: one per line from stdin")
    parser.add_argument("--file", help="read texts from this file, one per line ('-' for stdin)")
    parser.add_argument("--dataset", help="classify a split of this dataset (local directory or Hub id)")
    parser.add_argument("--split", default="test", help="the --dataset split")
    parser.add_argument("--input", help="classify the texts of a CSV, TSV, JSON Lines or parquet file (--text-column)")
    parser.add_argument("--text-column", default="text", help="the --input / --dataset column holding the texts")
    parser.add_argument("--keep-columns", default="", help="--input columns to copy beside each prediction, e.g. id,date")
    parser.add_argument("--limit", type=int, help="only the first N texts of the --dataset split")
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="output format")
    parser.add_argument("--top-k", type=int, help="show only the K most probable classes, most probable first")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--temperature", type=float, help="divide logits by this before softmax (evaluate fits it)")
    parser.add_argument("--min-confidence", type=float,
                        help="abstain (empty label) on texts whose largest probability is below this")
    parser.add_argument("--min-precision", type=float,
                        help="abstain below the lowest confidence at which the validation split's answered texts "
                             "reach this accuracy (e.g. 0.95)")
    parser.add_argument("--explain", action="store_true", help="add the n-grams that decided each prediction")
    parser.add_argument("--top-ngrams", type=int, default=5, help="n-grams shown per text with --explain")
    parser.add_argument("--html", help="also write the explanations, tokens highlighted, to this HTML file")
    parser.add_argument("--device", default="cpu", help=device_help)
    return parser


class PredictionPrinter:
    """Writes predictions to stdout (or ``stream``) as JSON lines or CSV, chunk after chunk (the CSV header once).

    CSV: one probability column per class in label order; with ``top_k``, label_i / probability_i pairs.
    A multi-label model's "labels" column joins the predicted set with "|" (empty: no class). When
    texts may be abstained on, an abstained text's label is empty and an "abstained" column says which."""

    def __init__(self, output_format: str, label_names: list[str], top_k: Optional[int], multi_label: bool,
                 explained: bool, abstaining: bool = False, stream=None):
        self.output_format, self.label_names, self.top_k = output_format, label_names, top_k
        self.multi_label, self.explained, self.abstaining = multi_label, explained, abstaining
        self.stream = sys.stdout if stream is None else stream  # the service's file answers: a buffer
        self.writer = csv.writer(self.stream, lineterminator="\n")
        self.header_written = False

    def print(self, texts: list[str], results: list[dict], kept: dict[str, list]) -> None:
        if self.output_format == "jsonl":
            for index, (text, result) in enumerate(zip(texts, results)):
                extra = {name: values[index] for name, values in kept.items()}
                print(strict_json({**extra, "text": text, **result}, ensure_ascii=False, default=str),
                      file=self.stream)
        else:
            self._print_csv(texts, results, kept)
        self.stream.flush()

    def _print_csv(self, texts: list[str], results: list[dict], kept: dict[str, list]) -> None:
        if not self.header_written:
            header = [*kept, "text", "labels" if self.multi_label else "label", *(["abstained"] if self.abstaining else [])]
            if self.top_k is None:
                header += self.label_names
            else:
                header += [f"{kind}_{rank}" for rank in range(1, self.top_k + 1) for kind in ("label", "probability")]
            self.writer.writerow(header + (["top_ngrams"] if self.explained else []))
            self.header_written = True
        for index, (text, result) in enumerate(zip(texts, results)):
            if self.top_k is None:
                values = [result["probabilities"][name] for name in self.label_names]
            else:
                values = [value for pair in result["probabilities"].items() for value in pair]
            if self.explained:
                values.append("; ".join(f"{g['ngram']} ({g['contribution']:+.4f})"
                                        for g in result["explanation"]["ngrams"]))
            extra = [values_[index] for values_ in kept.values()]
            label = "|".join(result["labels"]) if self.multi_label else result["label"]  # None: written empty
            abstained = [result["abstained"]] if self.abstaining else []
            self.writer.writerow([*extra, text, label, *abstained, *values])
