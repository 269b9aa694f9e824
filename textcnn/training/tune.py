"""``textcnn tune``: hyperparameter search with Optuna on the validation split, resumable.

Every trial is a training run that :func:`~textcnn.training.build.build` makes from the same
command line as ``textcnn train`` plus the trial's values of the search space
(:mod:`~textcnn.training.search_space`). Its score is the best value of the metric the checkpoint
callback monitors (``val_acc`` by default), so the search picks what training would pick. Trials
call ``trainer.fit`` only and run without a test split: a ``data.test_file``, or a dataset
directory's test file, is never opened.

Under ``trainer.default_root_dir``/``tune``:

* ``study.db``: the Optuna study (SQLite): every trial's values, score and state. Rerunning the
  same command loads it and runs only the trials that ``--trials`` has left.
* ``best.yaml``: the whole training config with the best trial's values, for ``textcnn train --config``.
* ``trial_N/``: each trial's resolved config and logs; only the best trial keeps its checkpoint.
* ``tokenizers/``: one tokenizer per tokenizer setting, shared by the trials.

The TPE sampler is seeded; a median pruner stops a trial whose validation score falls below the
median of earlier trials at the same epoch (after the first few trials and epochs).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from jsonargparse import ArgumentError, Namespace
from pytorch_lightning import Callback, LightningModule, Trainer

from textcnn.atomic import check_writable, write_text_atomic
from textcnn.config_loader import CommandParser, split_options
from textcnn.data.files import split_files
from textcnn.errors import UserInputError
from textcnn.training.build import build
from textcnn.training.search_space import Choice, Parameter, read_search_space

log = logging.getLogger(__name__)

STUDY_NAME = "textcnn"
SAMPLER_SEED = 42
PRUNER_WARMUP_EPOCHS = 2  # never prune on the first epochs, where every run is still climbing
# What a trial needs and a training run does not: no progress bars over many runs, no last.ckpt.
# Given before the user's arguments, so a config or an override can set them back.
TRIAL_DEFAULTS = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
                  "--checkpoint.save_last=false"]


class ReportToTrial(Callback):
    """Reports the monitored validation metric to an Optuna trial after every validation epoch
    and stops training when the pruner says so.

    What ``optuna_integration.PyTorchLightningPruningCallback`` does, for ``pytorch_lightning``:
    that callback derives from ``lightning.pytorch.Callback``, which a ``pytorch_lightning``
    Trainer refuses. It stops the run with ``trainer.should_stop`` instead of raising through
    Lightning, so the trial ends like an early-stopped run; the caller then marks it pruned."""

    def __init__(self, trial: Any, monitor: str):
        self.trial, self.monitor = trial, monitor
        self.pruned_at: Optional[int] = None

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        score = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or score is None:
            return
        self.trial.report(float(score), step=trainer.current_epoch)
        if self.trial.should_prune():
            self.pruned_at = trainer.current_epoch
            trainer.should_stop = True


# tune's own options, and whether each takes a value; every other option is a training option
OWN_OPTIONS = {"--search-space": True, "--trials": True, "--timeout": True, "--sampler-seed": True,
               "--no-pruning": False, "--help": False, "-h": False}


def tune_parser() -> CommandParser:
    """tune's own options, on the same jsonargparse stack as every other command."""
    parser = CommandParser(
        prog="textcnn tune", exit_on_error=False,
        description="Search hyperparameters with Optuna on the validation split. Every other option is a "
                    "training option (--config FILE, --section.key=value), as textcnn train takes them, given to "
                    "every trial. Results go to TRAINER.DEFAULT_ROOT_DIR/tune/: study.db, best.yaml, trial_N/.",
    )
    parser.add_argument("--search-space", required=True, help="YAML of dotted config keys → {low, high, log, step} "
                        "or {choices}, e.g. configs/search_space.yaml")
    parser.add_argument("--trials", type=int, default=20,
                        help="trials in the study in all (complete, pruned or failed), counting those of earlier runs")
    parser.add_argument("--timeout", type=Optional[float], help="start no new trial after this many seconds of this run")
    parser.add_argument("--sampler-seed", type=int, default=SAMPLER_SEED, help="seed of the TPE sampler")
    parser.add_argument("--no-pruning", action="store_true", help="run every trial to its end (no median pruner)")
    return parser


