"""``textcnn audit``: which labels of a labelled file look wrong.

Every row gets out-of-fold probabilities — the file dealt into ``folds`` stratified folds
(scikit-learn's ``StratifiedKFold``), a model trained on the other folds (the default recipe, or
``config``, through :class:`textcnn.sklearn.TextCNNClassifier`) scores each fold — and cleanlab's
confident learning (``cleanlab.filter.find_label_issues``) picks the rows whose given label the
model contradicts, ranked by cleanlab's label quality score (lowest first: the most suspicious).
Rows whose text is the same as another's (after case folding and collapsing whitespace) but whose
label differs are listed too: one of the two labels is wrong whatever the model thinks.
"""

from __future__ import annotations

import csv
import logging
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from textcnn.atomic import text_file_atomic, unwritable
from textcnn.errors import UserInputError, missing_extra

log = logging.getLogger(__name__)

DEFAULT_FOLDS = 5
MIN_ROWS_PER_CLASS = 2  # a class needs a row in two folds at least to be scored out of fold


@dataclass
class AuditReport:
    """What :func:`audit` found. ``suspects``: one dict per flagged row, most suspicious first."""

    rows: int
    folds: int
    seconds: float
    suspects: list[dict[str, Any]] = field(default_factory=list)
    probabilities: Optional[np.ndarray] = None  # (rows, classes) out of fold, in ``classes`` order
    classes: list[Any] = field(default_factory=list)

    def summary(self) -> str:
        share = 100 * len(self.suspects) / self.rows if self.rows else 0.0
        return (f"audit: {self.rows:,} rows checked, {len(self.suspects):,} suspected ({share:.1f}%), "
                f"{self.folds} folds, {self.seconds:.0f} s")


def audit(texts: Sequence[str], labels: Sequence[Any], folds: int = DEFAULT_FOLDS, seed: int = 0,
          config: Optional[str] = None, overrides: Optional[dict[str, Any]] = None, progress: bool = False,
          rows: Optional[Sequence[int]] = None) -> AuditReport:
    """Audit ``labels`` of ``texts``; ``rows`` are the row numbers the report gives (default 0, 1, …).
    ``config`` / ``overrides``: the training run of every fold, as :class:`TextCNNClassifier` takes them."""
    try:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ModuleNotFoundError as error:
        raise (missing_extra(error, "textcnn audit") or error) from None
    started = time.monotonic()
    texts, labels = list(texts), np.asarray(labels)
    rows = list(range(len(texts))) if rows is None else list(rows)
    classes, ids = _check(labels, folds)
    probabilities = out_of_fold_probabilities(texts, ids, folds, seed, config, overrides, progress)
    flagged = find_label_issues(labels=ids, pred_probs=probabilities, return_indices_ranked_by="self_confidence")
    quality = get_label_quality_scores(ids, probabilities)
    duplicates = conflicting_duplicates(texts, ids)
    order = list(flagged) + sorted((i for i in duplicates if i not in set(flagged)), key=lambda i: quality[i])
    suspects = []
    for index in order:
        issue = [name for name, found in (("label", index in set(flagged)), ("duplicate", index in duplicates)) if found]
        suspects.append({
            "row": rows[index], "text": texts[index], "label": classes[ids[index]],
            "suggested_label": classes[int(probabilities[index].argmax())],
            "label_quality": round(float(quality[index]), 6), "issue": "+".join(issue),
            "conflicting_rows": " ".join(str(rows[other]) for other in duplicates.get(index, [])),
        })
    return AuditReport(len(texts), folds, time.monotonic() - started, suspects, probabilities, classes.tolist())


def _check(labels: np.ndarray, folds: int) -> tuple[np.ndarray, np.ndarray]:
    if folds < 2:
        raise UserInputError(f"--folds must be at least 2 (default {DEFAULT_FOLDS}), got {folds}")
    if labels.ndim != 1:
        raise UserInputError("the audit takes one label per row (single-label data); multi-label is not audited")
    classes, ids = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise UserInputError(f"every row has the label {classes[0]!r}; an audit needs two classes or more")
    counts = np.bincount(ids)
    rare = [str(classes[i]) for i in np.flatnonzero(counts < max(MIN_ROWS_PER_CLASS, folds))]
    if rare:
        raise UserInputError(f"the class(es) {', '.join(rare[:5])} have fewer rows than --folds {folds}; every class "
                             "needs a row in each fold: lower --folds or drop those rows")
    return classes, ids


def out_of_fold_probabilities(texts: list[str], ids: np.ndarray, folds: int, seed: int, config: Optional[str],
                              overrides: Optional[dict[str, Any]], progress: bool) -> np.ndarray:
    """(rows, classes) probabilities, each row scored by the model trained on the other folds."""
    from sklearn.model_selection import StratifiedKFold
    from tqdm.auto import tqdm

    from textcnn.sklearn import TextCNNClassifier

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probabilities = np.zeros((len(texts), int(ids.max()) + 1))
    text_array = np.asarray(texts, dtype=object)
    bar = tqdm(total=folds, desc="audit folds", unit="fold", disable=not progress)
    for fold, (train, held_out) in enumerate(splitter.split(text_array, ids)):
        model = TextCNNClassifier(config=config, seed=seed + fold, overrides=overrides)
        model.fit(text_array[train], ids[train])
        probabilities[np.ix_(held_out, model.classes_)] = model.predict_proba(text_array[held_out])
        bar.update()
    bar.close()
    return probabilities


