"""Export a checkpoint: to ONNX (optionally int8), or to a model directory (safetensors) for the Hub.

ONNX: ``model.onnx`` with dynamic batch and sequence axes, plus ``tokenizer.json`` and
``metadata.json`` (label names, lengths, temperature, architecture, a multi-label model's per-class
thresholds, and the quantization if any) beside it. The graph is the model's own ``forward``, so it
keeps the padding mask: a padded batch gives the same logits on ONNX Runtime as in PyTorch. Every
export is checked against PyTorch on probe texts (empty, shorter than the widest kernel, truncated at
``max_length``) before it is reported done.

``quantize="int8"`` runs ONNX Runtime's dynamic quantization on the exported graph, restricted to the
embedding tables (:data:`INT8_OPERATORS`): they are stored as int8 and the rows a batch looks up are
dequantized. That changes logits, so its check is looser (:data:`INT8_RELATIVE_TOLERANCE`) and asks
that every probe text whose label is not a near tie keeps it; ``scripts/benchmark_export.py``
measures what it costs in accuracy and speed on a whole test split (docs/performance.md).

A model directory (``format="hf"``, :mod:`textcnn.inference.model_directory`) is written by
:meth:`Predictor.save`. Load any of them with ``textcnn.load(directory)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch

from textcnn.atomic import path_atomic, unwritable
from textcnn.errors import UserInputError
from textcnn.inference.model_directory import refuse_replacing_others
from textcnn.inference.onnx import (
    EXPORT_FORMAT,
    METADATA_FILE,
    MODEL_FILE,
    MULTI_LABEL_EXPORT_FORMAT,
    TOKENIZER_FILE,
    OnnxPredictor,
)
from textcnn.inference.predictor import BasePredictor, Predictor, probe_texts
from textcnn.inference.loader import read_saved_model
from textcnn.inference.saved_model import refuse_onnx
from textcnn.inference.schema import QUANTIZATIONS

OPSET = 17
MAX_ABS_DIFF = 1e-4  # ONNX Runtime vs PyTorch logits, checked on every float32 export
# int8: |ONNX Runtime - PyTorch| on the probe texts may reach this share of their largest |logit| (at
# least 1). It catches a broken graph; what int8 costs in accuracy is measured on a whole test split
# by scripts/benchmark_export.py (docs/performance.md).
INT8_RELATIVE_TOLERANCE = 0.1
# What int8 quantizes: the embedding tables' Gather, almost all the weights of the default recipe (the
# n-gram bag's table most of all). Not the convolutions: ONNX Runtime's ConvInteger was slower than its
# float convolution on the CPU measured. Not the classifier's MatMul either: it is a few hundred
# weights, and dynamic quantization of its input takes one scale per batch, so a text's logits would
# depend on the texts batched with it (measured: docs/performance.md). Gathered rows do not.
INT8_OPERATORS = ("Gather",)


def export_onnx(
    checkpoint_path: Union[str, Path], output_dir: Union[str, Path], temperature: Optional[float] = None,
    quantize: Optional[str] = None,
) -> dict[str, Any]:
    """Write the export directory of a checkpoint or a model directory and return what was written and
    how closely it matches PyTorch. ``temperature`` defaults to the saved one (1 for a checkpoint)."""
    if quantize not in (None, *QUANTIZATIONS):
        raise UserInputError(f"--quantize {quantize!r} is not one of {', '.join(QUANTIZATIONS)}; pass int8 or leave it out")
    try:
        import onnx  # noqa: F401 (torch.onnx.export writes through it)
    except ImportError:
        raise UserInputError("exporting to ONNX needs the onnx package; pip install 'textcnn[export]'") from None
    predictor = pytorch_predictor(checkpoint_path, temperature)
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise UserInputError(f"--output {output_dir} is a file; pass a directory for the export")
    if (output_dir / "model.safetensors").exists():
        raise UserInputError(f"--output {output_dir} holds a model directory (model.safetensors); export elsewhere")
    output_dir.mkdir(parents=True, exist_ok=True)
    texts = probe_texts(predictor)
    try:  # the three files are written beside their names and renamed together at the end: an export
        # that fails (a full disk) leaves an earlier one whole
        with contextlib.ExitStack() as files:
            model_file, tokenizer_file, metadata_file = (files.enter_context(path_atomic(output_dir / name))
                                                         for name in (MODEL_FILE, TOKENIZER_FILE, METADATA_FILE))
            if quantize is None:
                _export_graph(predictor, texts, model_file)
            else:
                graph = model_file.with_name(model_file.name + ".float32")  # the quantizer's input, scratch
                try:
                    _export_graph(predictor, texts, graph)
                    quantize_int8(graph, model_file)
                finally:
                    graph.unlink(missing_ok=True)
            tokenizer_file.write_text(predictor.tokenizer.to_str(), encoding="utf-8")
            metadata_file.write_text(json.dumps(_metadata(predictor, checkpoint_path, quantize), indent=2),
                                     encoding="utf-8")
    except OSError as error:
        raise unwritable(output_dir, error, "--output") from None
    except RuntimeError:  # the exporter's and quantizer's writers wrap a full disk in errors of their own
        if shutil.disk_usage(output_dir).free >= _model_bytes(predictor):
            raise
        raise unwritable(output_dir, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "--output") from None
    exported = OnnxPredictor(output_dir)
    report = {
        "output": str(output_dir),
        "files": [str(output_dir / name) for name in (MODEL_FILE, TOKENIZER_FILE, METADATA_FILE)],
        **check_against_pytorch(exported, predictor, texts, quantize),
        "probe_texts": len(texts),
        "size_bytes": (output_dir / MODEL_FILE).stat().st_size,
    }
    if quantize is not None:
        report["quantization"] = quantize
    return report


def _metadata(predictor: Predictor, checkpoint_path: Union[str, Path], quantize: Optional[str]) -> dict[str, Any]:
    """What ``metadata.json`` holds: everything the ONNX predictor needs besides the graph and tokenizer."""
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
    if predictor.risk_coverage is not None:  # measured on the float model, before any quantization
        metadata["risk_coverage"] = predictor.risk_coverage
    if quantize is not None:  # formats 1 and 2 readers ignore these: the graph is still a graph
        metadata["quantization"] = quantize
        metadata["quantized_operators"] = list(INT8_OPERATORS)
    return metadata


def _model_bytes(predictor: Predictor) -> int:
    return int(predictor.describe()["size_bytes"])


def _export_graph(predictor: Predictor, texts: list[str], path: Path) -> None:
    example = predictor.batch(texts[2:4])  # two lengths: the traced graph sees a padded row
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        # The TorchScript exporter: in torch 2.13 the torch.export-based one fixes the sequence
        # axis of stacked models (ceil-mode pooling), this one keeps both axes dynamic.
        torch.onnx.export(
            predictor.model,
            (example,),
            str(path),
            input_names=["input_ids"],
            output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def quantize_int8(source: Path, target: Path, operators: Optional[Sequence[str]] = INT8_OPERATORS) -> None:
    """ONNX Runtime's dynamic quantization of the graph at ``source`` into ``target``: int8 weights for
    ``operators`` (None: every kind it can quantize, convolutions and matrix products included, whose
    inputs are then quantized per call). It needs no calibration data."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    quiet = _QuantizerAdvice()
    root.addFilter(quiet)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                         op_types_to_quantize=None if operators is None else list(operators))
    finally:
        root.removeFilter(quiet)


