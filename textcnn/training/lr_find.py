"""``textcnn lr-find`` and ``--model.learning_rate=auto``: Lightning's learning-rate range test
(``Tuner.lr_find``; Smith 2017) over the run a config describes.

It trains for :data:`NUM_TRAINING` batches from the run's initial weights while the learning rate
rises exponentially from ``min_lr`` to ``max_lr``, and suggests a tenth of the rate at which the
smoothed loss was lowest (:func:`suggested_rate`). The test runs in a temporary directory with no checkpoints, logs or progress bar of
its own; the weights it moved are thrown away, so ``auto`` then trains the real run from the start.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from textcnn.console import known_warnings_hidden
from textcnn.errors import UserInputError
from textcnn.training.run_config import Config, get_dotted, set_dotted

log = logging.getLogger(__name__)

NUM_TRAINING, MIN_LR, MAX_LR = 300, 1e-5, 1.0  # more batches than Lightning's 100: see suggested_rate
AUTO = "auto"
PLOT_FILE = "lr_find.png"
OWN_OPTIONS = {"--num-training": True, "--min-lr": True, "--max-lr": True, "--plot": True,
               "--help": False, "-h": False}


def find_learning_rate(config: Config, chosen: set[str] = frozenset(), num_training: int = NUM_TRAINING,
                       min_lr: float = MIN_LR, max_lr: float = MAX_LR,
                       plot: Optional[Path] = None, start: Any = None) -> dict[str, Any]:
    """The range test over ``config`` (the recipe completing what ``chosen`` leaves to it), from
    ``start``'s weights where the run continues a model (:mod:`textcnn.training.init_from`): the
    suggested rate, and the loss-versus-rate plot written to ``plot`` if given."""
    from pytorch_lightning.tuner import Tuner

    from textcnn.training.build import build
    from textcnn.training.recipe import with_recipe

    if num_training < 10:
        raise UserInputError(f"--num-training must be at least 10 batches, got {num_training}")
    if not 0 < min_lr < max_lr:
        raise UserInputError(f"the range must have 0 < --min-lr < --max-lr, got {min_lr:g} and {max_lr:g}")
    with tempfile.TemporaryDirectory(prefix="textcnn-lr-find-") as scratch, known_warnings_hidden():
        run = with_recipe(config, set(chosen))
        for key, value in (("trainer.default_root_dir", scratch), ("trainer.logger", False),
                           ("trainer.enable_progress_bar", False),
                           ("data.tokenizer_cache_dir", get_dotted(run, "data.tokenizer_cache_dir")
                            or str(Path(get_dotted(config, "trainer.default_root_dir") or ".") / "tokenizers"))):
            set_dotted(run, key, value)
        cli = build(run, model_selection=False)
        if start is not None:  # a continued model's rate is the one its own weights train best at
            from textcnn.training.init_from import load_weights

            load_weights(cli.model.model, start)
        finder = Tuner(cli.trainer).lr_find(cli.model, datamodule=cli.datamodule, min_lr=min_lr, max_lr=max_lr,
                                            num_training=num_training, update_attr=False)
    if finder is None or not finder.results.get("lr"):
        raise UserInputError("the range test ran no batches; give it training data")
    rates, losses = finder.results["lr"], unbiased(finder.results["loss"])
    found = suggested_rate(rates, losses)
    if found is None:
        raise UserInputError(f"the range test ran {len(rates)} batches, too few to suggest a rate; raise "
                             "--num-training or set model.learning_rate yourself")
    rate, lowest = found
    result = {"suggested_learning_rate": rate, "lowest_loss_at": rates[lowest], "num_training": num_training,
              "min_lr": min_lr, "max_lr": max_lr, "batches_run": len(rates)}
    if plot is not None:
        result["plot"] = str(write_plot(rates, losses, rate, lowest, plot))
    return result


# Lightning's range test smooths the loss with momentum BETA and divides by 1 - BETA ** (step + 1),
# but counts ``step`` after the first update (1, not 0): its first points read about half the loss
# and rise for some fifty batches. Undone here.
BETA = 0.98


def unbiased(smoothed: Sequence[float]) -> list[float]:
    """The range test's smoothed losses with the bias correction Lightning applies one step late redone."""
    return [loss * (1 - BETA ** (index + 2)) / (1 - BETA ** (index + 1)) for index, loss in enumerate(smoothed)]


