"""A callback for tests/test_ddp.py: which examples each DDP process trained and validated on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer

from textcnn.tokenizer import PAD_ID


class RecordShares(Callback):
    """Writes ``rank-<global rank>.json`` into ``directory`` when fitting ends: per epoch, the
    dataset indices of every batch this process trained and validated on, checked against the
    batches it was really given (``mismatches`` counts batches whose tensors differ)."""

    def __init__(self, directory: str):
        self.directory = Path(directory)
        self.seen: dict[str, dict[int, list[list[int]]]] = {"train": {}, "validation": {}}
        self.mismatches = 0
        self._pending: list[list[int]] = []

    def _start(self, loader) -> None:
        self._pending = list(loader.batch_sampler)  # the batches this epoch's loader yields, in order

    def _check(self, trainer: Trainer, role: str, batch: dict[str, torch.Tensor]) -> None:
        indices = self._pending.pop(0)
        data = trainer.datamodule
        expected = data.collate([data.encoded(role)[i] for i in indices])
        if not all(torch.equal(batch[key], expected[key]) for key in ("input_ids", "labels")):
            self.mismatches += 1
        self.seen[role].setdefault(trainer.current_epoch, []).append(indices)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer.train_dataloader)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._check(trainer, "train", batch)

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._start(trainer.val_dataloaders)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if not trainer.sanity_checking:
            self._check(trainer, "validation", batch)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "seen": self.seen,
            "mismatches": self.mismatches,
            "tokenizer_sha256": hashlib.sha256(pl_module.tokenizer_json.encode()).hexdigest(),
            "weights_sha256": hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes()
                                                      for p in pl_module.parameters())).hexdigest(),
        }
        (self.directory / f"rank-{trainer.global_rank}.json").write_text(json.dumps(record), encoding="utf-8")


class RecordStreamShares(Callback):
    """Writes ``stream-rank-<global rank>.json`` into ``directory`` when fitting ends: per epoch, the
    token ids (padding stripped) of every row this process trained and validated on, and on rank 0
    the ids of every row of both splits, encoded outside the trainer."""

    def __init__(self, directory: str):
        self.directory = Path(directory)
        self.seen: dict[str, dict[int, list[list[int]]]] = {"train": {}, "validation": {}}

    def _record(self, trainer: Trainer, role: str, batch: dict[str, torch.Tensor]) -> None:
        rows = [[token for token in row if token != PAD_ID] for row in batch["input_ids"].tolist()]
        self.seen[role].setdefault(trainer.current_epoch, []).extend(rows)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._record(trainer, "train", batch)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, "validation", batch)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        record = {"seen": self.seen}
        if trainer.global_rank == 0:
            data = trainer.datamodule
            record["all"] = {role: [row["input_ids"] for row in data._encode_rows(list(data.splits[role]), role)]
                             for role in ("train", "validation")}
        (self.directory / f"stream-rank-{trainer.global_rank}.json").write_text(json.dumps(record), encoding="utf-8")
