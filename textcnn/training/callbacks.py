"""Training callbacks: what a run writes beside its checkpoints, and what a resumed run restores."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from pathlib import Path
from typing import Any, Optional

import torch
import torch.distributed as dist
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar

from textcnn.errors import UserInputError

log = logging.getLogger(__name__)


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


def _on_stderr(init_bar):
    """``TQDMProgressBar.init_*_tqdm`` building its bar while ``sys.stdout`` points at stderr."""

    def init(self):
        with contextlib.redirect_stdout(sys.stderr):
            return init_bar(self)

    return init


class StderrProgressBar(TQDMProgressBar):
    """Lightning's progress bar on stderr, beside the log, so that stdout holds the results alone
    (``textcnn train > metrics.json`` writes JSON). Lightning builds its bars on ``sys.stdout`` as
    it stands when each bar starts; each is built with stdout pointing at stderr."""

    init_sanity_tqdm = _on_stderr(TQDMProgressBar.init_sanity_tqdm)
    init_train_tqdm = _on_stderr(TQDMProgressBar.init_train_tqdm)
    init_validation_tqdm = _on_stderr(TQDMProgressBar.init_validation_tqdm)
    init_test_tqdm = _on_stderr(TQDMProgressBar.init_test_tqdm)
    init_predict_tqdm = _on_stderr(TQDMProgressBar.init_predict_tqdm)


class BestAndLastCheckpoint(ModelCheckpoint):
    """The training config's ``checkpoint`` section: the best epoch by ``monitor``, where an epoch
    whose validation loss is NaN or infinite is never a candidate (a diverged model can still score
    a fair ``val_acc``: the argmax of NaN logits is class 0).

    ``save_last`` asks for ``last.ckpt`` holding the latest epoch, for resuming a killed run. Since
    Lightning 2.6 ``ModelCheckpoint``'s own ``save_last`` writes it only in a step that saves a
    top-k checkpoint, i.e. the best epoch, not the latest; so this callback keeps ``save_last`` off
    and the training CLI adds a :class:`LatestCheckpoint` beside it. Public hooks only: the state key
    stays ``ModelCheckpoint``'s, so checkpoints written before this class resume with their best score.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        self.keeps_last = bool(kwargs.get("save_last"))
        kwargs["save_last"] = False
        super().__init__(*args, **kwargs)

    @property
    def state_key(self) -> str:
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._diverged(trainer):
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._diverged(trainer):
            super().on_validation_end(trainer, pl_module)

    @staticmethod
    def _diverged(trainer: Trainer) -> bool:
        loss = trainer.callback_metrics.get("val_loss")
        if loss is None or math.isfinite(float(loss)):
            return False
        if not trainer.sanity_checking:
            log.warning("epoch %d: val_loss is %s; this epoch is not a candidate for the best checkpoint",
                        trainer.current_epoch, float(loss))
        return True


class LatestCheckpoint(ModelCheckpoint):
    """``last.ckpt`` in the run's checkpoint directory, replaced every epoch: where a killed run
    resumes from (``--ckpt_path .../last.ckpt``)."""

    def __init__(self, dirpath: Optional[str] = None):
        super().__init__(dirpath=dirpath, filename="last", monitor=None, save_top_k=1, save_last=False,
                         enable_version_counter=False)


class StopOnNonFiniteLoss(Callback):
    """Ends a run whose training loss becomes NaN or infinite (diverged: the learning rate is too
    high, or the data holds something the loss cannot take) with one clear error, instead of
    training on to the end with weights that are NaN."""

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss).all():
            rate = f" (learning rate {trainer.optimizers[0].param_groups[0]['lr']:g})" if trainer.optimizers else ""
            raise UserInputError(
                f"training diverged: the training loss is {float(loss)} at epoch {trainer.current_epoch}, step "
                f"{trainer.global_step}{rate}; lower model.learning_rate or use model.optimizer=adam, and check the data"
            )


class RandomState(Callback):
    """Gives every process its own dropout stream, saves each process's torch random state in every
    checkpoint and restores it to the same process on resume.

    Dropout draws from the global generator; restoring it makes a run resumed from a checkpoint
    continue exactly as the uninterrupted run would have (batch order has its own seeded sampler).
    Lightning seeds every process of a distributed run alike, so without a re-seed the processes
    would drop the same units of their (different) examples whenever their batch shapes agree.
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # before a checkpoint is restored, which then overrides this; weights are broadcast by DDP
        if stage == "fit" and trainer.world_size > 1 and trainer.global_rank > 0:
            torch.manual_seed(torch.initial_seed() + trainer.global_rank)

    def state_dict(self) -> dict[str, Any]:
        state = self._own_state()
        if _world_size() == 1:
            return state
        states: list[Optional[dict[str, Any]]] = [None] * _world_size()
        dist.all_gather_object(states, state)  # every process saves: Lightning calls this on all ranks
        return {"ranks": states}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        states = state_dict.get("ranks", [state_dict])
        world_size, rank = _world_size(), dist.get_rank() if _world_size() > 1 else 0
        if len(states) != world_size:
            log.warning(
                "the checkpoint holds the random state of %d process(es), this run has %d: the resumed run "
                "trains on, but its dropout masks differ from those of an uninterrupted run", len(states), world_size,
            )
        self._restore(states[rank % len(states)])

    @staticmethod
    def _own_state() -> dict[str, Any]:
        state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    @staticmethod
    def _restore(state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
