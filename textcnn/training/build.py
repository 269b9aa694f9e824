"""Config → model, data and trainer: the one place that reads a training config.

:class:`TrainCLI` is a ``LightningCLI`` whose YAML sections are ``model``, ``data``, ``trainer``,
``checkpoint``, ``early_stopping`` and ``seed_everything``; it links what the data decides
(vocabulary size, classes, label names, tokenizer, pretrained vectors, multi-label) into the model,
and the widest kernel into the data module's padding. ``textcnn train``, the benchmarks and any
script that wants the objects of a config call :func:`build` instead of reading YAML themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

from pytorch_lightning import Callback, Trainer
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from textcnn.atomic import check_writable, write_text_atomic
from textcnn.config_loader import MODE as YAML_MODE
from textcnn.config_loader import excerpt
from textcnn.data.datamodule import TextDataModule
from textcnn.errors import UserInputError
from textcnn.inference.checkpoint import read_checkpoint
from textcnn.model import widest_kernel
from textcnn.training.history import History, RunLogger
from textcnn.training.callbacks import (
    BestAndLastCheckpoint,
    LatestCheckpoint,
    RandomState,
    SaveTokenizer,
    StderrProgressBar,
    StopOnNonFiniteLoss,
)
from textcnn.training.module import TextCNNClassifier

SEED = 42
TRAINER_DEFAULTS: dict[str, Any] = {
    "max_epochs": 15,  # the default recipe: configs/sst2.yaml's schedule
    "default_root_dir": "runs/default",
    "plugins": {"class_path": "textcnn.training.checkpoint_io.AtomicCheckpointIO"},
    "use_distributed_sampler": False,  # TextDataModule shards its batches itself
    # Lightning's table counts FLOPs only with an example input and showed "Total Flops 0"; the run
    # logs its own one line instead (textcnn.training.run), and --trainer.enable_model_summary=true brings it back
    "enable_model_summary": False,
}
DATA_LINKS = ("vocab_size", "num_classes", "label_names", "tokenizer_json", "pretrained_embeddings", "multi_label",
              "label_counts")


class TrainParser(LightningArgumentParser):
    """The training parser: YAML read through :mod:`textcnn.config_loader` (bounded alias expansion),
    and errors that quote a long value as an excerpt."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("parser_mode", YAML_MODE)
        super().__init__(*args, **kwargs)

    def error(self, message: str, ex: Optional[Exception] = None):
        super().error(excerpt(message), ex)


