"""``textcnn.load`` and :func:`read_saved_model`: the one place that decides what kind of saved model a
path is (a ``.ckpt``, a model directory, an ONNX export, a Hub id) and so which reader and backend it gets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

from textcnn.errors import UserInputError
from textcnn.inference import hub
from textcnn.inference.checkpoint import read_saved_checkpoint
from textcnn.inference.devices import DeviceSpec
from textcnn.inference.model_directory import is_model_directory, read_directory
from textcnn.inference.onnx import MODEL_FILE as ONNX_FILE
from textcnn.inference.onnx import OnnxPredictor, read_export
from textcnn.inference.predictor import BasePredictor, Predictor
from textcnn.inference.saved_model import SavedModel


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
    saved = read_saved_model(path, revision=revision, token=token)
    if saved.kind == "onnx":
        return OnnxPredictor(saved, temperature=temperature, device=device)
    return Predictor.from_saved(saved, temperature=temperature, device=device)


def read_saved_model(path: Union[str, Path], revision: Optional[str] = None,
                     token: Optional[str] = None) -> SavedModel:
    """The saved model at ``path``: a ``.ckpt`` written by training, a model directory (``textcnn export
    --format hf``), an ONNX export directory (``textcnn export``), or ``owner/name`` that is not a local
    path: that model directory from the Hugging Face Hub (``revision``, ``token``; the cache offline)."""
    text, path = str(path), Path(path)
    if path.is_dir():
        if (path / ONNX_FILE).is_file():
            return read_export(path)
        if is_model_directory(path):
            return read_directory(path)
        raise UserInputError(f"{path} has no model.onnx (an ONNX export) or model.safetensors (a model directory); "
                             "pass a directory written by `textcnn export`, or a .ckpt checkpoint")
    if not path.exists() and hub.looks_like_hub_id(text):
        return read_directory(hub.download(text, revision=revision, token=token))
    return read_saved_checkpoint(path)
