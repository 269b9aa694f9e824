"""Command-line entry points: ``textcnn train | evaluate | predict`` (also ``scripts/*.py``).

Training is a ``LightningCLI``: YAML sections ``model``, ``data``, ``trainer``, ``checkpoint``,
``early_stopping`` and ``seed_everything``, each field overridable as ``--section.field=value``.
Mistakes a user can fix end as one ``error: …`` line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

from jsonargparse import ArgumentParser
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.cli import LightningCLI

from textcnn.checkpoint import data_settings_from_checkpoint, read_checkpoint
from textcnn.data import TextDataModule
from textcnn.errors import UserInputError
from textcnn.evaluation import evaluate_checkpoint
from textcnn.lit import TextCNNClassifier
from textcnn.predict import load

log = logging.getLogger("textcnn")


def _widest_kernel(kernel_sizes: list) -> int:
    return max(max(k) if isinstance(k, list) else k for k in kernel_sizes)


class SaveTokenizer(Callback):
    """Writes ``tokenizer.json`` into the checkpoint directory when training starts."""

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        directory = trainer.checkpoint_callback.dirpath if trainer.checkpoint_callback else None
        if not (trainer.is_global_zero and directory):
            return
        path = Path(directory) / "tokenizer.json"
        if path.exists() and path.read_text(encoding="utf-8") != pl_module.tokenizer_json:
            raise UserInputError(
                f"{path} already holds another tokenizer; set checkpoint.dirpath to an empty directory "
                "(or leave it unset for a new lightning_logs/version_N)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(pl_module.tokenizer_json, encoding="utf-8")


class TrainCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val_acc",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-{epoch}-{val_acc:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults({"early_stopping.monitor": "val_acc", "early_stopping.mode": "max",
                             "early_stopping.patience": 3})
        parser.link_arguments("model.network.kernel_sizes", "data.min_length", _widest_kernel, apply_on="parse")
        for name in ("vocab_size", "num_classes", "label_names", "tokenizer_json"):
            parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")


def train(argv: Optional[Sequence[str]] = None) -> dict:
    """Fit, then score the best checkpoint on the test split (validation when there is none)."""
    cli = TrainCLI(
        TextCNNClassifier,
        TextDataModule,
        run=False,
        args=argv,
        auto_configure_optimizers=False,
        seed_everything_default=42,
        trainer_defaults={"max_epochs": 10, "default_root_dir": "runs/default", "callbacks": [SaveTokenizer()]},
        parser_kwargs={"description": "Train a TextCNN from a YAML config."},
    )
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    best = cli.trainer.checkpoint_callback.best_model_path
    if not best:
        raise UserInputError("training produced no checkpoint; train for at least one epoch")
    log.info("best checkpoint: %s", best)
    split = "test" if cli.datamodule.has_test_split else "validation"
    return evaluate_checkpoint(best, split=split)


def evaluate(argv: Optional[Sequence[str]] = None) -> dict:
    """Score a checkpoint; data settings default to the ones it was trained with."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--checkpoint")
    known, _ = pre.parse_known_args(argv)
    parser = ArgumentParser(description="Evaluate a textcnn checkpoint on a dataset split.")
    parser.add_argument("--checkpoint", required=True, help="path of a .ckpt written by train")
    parser.add_argument("--split", default="test", choices=["train", "validation", "test"])
    parser.add_class_arguments(TextDataModule, "data", help="overrides of the checkpoint's data settings")
    if known.checkpoint:
        saved = data_settings_from_checkpoint(read_checkpoint(known.checkpoint))
        parser.set_defaults({f"data.{key}": value for key, value in saved.items()})
    config = parser.parse_args(argv)
    return evaluate_checkpoint(config.checkpoint, split=config.split, data_overrides=config.data.as_dict())


def _read_lines(source) -> list[str]:
    texts = []
    for number, raw in enumerate(source, start=1):
        try:
            texts.append(raw.decode("utf-8").rstrip("\r\n"))
        except UnicodeDecodeError as error:
            raise UserInputError(f"line {number} is not valid UTF-8 ({error.reason}); re-encode the file as UTF-8") from None
    return texts


def predict(argv: Optional[Sequence[str]] = None) -> list[dict]:
    parser = argparse.ArgumentParser(description="Predict labels for texts with a textcnn checkpoint.")
    parser.add_argument("--checkpoint", required=True, help="path of a .ckpt written by train")
    parser.add_argument("texts", nargs="*", help="texts to classify (default: one per line from stdin)")
    parser.add_argument("--file", help="read texts from this file, one per line ('-' for stdin)")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    texts = list(args.texts)
    if args.file == "-" or (args.file is None and not texts and not sys.stdin.isatty()):
        texts += _read_lines(sys.stdin.buffer)
    elif args.file:
        try:
            with open(args.file, "rb") as handle:
                texts += _read_lines(handle)
        except OSError as error:
            raise UserInputError(f"cannot read --file {args.file}: {error.strerror}") from None
    if not texts:
        raise UserInputError("no texts given; pass texts as arguments, --file PATH, or lines on stdin")
    results = load(args.checkpoint).predict(texts, batch_size=args.batch_size)
    for text, result in zip(texts, results):
        print(json.dumps({"text": text, **result}, ensure_ascii=False))
    return results


def _run(command: Callable[[Optional[Sequence[str]]], object], argv: Optional[Sequence[str]], print_json: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = command(argv)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    if print_json:
        print(json.dumps(result, indent=2))


def train_main(argv: Optional[Sequence[str]] = None) -> None:
    _run(train, argv, print_json=True)


def evaluate_main(argv: Optional[Sequence[str]] = None) -> None:
    _run(evaluate, argv, print_json=True)


def predict_main(argv: Optional[Sequence[str]] = None) -> None:
    _run(predict, argv, print_json=False)


COMMANDS = {"train": train_main, "evaluate": evaluate_main, "predict": predict_main}


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: textcnn {{{','.join(COMMANDS)}}} [options]   (textcnn COMMAND --help)", file=sys.stderr)
        sys.exit(2)
    COMMANDS[argv[0]](argv[1:])
