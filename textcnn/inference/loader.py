"""``textcnn.load``: one entry point for every saved model; it picks the backend from what the path holds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

from textcnn.errors import UserInputError
from textcnn.inference import hub
from textcnn.inference.devices import DeviceSpec
from textcnn.inference.model_directory import is_model_directory
from textcnn.inference.onnx import MODEL_FILE as ONNX_FILE
from textcnn.inference.onnx import OnnxPredictor
from textcnn.inference.predictor import BasePredictor, Predictor


def load(path: Union[str, Path, Sequence[Union[str, Path]]], temperature: Optional[float] = None,
         device: DeviceSpec = "cpu", revision: Optional[str] = None, token: Optional[str] = None) -> BasePredictor:
    """Load a checkpoint (``.ckpt``), a model directory, an ONNX export directory, or a Hub model id;
    or, given a list of them, an :class:`~textcnn.inference.ensemble.Ensemble` that averages their
    probabilities (each loaded with ``temperature``, ``device``, ``revision`` and ``token``).

    * a ``.ckpt`` written by training: a PyTorch :class:`Predictor` (with explanations);
    * a model directory (``model.safetensors``, ``config.json``, ``tokenizer.json``; ``textcnn export
      --format hf``): the same PyTorch predictor, read without unpickling anything;
    * an ONNX export directory (``model.onnx``): an ONNX Runtime predictor that needs neither Lightning
      nor the checkpoint;
    * ``owner/name`` that is not a local path: that model directory from the Hugging Face Hub
      (``revision``, ``token``), or from the local cache when offline.

    ``temperature`` defaults to 1 for checkpoints and to the saved one for directories. ``device``:
    ``cpu`` (the default), ``cuda``, ``cuda:N``, ``mps``, or ``auto`` (cuda, else mps, else cpu); one that
    is not available here is an error. An ONNX export runs on cuda through ONNX Runtime's CUDA provider.
    """
    if not isinstance(path, (str, Path)):
        paths = list(path)
        if len(paths) == 1:
            return load(paths[0], temperature, device, revision, token)
        from textcnn.inference.ensemble import Ensemble

        return Ensemble([load(one, temperature, device, revision, token) for one in paths])
    text = str(path)
    path = Path(path)
    if path.is_dir():
        if (path / ONNX_FILE).is_file():
            return OnnxPredictor.from_directory(path, temperature=temperature, device=device)
        if is_model_directory(path):
            return Predictor.from_directory(path, temperature=temperature, device=device)
        raise UserInputError(f"{path} has no model.onnx (an ONNX export) or model.safetensors (a model directory); "
                             "pass a directory written by `textcnn export`, or a .ckpt checkpoint")
    if not path.exists() and hub.looks_like_hub_id(text):
        return Predictor.from_directory(hub.download(text, revision=revision, token=token), temperature=temperature,
                                        device=device)
    return Predictor.from_checkpoint(path, temperature=1.0 if temperature is None else temperature, device=device)
