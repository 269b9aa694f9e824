"""``textcnn.load``: one entry point for every saved model; it picks the backend from what the path holds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from textcnn.inference.onnx import OnnxPredictor
from textcnn.inference.predictor import BasePredictor, Predictor


def load(path: Union[str, Path], temperature: Optional[float] = None) -> BasePredictor:
    """Load a textcnn checkpoint (``.ckpt``) or a directory written by ``textcnn export``.

    A checkpoint gives a PyTorch :class:`Predictor` (with explanations); an export directory an
    ONNX Runtime predictor that needs neither Lightning nor the checkpoint. ``temperature`` defaults
    to 1 for checkpoints and to the one stored at export time for export directories.
    """
    path = Path(path)
    if path.is_dir():
        return OnnxPredictor.from_directory(path, temperature=temperature)
    return Predictor.from_checkpoint(path, temperature=1.0 if temperature is None else temperature)
