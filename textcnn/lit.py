"""Lightning wrapper around :class:`textcnn.model.TextCNN`: loss, metrics, optimizer, checkpoint contents.

Checkpoints hold only plain values (they load with ``torch.load(..., weights_only=True)``): the
hyperparameters, the label names, and the tokenizer as its JSON string under ``tokenizer_json``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, Optional

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from textcnn.errors import UserInputError
from textcnn.model import TextCNN, TextCNNConfig

CHECKPOINT_FORMAT = 1  # bump when what a checkpoint holds changes incompatibly


class TextCNNClassifier(pl.LightningModule):
    """Args:
    vocab_size / num_classes / label_names / tokenizer_json: taken from the data module.
    pretrained_embeddings: (vocab_size, embed_dim) initial embeddings from the data module's
        ``pretrained_vectors``, for the static, non-static and multichannel ``network.embedding_mode``;
        not a hyperparameter (the weights live in the state_dict).
    network: the architecture (see :class:`TextCNNConfig`).
    optimizer / learning_rate / weight_decay: the optimizer and its settings.
    lr_schedule: ``constant``; ``cosine`` decay to zero over the run; ``onecycle`` warm-up then
        anneal, both stepped per batch.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        label_names: Optional[list[str]] = None,
        network: TextCNNConfig = TextCNNConfig(),
        optimizer: Literal["adamw", "adam", "sgd"] = "adamw",
        learning_rate: float = 1e-3,
        weight_decay: float = 0.01,
        lr_schedule: Literal["constant", "cosine", "onecycle"] = "constant",
        tokenizer_json: str = "",
        pretrained_embeddings: Optional[torch.Tensor] = None,
    ):
        super().__init__()
        config = TextCNNConfig(**network) if isinstance(network, dict) else network
        label_names = list(label_names or [str(i) for i in range(num_classes)])
        if len(label_names) != num_classes:
            raise UserInputError(f"{len(label_names)} label names given for {num_classes} classes")
        if learning_rate <= 0:
            raise UserInputError(f"model.learning_rate must be positive, got {learning_rate}")
        if pretrained_embeddings is not None and config.embedding_mode == "rand":
            raise UserInputError(
                "data.pretrained_vectors is set but model.network.embedding_mode is 'rand'; set embedding_mode "
                "to static, non-static or multichannel, or drop data.pretrained_vectors"
            )
        # save_hyperparameters reads these local names: plain values only, so checkpoints load
        # with weights_only=True; the tokenizer goes into the checkpoint in on_save_checkpoint.
        network = dataclasses.asdict(config)
        self.save_hyperparameters(ignore=["tokenizer_json", "pretrained_embeddings"])
        self.label_names = label_names
        self.tokenizer_json = tokenizer_json
        self.model = TextCNN(vocab_size, num_classes, config, pretrained_embeddings)
        self.initialised_from_vectors = pretrained_embeddings is not None
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch["input_ids"])
        loss = F.cross_entropy(logits, batch["labels"])
        self.train_acc(logits, batch["labels"])
        self.log("train_loss", loss, prog_bar=True)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch["input_ids"])
        self.val_acc(logits, batch["labels"])
        self.val_f1(logits, batch["labels"])
        self.log("val_loss", F.cross_entropy(logits, batch["labels"]), prog_bar=True, sync_dist=True)
        self.log("val_acc", self.val_acc, prog_bar=True)
        self.log("val_macro_f1", self.val_f1)

    def on_fit_start(self) -> None:
        resuming = self.trainer.ckpt_path is not None
        if self.model.config.embedding_mode != "rand" and not (self.initialised_from_vectors or resuming):
            raise UserInputError(
                f"model.network.embedding_mode {self.model.config.embedding_mode!r} starts from pretrained vectors; "
                "set data.pretrained_vectors=glove-6b-50d or the path of a GloVe/word2vec text file"
            )

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]  # frozen (static) embeddings stay out
        lr, decay = self.hparams.learning_rate, self.hparams.weight_decay
        if self.hparams.optimizer == "adamw":
            # fused: one kernel over all parameters; the embedding table dominates them and the
            # multi-kernel update cost 13% of a CPU training step (scripts/benchmark_speed.py)
            optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=decay, fused=True)
        elif self.hparams.optimizer == "adam":
            optimizer = torch.optim.Adam(params, lr=lr, weight_decay=decay, fused=True)
        else:
            optimizer = torch.optim.SGD(params, lr=lr, weight_decay=decay, momentum=0.9)
        if self.hparams.lr_schedule == "constant":
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        if self.hparams.lr_schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
        else:
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["tokenizer_json"] = self.tokenizer_json
        checkpoint["textcnn_format"] = CHECKPOINT_FORMAT

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.tokenizer_json = checkpoint.get("tokenizer_json", "")
