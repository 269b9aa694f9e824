"""Lightning wrapper around :class:`textcnn.model.TextCNN`: loss, metrics, optimizer, checkpoint contents.

Checkpoints hold only plain values (they load with ``torch.load(..., weights_only=True)``): the
hyperparameters, the label names, and the tokenizer as its JSON string under ``tokenizer_json``.
A multi-label model (``multi_label``) also holds its per-class decision thresholds, the buffer
``decision_thresholds`` (C,) in the state_dict, re-tuned on the validation split at the end of
every validation epoch: every checkpoint carries the thresholds that fit its own weights.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any, Literal, Optional, Union

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MultilabelExactMatch,
    MultilabelF1Score,
    MultilabelPrecisionRecallCurve,
    MultilabelStatScores,
)

from textcnn.errors import UserInputError
from textcnn.model import TextCNN, TextCNNConfig
from textcnn.inference.checkpoint import CHECKPOINT_FORMAT, MULTI_LABEL_CHECKPOINT_FORMAT
from textcnn.training.adversarial import adversarial_loss
from textcnn.training.thresholds import DEFAULT_THRESHOLD, THRESHOLD_GRID, tune_thresholds

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
    class_weights: for imbalanced data, ``balanced`` (each class weighted by
        ``examples / (classes × its examples)`` in the training split, as scikit-learn does) or one
        weight per class (a multi-label model's ``pos_weight`` per class); None: every class counts alike. Pair it with ``checkpoint.monitor: val_macro_f1``.
    label_counts: taken from the data module (examples per class in the training split).
    multi_label: taken from the data module. Sigmoid per class and binary cross-entropy against
        multi-hot targets instead of softmax and cross-entropy; ``val_acc`` is then the exact-match
        ratio, and ``val_micro_f1`` / ``val_macro_f1`` are logged at threshold 0.5.
    pack_batches: a batch that is mostly padding runs packed (:mod:`textcnn.packing`): the same
        examples, logits and gradients over far fewer positions. ``false`` keeps every batch padded.
    adversarial_epsilon: above 0, every training step also trains on the batch with its word
        embeddings (a region network: its region embeddings) moved this far (L2, per text) in the
        direction that raises the loss most (:mod:`textcnn.training.adversarial`); about 2× the cost
        of a step. 0: off.
    tv_embeddings: a tv-embeddings file (:mod:`textcnn.training.tv_embedding`) for a region network:
        its rows for this tokenizer's tokens become the network's frozen tv-embedding, whose maps and
        width ``network.tv_channels`` / ``tv_width`` must match (the recipe sets them from the file);
        read once (the weights live in the state_dict).
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        label_names: Optional[list[str]] = None,
        network: TextCNNConfig = TextCNNConfig(),
        optimizer: Literal["adamw", "adam", "sgd"] = "adamw",
        learning_rate: float = 3e-3,
        weight_decay: float = 0.01,
        lr_schedule: Literal["constant", "cosine", "onecycle"] = "constant",
        tokenizer_json: str = "",
        pretrained_embeddings: Optional[torch.Tensor] = None,
        multi_label: bool = False,
        class_weights: Union[Literal["balanced"], list[float], None] = None,
        label_counts: Optional[list[int]] = None,
        pack_batches: bool = True,
        adversarial_epsilon: float = 0.0,
        tv_embeddings: Optional[str] = None,
    ):
        super().__init__()
        config = TextCNNConfig.from_saved(network) if isinstance(network, dict) else network  # dict: from a checkpoint
        tv_table = _tv_rows(config, tv_embeddings, tokenizer_json) if tv_embeddings else None
        label_names = list(label_names or [str(i) for i in range(num_classes)])
        if len(label_names) != num_classes:
            raise UserInputError(f"{len(label_names)} label names given for {num_classes} classes")
        if learning_rate <= 0:
            raise UserInputError(f"model.learning_rate must be positive, got {learning_rate}")
        if adversarial_epsilon < 0:
            raise UserInputError(f"model.adversarial_epsilon must be 0 (off) or positive, got {adversarial_epsilon}")
        if pretrained_embeddings is not None and config.embedding_mode == "rand":
            raise UserInputError(
                "model.network.embedding_mode is 'rand' (embeddings learned from scratch) but data.pretrained_vectors "
                "is set (its default is glove-6b-50d); set data.pretrained_vectors=null to train from scratch, or "
                "embedding_mode to static, non-static or multichannel to start from the vectors"
            )
        # save_hyperparameters reads these local names: plain values only, so checkpoints load
        # with weights_only=True; the tokenizer goes into the checkpoint in on_save_checkpoint.
        network = dataclasses.asdict(config)
        self.save_hyperparameters(ignore=["tokenizer_json", "pretrained_embeddings", "tv_embeddings"])
        self.label_names = label_names
        self.tokenizer_json = tokenizer_json
        self.model = TextCNN(vocab_size, num_classes, config, pretrained_embeddings, pack_batches=pack_batches,
                             tv_embeddings=tv_table)
        self.initialised_from_vectors = pretrained_embeddings is not None
        weights = loss_weights(class_weights, label_counts, num_classes, multi_label)
        self.register_buffer("loss_weight", weights, persistent=False)  # recomputed from hparams; not in checkpoints
        if multi_label:
            self.register_buffer("decision_thresholds", torch.full((num_classes,), DEFAULT_THRESHOLD))
            self.train_acc = MultilabelExactMatch(num_classes)
            self.val_acc = MultilabelExactMatch(num_classes)
            self.val_f1 = MultilabelF1Score(num_classes, average="macro")
            self.val_micro_f1 = MultilabelF1Score(num_classes, average="micro")
            self.val_curve = MultilabelPrecisionRecallCurve(num_classes, thresholds=THRESHOLD_GRID)
            self.val_counts = MultilabelStatScores(num_classes, average=None)  # (C, 5): tp, fp, tn, fn, support
        else:
            self.train_acc = MulticlassAccuracy(num_classes, average="micro")
            self.val_acc = MulticlassAccuracy(num_classes, average="micro")
            self.val_f1 = MulticlassF1Score(num_classes, average="macro")

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy against class ids (B,), or binary cross-entropy against multi-hot targets (B, C)."""
        if self.hparams.multi_label:
            return F.binary_cross_entropy_with_logits(logits, labels, pos_weight=self.loss_weight)
        return F.cross_entropy(logits, labels, weight=self.loss_weight)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        epsilon = self.hparams.adversarial_epsilon
        if epsilon:
            logits, loss = adversarial_loss(self.model, batch["input_ids"], lambda out: self.loss(out, batch["labels"]),
                                            epsilon)
        else:
            logits = self(batch["input_ids"])
            loss = self.loss(logits, batch["labels"])
        if self.hparams.multi_label:
            self.train_acc(logits.sigmoid(), batch["labels"].int())
        else:
            self.train_acc(logits, batch["labels"])
        self.log("train_loss", loss, prog_bar=True)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch["input_ids"])
        if self.hparams.multi_label:
            probabilities, targets = logits.sigmoid(), batch["labels"].int()
            self.val_acc(probabilities, targets)
            self.val_f1(probabilities, targets)
            self.val_micro_f1(probabilities, targets)
            self.val_curve.update(probabilities, targets)
            self.val_counts.update(probabilities, targets)
            self.log("val_micro_f1", self.val_micro_f1, prog_bar=True)
        else:
            self.val_acc(logits, batch["labels"])
            self.val_f1(logits, batch["labels"])
        self.log("val_loss", self.loss(logits, batch["labels"]), prog_bar=True, sync_dist=True)
        self.log("val_acc", self.val_acc, prog_bar=True)
        self.log("val_macro_f1", self.val_f1)

    def on_validation_epoch_end(self) -> None:
        """Multi-label: tune the per-class thresholds on this validation pass (not on the sanity check).

        Runs before ModelCheckpoint saves (it saves in ``on_validation_end``), so a checkpoint's
        thresholds are the ones tuned for its weights.
        """
        if not self.hparams.multi_label:
            return
        if not self.trainer.sanity_checking:
            precision, recall, grid = self.val_curve.compute()
            positives = self.val_counts.compute()[:, 4]
            self.decision_thresholds.copy_(tune_thresholds(precision, recall, grid, positives))
        self.val_curve.reset()
        self.val_counts.reset()

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
        checkpoint["trained_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")  # for the model card
        checkpoint["textcnn_format"] = MULTI_LABEL_CHECKPOINT_FORMAT if self.hparams.multi_label else CHECKPOINT_FORMAT

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming: the checkpoint must come from this run's network, classes and tokenizer. Another
        network's weights do not fit, and another dataset's classes would be relabelled silently."""
        differences = resume_differences(checkpoint, dict(self.hparams), self.tokenizer_json)
        if differences:
            raise UserInputError(
                f"--ckpt_path {self.trainer.ckpt_path} was written by another run ({'; '.join(differences[:4])}): "
                "resume with the config and data that run used, or leave out --ckpt_path to train a new model"
            )
        self.tokenizer_json = checkpoint.get("tokenizer_json", "")


REGULARISATION = ("dropout", "embedding_dropout")  # may change when resuming: the weights still fit


def resume_differences(checkpoint: dict[str, Any], hparams: dict[str, Any], tokenizer_json: str) -> list[str]:
    """What differs between a checkpoint's run and this one, as ``name: checkpoint's vs this run's``."""
    saved = checkpoint["hyper_parameters"]
    differences = []
    for name in ("label_names", "num_classes", "vocab_size", "multi_label"):
        if saved.get(name) != hparams.get(name):
            differences.append(f"{name}: {saved.get(name)!r} there, {hparams.get(name)!r} here")
    theirs = dataclasses.asdict(TextCNNConfig.from_saved(saved["network"]))
    ours = hparams["network"] if isinstance(hparams["network"], dict) else dataclasses.asdict(hparams["network"])
    ours = dataclasses.asdict(TextCNNConfig.from_saved(ours))
    differences += [f"model.network.{key}: {theirs[key]!r} there, {ours[key]!r} here"
                    for key in theirs if theirs[key] != ours[key] and key not in REGULARISATION]
    if tokenizer_json and checkpoint.get("tokenizer_json") != tokenizer_json:
        differences.append("another tokenizer (data.tokenizer_path)")
    return differences


