"""Command-line entry points: ``textcnn train | evaluate | predict | export | serve | tune | audit | lr-find |
pretrain | push-to-hub``
(also ``scripts/*.py``).

Training is a ``LightningCLI``: YAML sections ``model``, ``data``, ``trainer``, ``checkpoint``,
``early_stopping`` and ``seed_everything``, each field overridable as ``--section.field=value``.
With ``trainer.strategy: ddp`` every process runs ``train``; only rank 0 evaluates and prints.
Mistakes a user can fix end as one ``error: …`` line on stderr and exit status 2. ``--verbose`` (any
command) shows what dependencies log and warn besides.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import importlib
import itertools
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, Optional

from jsonargparse import Namespace

from textcnn.atomic import NO_SPACE, unwritable
from textcnn.config_loader import CommandParser
from textcnn.console import quiet_dependencies, strict_json
from textcnn.errors import UserInputError, missing_extra

# Each command imports what it needs when it runs: predicting from a checkpoint never loads Lightning
# or datasets, and no command loads ONNX Runtime, FastAPI or Optuna unless it uses them.

log = logging.getLogger("textcnn")


UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS, *NO_SPACE)


def train(argv: Optional[Sequence[str]] = None) -> Optional[dict]:
    """Fit, then score the best checkpoint on the test split (validation when there is none)."""
    from textcnn.training.run import fit_and_evaluate

    return fit_and_evaluate(argv)


def evaluate(argv: Optional[Sequence[str]] = None) -> dict:
    """Score a checkpoint; data settings default to the ones it was trained with, and only the
    ``--data.*`` options given on the command line override them."""
    from textcnn.data.datamodule import TextDataModule
    from textcnn.training.evaluation import evaluate_checkpoint

    parser = CommandParser(prog="textcnn evaluate", description="Evaluate a textcnn checkpoint or model directory on a dataset split.")
    parser.add_argument("--checkpoint", required=True, action="append",
                        help="a .ckpt written by train, a model directory (export --format hf) or its Hub id; "
                             "give it more than once to score the ensemble of the models (mean probabilities)")
    parser.add_argument("--split", default="test", choices=["train", "validation", "test"])
    parser.add_argument("--device", default="cpu", help=DEVICE_HELP)
    parser.add_argument("--report", help="also write confusion.png, misclassified.csv and metrics.json to this directory")
    parser.add_argument("--save-thresholds", action="store_true",
                        help="store the validation split's risk-coverage table in the model, for predict --min-precision")
    parser.add_class_arguments(TextDataModule, "data", help="overrides of the checkpoint's data settings")
    given = parser.parse_args(argv, defaults=False)  # what the user typed, without the class defaults
    overrides = given.data.as_dict() if given.get("data") else {}
    report = evaluate_checkpoint(given.checkpoint, split=given.get("split") or "test", data_overrides=overrides,
                                 device=given.get("device") or "cpu", save_thresholds=bool(given.get("save_thresholds")),
                                 report_dir=given.get("report"))
    from textcnn.training.evaluation import log_calibration_and_abstaining

    log_calibration_and_abstaining(report)
    return report


DEVICE_HELP = "where the model runs: cpu (default), cuda, cuda:N, mps, or auto (cuda, else mps, else cpu)"
MODEL_HELP = ("a .ckpt written by train, a model directory or an ONNX directory written by export, "
              "or a Hugging Face Hub model id (owner/name); give it more than once for the ensemble of the "
              "models (their mean probabilities)")


def predict(argv: Optional[Sequence[str]] = None) -> int:
    """Label texts from arguments, a file, stdin or a dataset split; JSON lines or CSV on stdout.

    Texts are read, predicted and printed a chunk at a time, so memory does not grow with the input
    and the first predictions appear while the rest is still being read. Returns how many texts were labelled."""
    from textcnn.inference import prediction_io

    args = prediction_io.predict_parser(MODEL_HELP, DEVICE_HELP).parse_args(argv)

    if args.html:
        prediction_io.check_html_path(args)
    chunks = prediction_io.text_chunks(args)
    first = next(chunks, None)  # a source that cannot be read is refused before the model is loaded
    if first is None:
        raise UserInputError("no texts given; pass texts as arguments, --input FILE, --file PATH, --dataset PATH, "
                             "or lines on stdin")
    from textcnn.inference import load

    predictor = load(args.checkpoint, temperature=args.temperature, device=args.device)
    options = ("--min-confidence", "--min-precision")
    abstaining = predictor.abstention(args.min_confidence, args.min_precision, options) is not None  # before any text
    explaining = args.explain or bool(args.html)
    if args.html:
        from textcnn.inference.explain import html_section, html_tail
    if explaining and not hasattr(predictor, "explain"):
        raise UserInputError("--explain needs one PyTorch checkpoint (.ckpt) or model directory, not an ONNX export "
                             "or an ensemble")
    if explaining and args.top_ngrams < 1:
        raise UserInputError(f"--top-ngrams must be a positive integer, got {args.top_ngrams}")
    printer = prediction_io.PredictionPrinter(args.format, predictor.label_names, args.top_k, predictor.multi_label,
                                               explaining, abstaining)
    with contextlib.ExitStack() as stack:
        page = stack.enter_context(prediction_io.html_page(args)) if args.html else None  # written as predictions come
        count, exact = 0, True
        for texts, kept in itertools.chain([first], chunks):
            results = predictor.predict(texts, top_k=args.top_k, batch_size=args.batch_size,
                                        min_confidence=args.min_confidence, min_precision=args.min_precision)
            if explaining:
                explanations = predictor.explain(texts, batch_size=args.batch_size)
                for result, explanation in zip(results, explanations):
                    result["explanation"] = explanation.to_dict(args.top_ngrams)
                if page is not None:
                    page.write("".join(html_section(explanation, args.top_ngrams) for explanation in explanations))
                    exact = exact and all(explanation.exact for explanation in explanations)
            printer.print(texts, results, kept)
            count += len(texts)
        if page is not None:
            page.write(html_tail(exact))
    return count


def export(argv: Optional[Sequence[str]] = None) -> dict:
    """Export a checkpoint for serving without Lightning: ONNX (optionally int8), or a model directory
    (safetensors, config, tokenizer, model card) for the Hugging Face Hub. Both are checked against PyTorch."""
    parser = CommandParser(prog="textcnn export", description="Export a textcnn checkpoint to ONNX or to a model directory (--format hf).")
    parser.add_argument("--checkpoint", required=True, help="a .ckpt written by train, or a model directory")
    parser.add_argument("--format", choices=["onnx", "hf"], default="onnx",
                        help="onnx: model.onnx for ONNX Runtime; hf: model.safetensors + config.json + "
                             "tokenizer.json + README.md, the Hub's layout")
    parser.add_argument("--output", help="directory to write; unset: beside the checkpoint, NAME-onnx/ or NAME-hf/")
    parser.add_argument("--temperature", type=float, help="stored for the predictor (evaluate fits it); unset: the saved one, or 1")
    parser.add_argument("--quantize", choices=["int8"],
                        help="onnx: int8 embedding tables (ONNX Runtime dynamic quantization), a file ~3x smaller")
    parser.add_argument("--metrics", help="hf: a JSON file holding what `textcnn evaluate` printed, for the model card")
    parser.add_argument("--language", default="", help="hf: the texts' languages for the model card, e.g. en or en,fr")
    parser.add_argument("--dataset-id", default="", help="hf: the Hub id(s) of the training data, e.g. SetFit/sst2")
    parser.add_argument("--repo-id", help="hf: the Hub id (owner/name) the model card's loading example uses")
    parser.add_argument("--force", action="store_true",
                        help="hf: replace a README.md, config.json, tokenizer.json or model.safetensors in --output "
                             "that textcnn did not write (refused otherwise)")
    args = parser.parse_args(argv)
    if args.format == "onnx":
        given = [f"--{name}" for name in ("metrics", "language", "dataset-id", "repo-id")
                 if getattr(args, name.replace("-", "_"))]
        if given:
            raise UserInputError(f"{', '.join(given)} describe a model card, which --format hf writes; add --format hf")
        suffix = "-onnx" if args.quantize is None else "-int8-onnx"
        from textcnn.inference.export import export_onnx

        return export_onnx(args.checkpoint, args.output or _beside(args.checkpoint, suffix),
                           temperature=args.temperature, quantize=args.quantize)
    if args.quantize:
        raise UserInputError("--quantize applies to --format onnx; a model directory keeps float32 weights")
    from textcnn.inference.export import export_model_directory

    return export_model_directory(args.checkpoint, args.output or _beside(args.checkpoint, "-hf"),
                                  temperature=args.temperature, force=args.force, **_card_options(args))


def _beside(checkpoint: str, suffix: str) -> str:
    return str(Path(checkpoint).with_name(Path(checkpoint).stem + suffix))


def _card_options(args: Namespace) -> dict:
    """The model card's inputs given on the command line: --metrics (a file), --language, --dataset-id, --repo-id."""
    metrics = None
    if args.metrics:
        try:
            metrics = json.loads(Path(args.metrics).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UserInputError(f"cannot read --metrics {args.metrics} ({error}); pass the JSON file "
                                 "`textcnn evaluate` printed") from None
    return {"metrics": metrics, "language": _listed(args.language), "datasets": _listed(args.dataset_id),
            "repo_id": args.repo_id}


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def push_to_hub(argv: Optional[Sequence[str]] = None) -> dict:
    """Upload a checkpoint or model directory to the Hugging Face Hub as a model directory."""
    parser = CommandParser(prog="textcnn push-to-hub", description="Push a textcnn model to the Hugging Face Hub (safetensors + model card).")
    parser.add_argument("--checkpoint", required=True, help="a .ckpt written by train, or a model directory")
    parser.add_argument("--repo-id", required=True, help="the Hub repository, owner/name (created if need be)")
    parser.add_argument("--token", help="a Hub token with write access; unset: HF_TOKEN or `hf auth login`")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--temperature", type=float, help="stored for the predictor; unset: the saved one, or 1")
    parser.add_argument("--metrics", help="a JSON file holding what `textcnn evaluate` printed, for the model card")
    parser.add_argument("--language", default="", help="the texts' languages for the model card, e.g. en")
    parser.add_argument("--dataset-id", default="", help="the Hub id(s) of the training data, e.g. SetFit/sst2")
    parser.add_argument("--commit-message", default="Upload textcnn model")
    args = parser.parse_args(argv)
    from textcnn.inference.predictor import Predictor
    from textcnn.inference.loader import read_saved_model
    from textcnn.inference.saved_model import refuse_onnx

    saved = refuse_onnx(read_saved_model(args.checkpoint), "push-to-hub")
    predictor = Predictor.from_saved(saved, temperature=args.temperature)
    options = _card_options(args)
    options.pop("repo_id")
    url = predictor.push_to_hub(args.repo_id, token=args.token, private=args.private,
                                commit_message=args.commit_message, **options)
    return {"repo_id": args.repo_id, "commit": url}


def serve(argv: Optional[Sequence[str]] = None) -> None:
    """Serve a checkpoint or ONNX export over HTTP until interrupted."""
    parser = CommandParser(prog="textcnn serve", description="Serve a textcnn model over HTTP (FastAPI on uvicorn).")
    parser.add_argument("--checkpoint", required=True, action="append", help=MODEL_HELP)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-texts", type=int, default=64, help="texts per request (more: 413)")
    parser.add_argument("--max-chars", type=int, default=5000, help="characters per text (more: 413)")
    parser.add_argument("--temperature", type=float, help="divide logits by this before softmax (evaluate fits it)")
    parser.add_argument("--request-timeout", type=float, default=30.0,
                        help="seconds a prediction may take, queueing included (later: 503 with Retry-After)")
    parser.add_argument("--device", default="cpu", help=DEVICE_HELP)
    parser.add_argument("--open", action="store_true", help="open the service's page in the default browser")
    args = parser.parse_args(argv)
    from textcnn.inference import load
    from textcnn.inference.serve import serve as run_service  # fastapi and uvicorn are the [serve] extra
    run_service(load(args.checkpoint, temperature=args.temperature, device=args.device), args.host, args.port, args.max_texts, args.max_chars,
                request_timeout_s=args.request_timeout, open_browser=args.open)


def tune(argv: Optional[Sequence[str]] = None) -> dict:
    """Search hyperparameters with Optuna on the validation split; the best config is written as YAML."""
    from textcnn.training.tune import tune as search  # Optuna is the [tune] extra: imported by this command only

    return search(list(sys.argv[1:] if argv is None else argv))


def _run(command: Callable[[Optional[Sequence[str]]], object], argv: Optional[Sequence[str]], print_json: bool) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    argv = [arg for arg in argv if arg != "--verbose"]
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not verbose:
        quiet_dependencies()
    try:
        result = command(argv)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except ModuleNotFoundError as error:  # an optional dependency the command needs is not installed
        explained = missing_extra(error, f"textcnn {command.__name__.replace('_', '-')}")
        if explained is None:
            raise
        print(f"error: {explained}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:
        if error.errno not in UNWRITABLE:
            raise
        # output written by a dependency (Lightning's logger, the ONNX exporter) on a full disk or
        # into a read-only directory; textcnn's own writes say which setting to change
        where = Path(error.filename).parent if error.filename else "the output directory"
        print(f"error: {unwritable(where, error, 'the output directory (trainer.default_root_dir, --output)')}",
              file=sys.stderr)
        sys.exit(2)
    if print_json and result is not None:
        print(strict_json(result, indent=2))


def train_main(argv: Optional[Sequence[str]] = None) -> None:
    _run(train, argv, print_json=True)


def evaluate_main(argv: Optional[Sequence[str]] = None) -> None:
    _run(evaluate, argv, print_json=True)


def predict_main(argv: Optional[Sequence[str]] = None) -> None:
    _run(predict, argv, print_json=False)


def export_main(argv: Optional[Sequence[str]] = None) -> None:
    _run(export, argv, print_json=True)


def serve_main(argv: Optional[Sequence[str]] = None) -> None:
    _run(serve, argv, print_json=False)


def _delegated(module: str, command: str) -> Callable[[Optional[Sequence[str]]], dict]:
    """A command whose options and work live in ``textcnn.training.<module>``, imported when it runs."""
    def run(argv: Optional[Sequence[str]] = None) -> dict:
        entry = getattr(importlib.import_module(f"textcnn.training.{module}"), command)
        return entry(list(sys.argv[1:] if argv is None else argv))

    run.__name__, run.__doc__ = module, f"The ``textcnn {module.replace('_', '-')}`` command (:mod:`textcnn.training.{module}`)."
    return run


audit = _delegated("audit", "audit_command")  # rows whose label looks wrong: out-of-fold probabilities, cleanlab
lr_find = _delegated("lr_find", "lr_find_command")  # the learning-rate range test over the training options' run
pretrain = _delegated("pretrain", "pretrain_command")  # word vectors from unlabelled text
audit_main, lr_find_main, pretrain_main = (functools.partial(_run, command, print_json=True)
                                           for command in (audit, lr_find, pretrain))


def tune_main(argv: Optional[Sequence[str]] = None) -> None:
    _run(tune, argv, print_json=True)


def push_to_hub_main(argv: Optional[Sequence[str]] = None) -> None:
    _run(push_to_hub, argv, print_json=True)


COMMANDS = {
    "train": train_main,
    "evaluate": evaluate_main,
    "predict": predict_main,
    "export": export_main,
    "serve": serve_main,
    "tune": tune_main,
    "audit": audit_main,
    "lr-find": lr_find_main,
    "pretrain": pretrain_main,
    "push-to-hub": push_to_hub_main,
}


USAGE = """usage: textcnn {train,evaluate,predict,export,serve,tune,audit,lr-find,pretrain,push-to-hub} [options]

  train        train a TextCNN from a YAML config, then score it on the test split
  evaluate     score a checkpoint or model directory on a dataset split
  predict      label texts with a checkpoint, an export directory or a Hub model id
  export       export a checkpoint to ONNX (--quantize int8) or a model directory (--format hf)
  serve        serve a checkpoint, an export or a Hub model over HTTP
  tune         search hyperparameters on the validation split (Optuna), write the best config
  audit        find rows whose label looks wrong (k-fold textcnn probabilities, then cleanlab)
  lr-find      suggest a learning rate (Lightning's range test) and plot loss against it
  pretrain     train word vectors on unlabelled text (gensim), for --data.pretrained_vectors
  push-to-hub  upload a checkpoint or model directory to the Hugging Face Hub

textcnn COMMAND --help shows a command's options."""


def exit_after(entry: Callable[[], None]) -> NoReturn:
    """Run a command-line entry point as the whole life of the process, then end it without Python's
    teardown of the thousands of modules torch and Lightning load, which took 1.5 s on this project's
    2-core machine (scripts/benchmark_whole_command.py). Output is flushed, other threads joined and
    atexit handlers run (temporary directories, logging, locks) as at a normal exit; only the module
    teardown is skipped. A reader of stdout that leaves early (``| head``) ends the command quietly."""
    try:
        entry()
        code = 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:  # sys.exit("message"): the message on stderr and status 1, as the interpreter does
            print(stop.code, file=sys.stderr)
            code = 1
    except BrokenPipeError:
        code = 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # nobody reads what is left: point stdout at nothing so no flush fails again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = code or 1
    sys.stderr.flush()
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # what the interpreter runs at exit; os._exit skips it
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def console_main() -> NoReturn:
    """The ``textcnn`` command."""
    exit_after(main)


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return
    if not argv or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    COMMANDS[argv[0]](argv[1:])