def parse_options(argv: Sequence[str]) -> tuple[Namespace, list[str]]:
    """tune's own options (checked), and the training command line every trial starts from."""
    own, training_args = split_options(argv, OWN_OPTIONS)
    try:
        options = tune_parser().parse_args(own)
    except ArgumentError as error:  # one line, naming options as they are typed (--search-space, not search_space)
        message = " ".join(line.strip() for line in str(error).splitlines()[:2])
        for option in (name for name in OWN_OPTIONS if name not in ("-h", "--help")):
            dest = option.lstrip("-").replace("-", "_")
            message = re.sub(rf'(?<![\w-])"?{dest}"?(?![\w-])', option, message)
        raise UserInputError(f"textcnn tune: {message}") from None
    if options.trials < 1:
        raise UserInputError(f"--trials must be a positive integer, got {options.trials}")
    if options.timeout is not None and options.timeout <= 0:
        raise UserInputError(f"--timeout must be a positive number of seconds, got {options.timeout}")
    return options, training_args


def tune(argv: Sequence[str]) -> dict:
    """Run (or continue) the search a command line describes; returns the summary printed as JSON."""
    options, training_args = parse_options(argv)
    optuna = _import_optuna()
    parser = build([], instantiate=False).parser  # the training parser, to check values before any trial
    parser.exit_on_error = False
    base = _parse_training(parser, training_args, "the training options")
    if "ddp" in str(base.trainer.strategy):
        raise UserInputError("textcnn tune runs its trials one at a time in this process; drop trainer.strategy "
                             f"{base.trainer.strategy!r}")
    space = read_search_space(options.search_space, {key: value for key, value in base.items() if key != "config"})
    for key, parameter in space.items():
        for value in parameter.candidates:
            _parse_training(parser, [*training_args, _argument(key, value)], f"search space: {key} = {value!r}")
    root = Path(base.trainer.default_root_dir or ".")
    directory = root / "tune"
    check_writable(directory, "trainer.default_root_dir")
    directory.mkdir(parents=True, exist_ok=True)
    search = _Search(optuna, parser, training_args, base, space, directory)
    study = search.study(options, optuna)
    finished = [trial for trial in study.trials if trial.state.is_finished()]
    remaining = options.trials - len(finished)
    started = time.monotonic()
    if remaining > 0:
        log.info("tune: %d trial(s) to run (%d of --trials %d done before) in %s", remaining, len(finished),
                 options.trials, directory)
    else:
        log.info("tune: the study in %s has %d finished trial(s), --trials %d: none left to run", directory,
                 len(finished), options.trials)
    for _ in range(max(remaining, 0)):
        if options.timeout is not None and time.monotonic() - started >= options.timeout:
            log.info("tune: --timeout %g s reached; rerun the command to go on", options.timeout)
            break
        search.run_trial(study)
    return search.summary(study, time.monotonic() - started, len(finished))


def _import_optuna():
    level = logging.getLogger("optuna").level  # the caller's choice (the CLI quiets it), which Optuna's import resets
    try:
        import optuna
    except ImportError:
        raise UserInputError("textcnn tune needs Optuna; pip install 'textcnn[tune]'") from None
    if level:
        logging.getLogger("optuna").setLevel(level)
    return optuna


def _parse_training(parser, args: list[str], what: str) -> Namespace:
    """The training config of ``args``; a mistake is one line naming ``what`` and the parser's reason."""
    try:
        return parser.parse_args(args)
    except Exception as error:  # jsonargparse's ArgumentError (exit_on_error off)
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = "; ".join(lines[:1] + [line for line in lines[1:] if line.startswith(("Expected", "Given value:"))][:2])
        raise UserInputError(f"{what}: the training config refuses it ({reason})") from None


def _argument(key: str, value: Any) -> str:
    """``--key=value`` as the training command line reads it (YAML: lists as JSON, null, true)."""
    return f"--{key}={value if isinstance(value, str) else json.dumps(value)}"


