"""Ensembles: several trained models of the same classes scoring texts together.

An ensemble's class probabilities are the mean of its members' and its label their argmax. Each
member encodes the texts with its own tokenizer and length, so members may come from different runs,
seeds, tokenizers or architectures, and from checkpoints, model directories or ONNX exports alike.
Training the default recipe with a few seeds and averaging them is the cheapest accuracy there is to
buy, at N times the training and the prediction (``scripts/benchmark_ensemble.py`` measures both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from textcnn.errors import UserInputError
from textcnn.inference.predictor import BasePredictor, Texts, checked_texts


class Ensemble(BasePredictor):
    """Averages the probabilities of ``members`` (two or more single-label predictors with the same
    label names in the same order). ``predict``, ``predict_proba`` and ``logits`` work as a single
    predictor's: the logits are the log of the mean probabilities, so their softmax is that mean.
    Each member keeps its own temperature."""

    backend = "ensemble"

    def __init__(self, members: Sequence[BasePredictor]):
        members = list(members)
        if len(members) < 2:
            raise UserInputError(f"an ensemble needs two or more models, got {len(members)}")
        check_members([f"model {index}" for index in range(1, len(members) + 1)],
                      [member.label_names for member in members], [member.multi_label for member in members])
        super().__init__(members[0].tokenizer, members[0].label_names, members[0].max_length, members[0].min_length)
        self.members = members

    def logits(self, texts: Texts, batch_size: int = 256) -> torch.Tensor:
        """(N, num_classes): the log of the members' mean probabilities, in input order."""
        return as_logits(self.predict_proba(texts, batch_size))

    def predict_proba(self, texts: Texts, batch_size: int = 256) -> torch.Tensor:
        """(N, num_classes): the mean of the members' probabilities."""
        texts = checked_texts(texts)
        return sum(member.predict_proba(texts, batch_size) for member in self.members) / len(self.members)

    def describe(self) -> dict[str, Any]:
        return {"members": [{"backend": member.backend, "temperature": member.temperature, **member.describe()}
                            for member in self.members]}


def as_logits(probabilities: torch.Tensor) -> torch.Tensor:
    """Logits whose softmax is ``probabilities`` (rows summing to 1): their log, a zero kept finite."""
    return probabilities.clamp_min(torch.finfo(probabilities.dtype).tiny).log()


def check_members(names: Sequence[str], label_names: Sequence[list[str]], multi_label: Sequence[bool]) -> None:
    """Refuses models that cannot be averaged: other classes than the first model's, or multi-label."""
    for name, classes in zip(names[1:], label_names[1:]):
        if classes != label_names[0]:
            raise UserInputError(f"{name} of the ensemble has the classes {classes}, {names[0]} has "
                                 f"{label_names[0]}: ensemble models trained on the same classes")
    if any(multi_label):
        raise UserInputError("multi-label models cannot be ensembled: each decides with thresholds tuned on its own "
                             "probabilities, which their mean does not fit; use one model")