def loss_weights(class_weights: Union[str, list[float], None], label_counts: Optional[list[int]],
                 num_classes: int, multi_label: bool) -> Optional[torch.Tensor]:
    """(C,) per-class weights of the loss (``pos_weight`` for multi-label), or None."""
    if class_weights is None:
        return None
    if class_weights == "balanced":
        if not label_counts or len(label_counts) != num_classes:
            raise UserInputError(
                "model.class_weights balanced needs the training split's label counts, which a stream cannot "
                "give; give one weight per class instead (model.class_weights=[...])"
            )
        counts = torch.tensor(label_counts, dtype=torch.float32).clamp(min=1)
        if multi_label:
            raise UserInputError(
                "model.class_weights balanced is for single-label models; for multi-label give each class's "
                "pos_weight (its negatives / its positives) as a list, model.class_weights=[...]"
            )
        return counts.sum() / (num_classes * counts)
    if isinstance(class_weights, str) or len(class_weights) != num_classes or any(w <= 0 for w in class_weights):
        raise UserInputError(
            f"model.class_weights must be 'balanced' or {num_classes} positive numbers (one per class), got {class_weights!r}"
        )
    return torch.tensor([float(w) for w in class_weights])


def _tv_rows(config: TextCNNConfig, path: str, tokenizer_json: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The tv-embeddings' rows for this tokenizer's tokens, and their bias."""
    from tokenizers import Tokenizer

    from textcnn.training.tv_embedding import read, rows_for

    if config.architecture != "region":
        raise UserInputError(f"model.tv_embeddings feed a region network's first layer, but the architecture is "
                             f"{config.architecture!r}; set model.network.architecture=region, or leave them out")
    if not tokenizer_json:
        raise UserInputError("model.tv_embeddings needs the run's tokenizer to find its tokens' rows")
    table = read(path)
    if (config.tv_channels, config.tv_width) != (table["channels"], table["width"]):
        raise UserInputError(f"model.tv_embeddings {path} holds {table['channels']} maps over {table['width']}-token "
                             f"regions: set model.network.tv_channels={table['channels']} and "
                             f"model.network.tv_width={table['width']}")
    return rows_for(table, Tokenizer.from_str(tokenizer_json).get_vocab())