class TrainCLI(LightningCLI):
    """The training config's parser. With ``instantiate=False`` it parses and resolves the config
    (links applied on parse, resume and tokenizer settings filled in) but builds nothing. With
    ``model_selection=False`` the ``checkpoint`` and ``early_stopping`` sections still parse but add
    no callback to the trainer."""

    def __init__(self, *args: Any, instantiate: bool = True, model_selection: bool = True, **kwargs: Any):
        self.instantiate = instantiate
        self.model_selection = model_selection
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(BestAndLastCheckpoint, "checkpoint")
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
                             "early_stopping.patience": 4})
        if not self.model_selection:  # the trainer gets a callback for each key left in this list
            parser.callback_keys.clear()
        parser.link_arguments("model.network.kernel_sizes", "data.min_length", widest_kernel, apply_on="parse")
        for name in DATA_LINKS:
            parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")
        parser.add_argument("--ckpt_path", type=Optional[str], default=None,
                            help="resume training from this checkpoint, e.g. .../checkpoints/last.ckpt")
        parser.add_argument("--init_from", type=Optional[str], default=None,
                            help="start from this model's weights, tokenizer and classes (a .ckpt, a model directory "
                                 "or a Hub id) on new data, with a fresh optimizer")
        parser.add_argument("--self_training", type=Optional[bool], default=None,
                            help="with data.unlabeled_file: train a second model on the first one's confident labels "
                                 "of the unlabelled texts, kept where validation prefers it (default: below "
                                 "2,000 labelled training rows; false: never)")

    def before_instantiate_classes(self) -> None:
        """A resumed run encodes with the checkpoint's tokenizer, never a retrained one. A new one
        is kept under ``trainer.default_root_dir``, where every process of a distributed run finds it.
        A step-based learning-rate schedule on a stream (no epoch length) needs ``trainer.max_steps``."""
        checkpoint = read_checkpoint(self.config.ckpt_path) if self.config.ckpt_path else None  # refuses URLs
        if checkpoint is not None and not self.config.data.tokenizer_path:
            path = Path(self.config.ckpt_path).with_name("tokenizer.json")
            if not path.exists():  # every process may get here: each writes the same text, atomically
                write_text_atomic(path, checkpoint["tokenizer_json"])
            self.config.data.tokenizer_path = str(path)
        if self.config.trainer.use_distributed_sampler:
            raise UserInputError(
                "trainer.use_distributed_sampler is true, but textcnn's data module shards its batches across "
                "processes itself; set trainer.use_distributed_sampler=false"
            )
        schedule, max_steps = self.config.model.lr_schedule, self.config.trainer.max_steps
        if self.config.data.streaming and schedule != "constant" and max_steps in (None, -1):
            raise UserInputError(
                f"model.lr_schedule {schedule!r} needs the number of steps, and a stream's epoch "
                "length is unknown (data.streaming); set trainer.max_steps, or model.lr_schedule=constant"
            )
        if self.model_selection and self.config.checkpoint.save_last:
            self.trainer_defaults["callbacks"] = [*self.trainer_defaults.get("callbacks", []),
                                                  LatestCheckpoint(self.config.checkpoint.dirpath)]
        if self.config.trainer.enable_progress_bar is not False and not _configures_progress_bar(self.config):
            self.trainer_defaults["callbacks"] = [*self.trainer_defaults.get("callbacks", []), StderrProgressBar()]
        root = self.config.trainer.default_root_dir or "."
        if self.instantiate:  # logs, checkpoints and the tokenizer go there: find out now, not after training
            check_writable(Path(root), "trainer.default_root_dir")
            if self.config.checkpoint.dirpath:
                check_writable(Path(self.config.checkpoint.dirpath), "checkpoint.dirpath")
        if not self.config.data.tokenizer_cache_dir:
            self.config.data.tokenizer_cache_dir = str(Path(root) / "tokenizers")

    def instantiate_classes(self) -> None:
        if self.instantiate:
            super().instantiate_classes()

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Without a logger of the user's: :class:`RunLogger`, Lightning's default directory layout
        (``lightning_logs/version_N`` under ``trainer.default_root_dir``) with one row per epoch in
        ``metrics.csv``."""
        if self.config.trainer.get("logger") in (None, True):
            kwargs.setdefault("logger", RunLogger(save_dir=self.config.trainer.default_root_dir or "."))
        return super().instantiate_trainer(**kwargs)


def _configures_progress_bar(config) -> bool:
    """Whether the config's own trainer.callbacks bring a progress bar (Lightning takes one only)."""
    callbacks = config.trainer.callbacks or []
    return any("ProgressBar" in str(getattr(callback, "class_path", callback)) for callback in callbacks)


def build(
    args: Union[Sequence[str], Mapping[str, Any], None] = None,
    *,
    instantiate: bool = True,
    callbacks: Sequence[Callback] = (),
    model_selection: bool = True,
) -> TrainCLI:
    """Parse a training command line (``--config FILE`` and ``--section.key=value`` overrides; None:
    ``sys.argv``), or take a nested config mapping (:mod:`textcnn.training.run_config`), and build what it describes: ``.model``, ``.datamodule`` and ``.trainer`` of the returned CLI, its
    resolved config in ``.config``. ``callbacks`` are added to the run's own (e.g. a timer).

    ``model_selection=False`` builds a run that measures rather than picks an epoch on validation:
    no checkpoint or early-stopping callback, and ``trainer.enable_checkpointing`` off by default, so
    it can train without validation (``--trainer.limit_val_batches=0``) and keeps no checkpoint."""
    selection_defaults = {} if model_selection else {"enable_checkpointing": False}
    return TrainCLI(
        TextCNNClassifier,
        TextDataModule,
        run=False,
        args=None if args is None else (dict(args) if isinstance(args, Mapping) else list(args)),
        instantiate=instantiate,
        model_selection=model_selection,
        parser_class=TrainParser,
        auto_configure_optimizers=False,
        seed_everything_default=SEED,
        trainer_defaults={**TRAINER_DEFAULTS, **selection_defaults,
                          "callbacks": [SaveTokenizer(), RandomState(), StopOnNonFiniteLoss(), History(),
                                        *callbacks]},
        parser_kwargs={"prog": "textcnn train", "description": "Train a TextCNN from a YAML config."},
    )


def data_settings(args: Sequence[str] = ()) -> dict[str, Any]:
    """The data module's arguments as a training command line resolves them (without building it)."""
    return build(args, instantiate=False).config.data.as_dict()


def build_data(args: Sequence[str] = ()) -> TextDataModule:
    """The data module of a training command line alone, e.g. to read its splits."""
    return TextDataModule(**data_settings(args))