class _QuantizerAdvice(logging.Filter):
    """The quantizer logs to the root logger, whole tensor protos among it: that the int64 mask tensors
    are not quantized (they should not be) and that pre-processing may help (its shape inference fails
    on this graph). Its errors still come through."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "onnxruntime" not in record.pathname


def check_against_pytorch(exported: BasePredictor, predictor: Predictor, texts: list[str],
                          quantize: Optional[str]) -> dict[str, Any]:
    """The largest logit difference on ``texts``, refused past the tolerance of the export's kind, and
    for int8 the share of texts whose labels stayed the same (every text that is not a near tie must)."""
    mine, theirs = exported.logits(texts), predictor.logits(texts)
    max_abs_diff = float((mine - theirs).abs().max())
    if quantize is None:
        if max_abs_diff > MAX_ABS_DIFF:
            raise RuntimeError(f"ONNX Runtime logits differ from PyTorch by {max_abs_diff:.2e} > {MAX_ABS_DIFF}")
        return {"max_abs_diff_vs_pytorch": max_abs_diff}
    tolerance = INT8_RELATIVE_TOLERANCE * max(1.0, float(theirs.abs().max()))
    same = decisions(predictor, mine).eq(decisions(predictor, theirs)).all(dim=-1)
    clear = margins(predictor, theirs) > 2 * tolerance  # a label no difference within tolerance can flip
    if max_abs_diff > tolerance or not bool(same[clear].all()):
        raise RuntimeError(f"the int8 model's logits differ from PyTorch's by {max_abs_diff:.3f} (tolerance "
                           f"{tolerance:.3f}) and keep {int(same.sum())} of {len(texts)} probe labels; "
                           "export without --quantize")
    return {"max_abs_diff_vs_pytorch": max_abs_diff, "tolerance": tolerance,
            "label_agreement_on_probes": float(same.float().mean())}


def decisions(predictor: BasePredictor, logits: torch.Tensor) -> torch.Tensor:
    """(N, C) bool: the predicted class (single-label) or classes (multi-label) of each row."""
    if predictor.multi_label:
        return logits.sigmoid() >= predictor.thresholds
    return torch.nn.functional.one_hot(logits.argmax(dim=-1), logits.shape[-1]).bool()


def margins(predictor: BasePredictor, logits: torch.Tensor) -> torch.Tensor:
    """(N,) how far each row's decision is from flipping, in logits: the gap between the two best
    classes, or a multi-label model's smallest distance from a class's threshold."""
    if predictor.multi_label:
        return (logits - torch.logit(predictor.thresholds)).abs().min(dim=-1).values
    top = logits.topk(2, dim=-1).values
    return top[:, 0] - top[:, 1]


def export_model_directory(
    checkpoint_path: Union[str, Path], output_dir: Union[str, Path], temperature: Optional[float] = None,
    metrics: Optional[dict[str, Any]] = None, language: Sequence[str] = (), datasets: Sequence[str] = (),
    repo_id: Optional[str] = None, force: bool = False,
) -> dict[str, Any]:
    """Write a checkpoint as a model directory (see :meth:`Predictor.save`), checked on probe texts.
    ``force``: replace files of a model directory's names in ``output_dir`` that textcnn did not write."""
    if not force and Path(output_dir).is_dir() and not (Path(output_dir) / MODEL_FILE).exists():
        refuse_replacing_others(Path(output_dir))  # before the checkpoint is read (an ONNX export: refused on save)
    predictor = pytorch_predictor(checkpoint_path, temperature)
    return predictor.save(output_dir, repo_id=repo_id, metrics=metrics, language=language, datasets=datasets,
                          force=force)


def pytorch_predictor(path: Union[str, Path], temperature: Optional[float]) -> Predictor:
    """The PyTorch predictor of a checkpoint, a model directory or a Hub id of one (an ONNX export cannot
    be exported again)."""
    return Predictor.from_saved(refuse_onnx(read_saved_model(path), "export"), temperature=temperature)