def suggested_rate(rates: Sequence[float], losses: Sequence[float], skip_begin: int = 10) -> Optional[tuple[float, int]]:
    """A tenth of the rate at which the smoothed loss is lowest, and that point's index: Smith's
    advice and fastai's ``minimum`` suggestion. (Lightning's own rule, the steepest slope per unit of
    rate, fell on noise when the loss stayed flat for the test's first hundred batches.)"""
    import torch

    loss = torch.tensor(losses, dtype=torch.float64)
    usable = torch.isfinite(loss)
    usable[:skip_begin] = False
    if int(usable.sum()) < 3:
        return None
    lowest = int(torch.where(usable, loss, torch.inf).argmin())
    return rates[lowest] / 10, lowest


def write_plot(rates: Sequence[float], losses: Sequence[float], rate: float, lowest: int, path: Path) -> Path:
    """Loss against learning rate (log axis), the lowest loss and the suggested rate marked, as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # files only: no display needed
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.2), dpi=100, layout="constrained")
    axes = figure.subplots()
    axes.plot(rates, losses, color="tab:blue")
    axes.plot([rates[lowest]], [losses[lowest]], "o", color="tab:grey", label=f"lowest loss, at {rates[lowest]:.2e}")
    axes.axvline(rate, color="tab:red", linestyle="--", label=f"suggested: a tenth of that, {rate:.2e}")
    axes.set(xscale="log", xlabel="learning rate", ylabel="training loss (smoothed)",
             title="learning-rate range test")
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def lr_find_command(argv: Sequence[str]) -> dict[str, Any]:
    """``textcnn lr-find``: the range test over the run that the training options describe."""
    from textcnn.config_loader import CommandParser, split_options
    from textcnn.training.run_config import from_command_line

    own, training_args = split_options(argv, OWN_OPTIONS)
    parser = CommandParser(prog="textcnn lr-find", description=(
        "Suggest a learning rate with Lightning's range test. Every other option is a training option "
        "(--config FILE, --section.key=value), as textcnn train takes them."))
    parser.add_argument("--num-training", type=int, default=NUM_TRAINING, help="batches the rate rises over")
    parser.add_argument("--min-lr", type=float, default=MIN_LR, help="the rate it starts at")
    parser.add_argument("--max-lr", type=float, default=MAX_LR, help="the rate it ends at")
    parser.add_argument("--plot", help=f"the loss-versus-rate plot to write (default: TRAINER.DEFAULT_ROOT_DIR/"
                                       f"{PLOT_FILE}, numbered if taken)")
    options = parser.parse_args(own)
    with known_warnings_hidden():
        config, chosen = from_command_line(training_args)
    if options.plot is not None and Path(options.plot).exists():
        raise UserInputError(f"--plot {options.plot} exists; choose another path, or move it away first")
    plot = Path(options.plot) if options.plot else _free_path(
        Path(get_dotted(config, "trainer.default_root_dir") or ".") / PLOT_FILE)
    start = None
    if config.get("init_from"):  # the rate the continued model's own weights train best at
        from textcnn.training.init_from import prepare

        config, chosen, start = prepare(config, chosen)
    result = find_learning_rate(config, chosen, options.num_training, options.min_lr, options.max_lr, plot, start)
    log.info("suggested learning rate: %.2e (train with --model.learning_rate=%.2e, or =auto); plot: %s",
             result["suggested_learning_rate"], result["suggested_learning_rate"], result["plot"])
    return result


def _free_path(path: Path) -> Path:
    """``path``, or ``path`` numbered (``lr_find-1.png``, …) when a file of that name is there."""
    candidate, number = path, 0
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def without_auto(argv: Sequence[str]) -> tuple[list[str], bool]:
    """A ``textcnn train`` command line without ``--model.learning_rate=auto`` (either spelling), and
    whether it was there."""
    args, found, items = [], False, iter(argv)
    for arg in items:
        if re.fullmatch(r"--model\.learning_rate=auto", arg.strip()):
            found = True
        elif arg == "--model.learning_rate":
            value = next(items, None)
            if value is not None and value.strip() == AUTO:
                found = True
            else:
                args.extend([arg] if value is None else [arg, value])
        else:
            args.append(arg)
    return args, found


def choose_learning_rate(config: Config, chosen: set[str], start: Any = None) -> Config:
    """``config`` with its ``model.learning_rate`` found by the range test (from ``start``'s weights
    where given), said in one log line."""
    found = find_learning_rate(config, chosen, start=start)
    rate = found["suggested_learning_rate"]
    log.info("learning rate: %.2e, found by the range test over %d batches (model.learning_rate=auto)",
             rate, found["batches_run"])
    set_dotted(config, "model.learning_rate", rate)
    return config
