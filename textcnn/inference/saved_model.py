"""One saved model, read once: what a checkpoint, a model directory or an ONNX export holds.

Its readers (:mod:`~textcnn.inference.checkpoint`, :mod:`~textcnn.inference.model_directory`,
:mod:`~textcnn.inference.onnx`) open each file once and check it with :mod:`textcnn.inference.schema`;
what the checks parsed (the tokenizer, the network built on the ``meta`` device) is kept here rather
than parsed again. :func:`textcnn.inference.loader.read_saved_model` picks the reader for a path, and
``load``, ``evaluate``, ``export`` and ``serve`` all start from what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import torch
from tokenizers import Tokenizer

from textcnn.errors import UserInputError
from textcnn.model import TextCNN, TextCNNConfig

Kind = Literal["checkpoint", "directory", "onnx"]


@dataclass
class SavedModel:
    """Everything a predictor, an evaluation or an export needs from a saved model.

    ``skeleton`` is the network built on the ``meta`` device (shapes only, nothing allocated) and
    ``weights`` its checked tensors; :meth:`network` joins them. An ONNX export has neither: its
    graph is ``source / model.onnx``. ``data`` holds the training data settings as saved (paths and
    all), ``provenance`` what a model card shows (data settings fit to publish, evaluations, …).
    """

    kind: Kind
    source: Path
    config: TextCNNConfig
    vocab_size: int
    label_names: list[str]
    tokenizer: Tokenizer
    max_length: int
    temperature: float = 1.0
    thresholds: Optional[list[float]] = None
    risk_coverage: Optional[dict[str, Any]] = None  # see textcnn.inference.selective
    data: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    skeleton: Optional[TextCNN] = field(default=None, repr=False)
    weights: Optional[dict[str, torch.Tensor]] = field(default=None, repr=False)

    @property
    def multi_label(self) -> bool:
        return self.thresholds is not None

    @property
    def min_length(self) -> int:
        return self.config.widest_kernel

    def network(self) -> TextCNN:
        """The trained network in eval mode on the CPU. The first call assigns the saved tensors to the
        skeleton, so the network is built once and its weights are neither initialised nor copied; a
        later call builds another network with its own copy of them."""
        if self.weights is None:
            raise UserInputError(f"{self.source} is an ONNX export: it has a graph, not PyTorch weights; "
                                 "use the .ckpt or the model directory it was exported from")
        from textcnn.inference.schema import skeleton

        model, self.skeleton = self.skeleton, None
        weights = self.weights
        if model is None:
            model = skeleton(self.vocab_size, len(self.label_names), self.config, str(self.source))
            weights = {name: tensor.clone() for name, tensor in weights.items()}
        model.load_state_dict(weights, strict=True, assign=True)
        return model.eval()


def refuse_onnx(saved: SavedModel, command: str) -> SavedModel:
    """``saved`` when it has PyTorch weights; an ONNX export is refused, naming what ``command`` takes."""
    if saved.kind == "onnx":
        raise UserInputError(f"{saved.source} is an ONNX export; {command} takes the .ckpt or a model directory "
                             "(textcnn export --format hf)")
    return saved
