"""Training callbacks: what a run writes beside its checkpoints, and what a resumed run restores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pytorch_lightning import Callback, LightningModule, Trainer

from textcnn.errors import UserInputError


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


class RandomState(Callback):
    """Saves the torch random state in every checkpoint and restores it on resume.

    Dropout draws from the global generator; restoring it makes a run resumed from a checkpoint
    continue exactly as the uninterrupted run would have (batch order has its own seeded sampler).
    """

    def state_dict(self) -> dict[str, Any]:
        state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