def conflicting_duplicates(texts: Sequence[str], ids: np.ndarray) -> dict[int, list[int]]:
    """Each row whose text (case-folded, whitespace collapsed) another row repeats with another label,
    with those other rows."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, text in enumerate(texts):
        groups[re.sub(r"\s+", " ", text).strip().casefold()].append(index)
    found: dict[int, list[int]] = {}
    for members in groups.values():
        if len(members) > 1 and len({int(ids[i]) for i in members}) > 1:
            for index in members:
                found[index] = [other for other in members if ids[other] != ids[index]]
    return found


def write_report(report: AuditReport, path: Path, extra: Optional[dict[str, list[Any]]] = None) -> None:
    """The suspects as CSV, most suspicious first; ``extra``: columns of the input to keep, by input row."""
    columns = ["row", "text", "label", "suggested_label", "label_quality", "issue", "conflicting_rows", *(extra or {})]
    try:
        with text_file_atomic(path) as file:
            writer = csv.DictWriter(file, fieldnames=columns)
            writer.writeheader()
            for suspect in report.suspects:
                writer.writerow({**suspect, **{name: values[suspect["row"]] for name, values in (extra or {}).items()}})
    except OSError as error:
        raise unwritable(path.parent, error, "--output") from None


# the command's own options (name → takes a value); every other option is a data or training setting
OWN_OPTIONS = {"--output": True, "--folds": True, "--seed": True, "--config": True, "--keep-columns": True,
               "--help": False, "-h": False}
# the data settings that say which rows to read: used to read the file, not passed to the folds' runs
READ_KEYS = ("data.train_file", "data.path", "data.train_split", "data.text_column", "data.label_column",
             "data.format", "data.csv_delimiter")


def audit_command(argv: Sequence[str]) -> dict[str, Any]:
    """``textcnn audit``: read the labelled rows the ``--data.*`` options name, audit them, write ``--output``."""
    from textcnn.config_loader import CommandParser, dotted_settings, split_options

    own, rest = split_options(argv, OWN_OPTIONS)
    parser = CommandParser(prog="textcnn audit", description=(
        "Find rows whose label looks wrong: out-of-fold probabilities of textcnn models (stratified k-fold), "
        "then cleanlab's confident learning; also texts repeated with another label. Give the rows as training "
        "takes them (--data.train_file=FILE, --data.text_column, --data.label_column, or --data.path=DIR); every "
        "other --section.key=value option goes to each fold's training run."))
    parser.add_argument("--output", required=True, help="the CSV to write: one row per suspect, most suspicious first")
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="folds of the cross-validation")
    parser.add_argument("--seed", type=int, default=0, help="seeds the folds and each fold's run")
    parser.add_argument("--config", help="a training YAML for every fold (default: the default recipe)")
    parser.add_argument("--keep-columns", default="", help="input columns to copy into the output, comma-separated")
    args = parser.parse_args(own)
    settings = dotted_settings(rest)
    output = Path(args.output)
    keep = [name for name in args.keep_columns.split(",") if name]
    texts, labels, rows, extra = read_rows(settings, keep)
    from textcnn.atomic import refuse_overwriting_inputs

    refuse_overwriting_inputs(output, [settings.get("data.train_file")], "--output")
    overrides = {key: value for key, value in settings.items() if key not in READ_KEYS}
    report = audit(texts, labels, args.folds, args.seed, args.config, overrides, progress=True, rows=rows)
    write_report(report, output, extra)
    log.info("%s; suspects in %s", report.summary(), output)
    return {"rows": report.rows, "suspected": len(report.suspects), "folds": report.folds,
            "conflicting_duplicates": sum("duplicate" in s["issue"] for s in report.suspects),
            "seconds": round(report.seconds, 1), "output": str(output)}


def read_rows(settings: dict[str, Any], keep: list[str]) -> tuple[list[str], list[Any], list[int], dict[str, list]]:
    """The texts, labels and row numbers (0-based, in the input's order) of the rows to audit; rows
    without a label are left out, and ``keep``'s columns by row."""
    from textcnn.data.files import file_format, read_file
    from textcnn.data.sources import check_text_column, load_dataset_dict

    text_column = settings.get("data.text_column", "text")
    label_column = settings.get("data.label_column", "label")
    if settings.get("data.train_file"):
        path = Path(settings["data.train_file"])
        table = read_file(path, file_format(path, settings.get("data.format")), text_column, label_column,
                          settings.get("data.csv_delimiter"))
        where = str(path)
    elif settings.get("data.path"):
        splits, where = load_dataset_dict(str(settings["data.path"])), str(settings["data.path"])
        split = settings.get("data.train_split", "train")
        if split not in splits:
            raise UserInputError(f"{where} has no split {split!r} (splits: {', '.join(splits)}); set --data.train_split")
        table = splits[split]
    else:
        raise UserInputError("no rows to audit: give --data.train_file=FILE (CSV, TSV, JSON Lines, parquet, …) "
                             "or --data.path=DIR")
    for name, option in ((text_column, "--data.text_column"), (label_column, "--data.label_column"),
                         *((column, "--keep-columns") for column in keep)):
        if name not in table.column_names:
            raise UserInputError(f"{option} {name!r} is not a column of {where} (columns: {', '.join(table.column_names)})")
    check_text_column(table.features[text_column], f"--data.text_column {text_column!r}", where)
    names = getattr(table.features[label_column], "names", None)  # a ClassLabel: its names, not its ids
    texts, labels, rows = [], [], []
    for row, (text, label) in enumerate(zip(table[text_column], table[label_column])):
        if label is not None:
            texts.append(text or "")
            labels.append(names[label] if names else label)
            rows.append(row)
    if len(rows) < len(table):
        log.warning("%s: %d rows with no label are not audited", where, len(table) - len(rows))
    return texts, labels, rows, {name: table[name] for name in keep}
