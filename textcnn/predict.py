"""Predictor: a checkpoint in, label names and probabilities out. Needs no dataset and no Lightning."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Union

import torch
from tokenizers import Tokenizer

from textcnn.checkpoint import (
    data_settings_from_checkpoint,
    label_names_from_checkpoint,
    model_from_checkpoint,
    read_checkpoint,
    tokenizer_from_checkpoint,
)
from textcnn.errors import UserInputError
from textcnn.model import TextCNN
from textcnn.tokenizer import encode, pad_batch


class Predictor:
    """Scores texts with a trained :class:`TextCNN`; safe to share between threads."""

    def __init__(self, model: TextCNN, tokenizer: Tokenizer, label_names: list[str], max_length: int = 128):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.label_names = list(label_names)
        self.max_length = max_length

    @classmethod
    def from_checkpoint(cls, path: Union[str, Path]) -> "Predictor":
        checkpoint = read_checkpoint(path)
        return cls(
            model_from_checkpoint(checkpoint),
            tokenizer_from_checkpoint(checkpoint),
            label_names_from_checkpoint(checkpoint),
            max_length=data_settings_from_checkpoint(checkpoint).get("max_length", 128),
        )

    def batch(self, texts: Sequence[str]) -> torch.Tensor:
        """Texts → padded ids (B, L), exactly as the training batches were built."""
        return pad_batch(encode(self.tokenizer, texts, self.max_length), self.model.config.widest_kernel)

    @torch.inference_mode()
    def logits(self, texts: Union[str, Sequence[str]], batch_size: int = 256) -> torch.Tensor:
        texts = _checked_texts(texts)
        return torch.cat([self.model(self.batch(texts[i : i + batch_size])) for i in range(0, len(texts), batch_size)])

    def predict_proba(self, texts: Union[str, Sequence[str]], batch_size: int = 256) -> torch.Tensor:
        """(N, num_classes) class probabilities, columns in ``label_names`` order."""
        return self.logits(texts, batch_size).softmax(dim=-1)

    def predict(self, texts: Union[str, Sequence[str]], batch_size: int = 256) -> list[dict]:
        """One ``{"label": name, "probabilities": {name: p}}`` per text, in input order."""
        results = []
        for row in self.predict_proba(texts, batch_size).tolist():
            best = max(range(len(row)), key=row.__getitem__)
            results.append(
                {"label": self.label_names[best], "probabilities": dict(zip(self.label_names, row))}
            )
        return results


def _checked_texts(texts: Union[str, Sequence[str]]) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise UserInputError("no texts to predict; pass at least one text")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise UserInputError(f"text {index} is {type(text).__name__}, not str; pass strings only")
    return texts


def load(path: Union[str, Path]) -> Predictor:
    """Load a textcnn checkpoint (``.ckpt``) for prediction."""
    return Predictor.from_checkpoint(path)
