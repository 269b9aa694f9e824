"""Export a checkpoint to ONNX, or to a model directory for the Hub (:func:`export_model_directory`).

ONNX: ``model.onnx`` with dynamic batch and sequence axes, plus
``tokenizer.json`` and ``metadata.json`` (label names, lengths, temperature, architecture, and a
multi-label model's per-class thresholds) beside it.

The graph is the model's own ``forward``, so it keeps the padding mask: a padded batch gives the
same logits on ONNX Runtime as in PyTorch. Every export is checked against PyTorch on probe texts
(empty, shorter than the widest kernel, truncated at ``max_length``) before it is reported done.
Load the directory with ``textcnn.load(directory)`` (see :mod:`textcnn.inference.onnx`).

A model directory (:mod:`textcnn.inference.model_directory`) is written by :meth:`Predictor.save`.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch

from textcnn.errors import UserInputError
from textcnn.inference.onnx import (
    EXPORT_FORMAT,
    METADATA_FILE,
    MODEL_FILE,
    MULTI_LABEL_EXPORT_FORMAT,
    TOKENIZER_FILE,
    OnnxPredictor,
)
from textcnn.inference.predictor import Predictor, probe_texts

OPSET = 17
MAX_ABS_DIFF = 1e-4  # ONNX Runtime vs PyTorch logits, checked on every export


def export_onnx(
    checkpoint_path: Union[str, Path], output_dir: Union[str, Path], temperature: float = 1.0
) -> dict[str, Any]:
    """Write the export directory and return what was written and how closely it matches PyTorch."""
    try:
        import onnx  # noqa: F401 (torch.onnx.export writes through it)
    except ImportError:
        raise UserInputError("exporting to ONNX needs the onnx package; pip install 'textcnn[export]'") from None
    predictor = Predictor.from_checkpoint(checkpoint_path, temperature=temperature)
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise UserInputError(f"--output {output_dir} is a file; pass a directory for the export")
    if (output_dir / "model.safetensors").exists():
        raise UserInputError(f"--output {output_dir} holds a model directory (model.safetensors); export elsewhere")
    output_dir.mkdir(parents=True, exist_ok=True)
    texts = probe_texts(predictor)
    example = predictor.batch(texts[2:4])  # two lengths: the traced graph sees a padded row
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        # The TorchScript exporter: in torch 2.13 the torch.export-based one fixes the sequence
        # axis of stacked models (ceil-mode pooling), this one keeps both axes dynamic.
        torch.onnx.export(
            predictor.model,
            (example,),
            str(output_dir / MODEL_FILE),
            input_names=["input_ids"],
            output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    (output_dir / TOKENIZER_FILE).write_text(predictor.tokenizer.to_str(), encoding="utf-8")
    description = predictor.describe()
    metadata = {
        "format": MULTI_LABEL_EXPORT_FORMAT if predictor.multi_label else EXPORT_FORMAT,
        "label_names": predictor.label_names,
        "max_length": predictor.max_length,
        "min_length": predictor.min_length,
        "temperature": predictor.temperature,
        "network": dataclasses.asdict(predictor.model.config),
        "vocab_size": description["vocab_size"],
        "num_parameters": description["num_parameters"],
        "opset": OPSET,
        "checkpoint": str(checkpoint_path),
    }
    if predictor.multi_label:
        metadata["thresholds"] = predictor.thresholds.tolist()
    (output_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2), encoding="utf-8")

    max_abs_diff = float((OnnxPredictor(output_dir).logits(texts) - predictor.logits(texts)).abs().max())
    if max_abs_diff > MAX_ABS_DIFF:
        raise RuntimeError(f"ONNX Runtime logits differ from PyTorch by {max_abs_diff:.2e} > {MAX_ABS_DIFF}")
    return {
        "output": str(output_dir),
        "files": [str(output_dir / name) for name in (MODEL_FILE, TOKENIZER_FILE, METADATA_FILE)],
        "max_abs_diff_vs_pytorch": max_abs_diff,
        "probe_texts": len(texts),
    }


def export_model_directory(
    checkpoint_path: Union[str, Path], output_dir: Union[str, Path], temperature: float = 1.0,
    metrics: Optional[dict[str, Any]] = None, language: Sequence[str] = (), datasets: Sequence[str] = (),
    repo_id: Optional[str] = None,
) -> dict[str, Any]:
    """Write a checkpoint as a model directory (see :meth:`Predictor.save`), checked on probe texts."""
    predictor = Predictor.from_checkpoint(checkpoint_path, temperature=temperature)
    return predictor.save(output_dir, repo_id=repo_id, metrics=metrics, language=language, datasets=datasets)