class _Search:
    """One study's objective, per-trial bookkeeping and outputs."""

    def __init__(self, optuna, parser, training_args: list[str], base: Namespace, space: dict[str, Parameter],
                 directory: Path):
        self.optuna, self.parser, self.training_args, self.base = optuna, parser, training_args, base
        self.space, self.directory = space, directory
        self.monitor, self.mode = base.checkpoint.monitor, base.checkpoint.mode
        self.data_args = _without_test(base.data)
        if not base.data.tokenizer_cache_dir:  # trained once per setting, not once per trial
            self.data_args.append(f"--data.tokenizer_cache_dir={directory / 'tokenizers'}")

    # -- the study -------------------------------------------------------------------------------
    def study(self, options: Namespace, optuna) -> Any:
        """The study in ``study.db``, created or loaded; refuses one started with other settings."""
        storage = f"sqlite:///{(self.directory / 'study.db').absolute()}"
        direction = "maximize" if self.mode == "max" else "minimize"
        study = optuna.create_study(study_name=STUDY_NAME, storage=storage, load_if_exists=True, direction=direction)
        settings = {"training_args": self.training_args,
                    "search_space": {key: parameter.describe() for key, parameter in self.space.items()}}
        if not study.trials and not study.user_attrs:
            for name, value in settings.items():
                study.set_user_attr(name, value)
        for name, value in settings.items():
            if study.user_attrs.get(name) != value:
                raise UserInputError(
                    f"{self.directory / 'study.db'} holds a study of other {name.replace('_', ' ')} "
                    f"({study.user_attrs.get(name)}); rerun the command that started it, or start a new study with "
                    "another --trainer.default_root_dir (or delete that study.db)"
                )
        for trial in study.trials:  # left running by a run that was killed: it never finishes now
            if trial.state == optuna.trial.TrialState.RUNNING:
                study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
                log.info("trial %d was interrupted; recorded as failed", trial.number)
        # reseeded by the number of trials so far: a resumed study draws new values, not the first run's again
        startup = min(10, max(3, options.trials // 3))
        study.sampler = optuna.samplers.TPESampler(seed=options.sampler_seed + len(study.trials),
                                                   n_startup_trials=startup)
        study.pruner = (optuna.pruners.NopPruner() if options.no_pruning else
                        optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=PRUNER_WARMUP_EPOCHS))
        return study

    def run_trial(self, study: Any) -> None:
        """Ask the study for a trial, train it and tell the study how it ended. A trial whose training
        fails (e.g. diverges) is recorded as failed and the search goes on; a mistake in the
        config ends the search."""
        states = self.optuna.trial.TrialState
        trial = study.ask()
        try:
            state, value = self.objective(trial)
        except BaseException:
            study.tell(trial, state=states.FAIL)
            raise
        self.after_trial(study, study.tell(trial, value, state=getattr(states, state)))

    def objective(self, trial: Any) -> tuple[str, Optional[float]]:
        """Train one trial: ("COMPLETE", its best validation score), ("PRUNED", None) or ("FAIL", None)."""
        values = {key: parameter.suggest(trial) for key, parameter in self.space.items()}
        run_dir = self.directory / f"trial_{trial.number}"
        trial.set_user_attr("run_dir", str(run_dir))
        reporter = ReportToTrial(trial, self.monitor)
        cli = build([*TRIAL_DEFAULTS, *self.training_args, *self.data_args,
                     *(_argument(key, value) for key, value in values.items()),
                     f"--trainer.default_root_dir={run_dir}"], callbacks=[reporter])
        try:
            cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        except UserInputError as error:  # raised in training (e.g. diverged), not by the config
            trial.set_user_attr("error", str(error))
            return "FAIL", None
        checkpoint = cli.trainer.checkpoint_callback
        trial.set_user_attr("epochs", cli.trainer.current_epoch)
        trial.set_user_attr("checkpoint", checkpoint.best_model_path)
        if reporter.pruned_at is not None:
            trial.set_user_attr("pruned_at_epoch", reporter.pruned_at)
            return "PRUNED", None
        if checkpoint.best_model_score is None:
            trial.set_user_attr("error", f"no {self.monitor} was logged; train for at least one epoch with validation")
            return "FAIL", None
        return "COMPLETE", float(checkpoint.best_model_score)

    def after_trial(self, study: Any, trial: Any) -> None:
        """One progress line per trial; keep only the best trial's checkpoint; best.yaml up to date."""
        best = self._best(study)
        self._remove_checkpoints(best)
        if best is not None and best.number == trial.number:
            self._write_best(best, study)
        state = trial.state.name.lower()
        if state == "pruned":
            state += f" at epoch {trial.user_attrs.get('pruned_at_epoch')}"
        score = trial.value if trial.value is not None else self._last_report(trial)
        scored = f", {self.monitor} {score:.4f}" if score is not None else ""
        failed = f" ({trial.user_attrs.get('error', '')})" if trial.state.name == "FAIL" else ""
        so_far = f"best {best.value:.4f} (trial {best.number})" if best is not None else "no complete trial yet"
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        log.info("trial %d %s%s%s; %s; %.0f s; %s", trial.number, state, scored, failed, so_far, seconds,
                 ", ".join(f"{key}={_short(value)}" for key, value in self._values(trial).items()))

    # -- outputs ---------------------------------------------------------------------------------
    def summary(self, study: Any, seconds: float, finished_before: int) -> dict:
        best = self._best(study)
        counts = {state: sum(trial.state.name == state.upper() for trial in study.trials)
                  for state in ("complete", "pruned", "fail")}
        if best is None:
            raise UserInputError(
                f"no trial completed ({counts['pruned']} pruned, {counts['fail']} failed; {self.directory / 'study.db'} "
                "holds them); check the training options, narrow the search space or raise --trials"
            )
        self._write_best(best, study)
        checkpoint = best.user_attrs.get("checkpoint")
        finished = counts["complete"] + counts["pruned"] + counts["fail"]
        return {
            "monitor": self.monitor,
            "best_score": best.value,
            "best_trial": best.number,
            "best_params": self._values(best),
            "best_config": str(self.directory / "best.yaml"),
            "best_checkpoint": checkpoint if checkpoint and Path(checkpoint).exists() else None,
            "study": str(self.directory / "study.db"),
            "trials": {"complete": counts["complete"], "pruned": counts["pruned"], "failed": counts["fail"],
                       "run_now": finished - finished_before},
            "seconds": round(seconds, 1),
        }

    def _write_best(self, best: Any, study: Any) -> None:
        values = self._values(best)
        config = self.parser.parse_args([*self.training_args, *(_argument(k, v) for k, v in values.items())])
        header = (f"# The best of {len(study.trials)} trial(s) of textcnn tune: trial {best.number}, {self.monitor} "
                  f"{best.value:.4f} on validation.\n# Searched: {', '.join(values)}. Train it with: "
                  f"textcnn train --config {self.directory / 'best.yaml'}\n")
        write_text_atomic(self.directory / "best.yaml", header + self.parser.dump(config))

    def _values(self, trial: Any) -> dict[str, Any]:
        """The trial's config values (a choice as the value itself, not its stored label)."""
        return {key: (self.space[key].value(label) if isinstance(self.space.get(key), Choice) else label)
                for key, label in trial.params.items()}

    def _best(self, study: Any) -> Any:
        complete = [trial for trial in study.trials if trial.state.name == "COMPLETE"]
        if not complete:
            return None
        return (max if self.mode == "max" else min)(complete, key=lambda trial: trial.value)

    def _remove_checkpoints(self, best: Any) -> None:
        keep = Path(best.user_attrs.get("checkpoint", "")) if best is not None else None
        for path in self.directory.glob("trial_*/**/*.ckpt"):
            if keep is None or path.resolve() != keep.resolve():
                path.unlink(missing_ok=True)

    @staticmethod
    def _last_report(trial: Any) -> Optional[float]:
        reports = trial.intermediate_values
        return reports[max(reports)] if reports else None


def _without_test(data: Namespace) -> list[str]:
    """Data options that leave the test split out of a trial: no ``data.test_file``, and for a
    directory of split files only its train and validation files. (A Hub id or a ``save_to_disk``
    folder is loaded whole by ``datasets``; its test split is then never tokenized or scored.)"""
    args = ["--data.test_file=null"]
    local = Path(data.path).expanduser() if data.path and not data.train_file else None
    if local is None or not local.is_dir() or any((local / name).exists() for name in ("dataset_dict.json", "state.json")):
        return args
    found = split_files(local)
    if "test" in found and "train" in found:
        args.append(f"--data.train_file={found['train']}")
        if "validation" in found:
            args.append(f"--data.validation_file={found['validation']}")
    return args


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
