"""Predict with an exported model on ONNX Runtime: no Lightning and no checkpoint needed.

An export directory (written by :func:`textcnn.inference.export.export_onnx`) holds ``model.onnx``,
``tokenizer.json`` and ``metadata.json`` (label names, maximum length, temperature, architecture,
and for a multi-label model its per-class ``thresholds``).
Batching, padding and output formatting are :class:`textcnn.inference.predictor.BasePredictor`'s, shared with
the PyTorch predictor. ``InferenceSession.run`` may be called from several threads at once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional, Union

import torch

from textcnn.errors import UserInputError
from textcnn.inference.devices import unavailable
from textcnn.inference.predictor import BasePredictor
from textcnn.inference.saved_model import SavedModel
from textcnn.inference.schema import check_export_metadata, check_vocabulary_fits, damaged
from textcnn.tokenizer import load_tokenizer

MODEL_FILE, TOKENIZER_FILE, METADATA_FILE = "model.onnx", "tokenizer.json", "metadata.json"
EXPORT_FORMAT = 1  # bump when what an export directory holds changes incompatibly
MULTI_LABEL_EXPORT_FORMAT = 2  # format 1 plus thresholds: readers of format 1 alone would apply softmax


class OnnxPredictor(BasePredictor):
    """Scores texts with ``model.onnx`` on ONNX Runtime: on the CPU, or with ``device`` cuda (or auto,
    when this onnxruntime has the CUDA provider) on the GPU. ``threads`` caps ONNX Runtime's intra-op
    threads (benchmarks match torch's)."""

    backend = "onnx"

    def __init__(self, saved: Union[str, Path, SavedModel], temperature: Optional[float] = None, device: str = "cpu",
                 threads: Optional[int] = None):
        if not isinstance(saved, SavedModel):
            saved = read_export(Path(saved))
        try:
            import onnxruntime
        except ImportError:
            raise UserInputError(
                "predicting with an ONNX export needs onnxruntime; pip install 'textcnn[export]'"
            ) from None
        super().__init__(saved.tokenizer, saved.label_names, max_length=saved.max_length, min_length=saved.min_length,
                         temperature=saved.temperature if temperature is None else temperature,
                         thresholds=saved.thresholds, risk_coverage=saved.risk_coverage)
        self.directory = saved.source
        self.source = str(saved.source)
        self.saved_metadata = saved.metadata
        providers = execution_providers(device, onnxruntime.get_available_providers())
        try:
            options = onnxruntime.SessionOptions()
            # Idle intra-op threads sleep instead of spinning: a server runs many sessions' calls
            # at once, and spinning threads would take the cores those calls need.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if threads is not None:  # default: ONNX Runtime's own choice, one thread per core
                options.intra_op_num_threads = threads
            self.session = onnxruntime.InferenceSession(
                str(self.directory / MODEL_FILE), options, providers=providers
            )
        except Exception as error:  # onnxruntime raises its own Fail / InvalidGraph types
            raise UserInputError(
                f"{self.directory / MODEL_FILE} is not a loadable ONNX model ({str(error).splitlines()[0]}); export again"
            ) from None
        if providers[0] != CPU_PROVIDER and CUDA_PROVIDER not in self.session.get_providers() \
                and str(device).strip().lower() != "auto":
            raise unavailable(device, "onnxruntime could not start its CUDA provider on this machine")
        self.device = "cuda" if CUDA_PROVIDER in self.session.get_providers() else "cpu"
        self._check_graph_fits()

    def _check_graph_fits(self) -> None:
        """One row of the tokenizer's largest id through the graph: an embedding table smaller than the
        tokenizer, or a class count other than the label names', is refused now rather than per request."""
        largest = self.tokenizer.get_vocab_size(with_added_tokens=True) - 1
        probe = torch.full((1, self.min_length), largest, dtype=torch.int64)
        try:
            logits = self.forward_ids(probe)
        except Exception as error:  # onnxruntime's own error types
            raise damaged(str(self.directory / MODEL_FILE), f"it cannot score token id {largest} of its tokenizer "
                          f"({str(error).splitlines()[0][:200]})") from None
        if tuple(logits.shape) != (1, len(self.label_names)):
            raise damaged(str(self.directory / MODEL_FILE), f"it gives {list(logits.shape)[1:]} scores per text for "
                          f"{len(self.label_names)} label names")

    @classmethod
    def from_directory(cls, directory: Union[str, Path], temperature: Optional[float] = None,
                       device: str = "cpu") -> "OnnxPredictor":
        return cls(directory, temperature, device)


    def forward_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        (logits,) = self.session.run(["logits"], {"input_ids": input_ids.numpy()})
        return torch.from_numpy(logits)

    def describe(self) -> dict[str, Any]:
        return {
            "network": self.saved_metadata["network"],
            "vocab_size": self.saved_metadata["vocab_size"],
            "num_parameters": self.saved_metadata["num_parameters"],
            "size_bytes": (self.directory / MODEL_FILE).stat().st_size,
            "quantization": self.saved_metadata.get("quantization"),
            "device": self.device,
        }


def read_export(directory: Path) -> SavedModel:
    """An export directory's tokenizer and checked ``metadata.json`` as a :class:`SavedModel` (no weights:
    the graph, ``model.onnx``, is read by ONNX Runtime)."""
    for name in (MODEL_FILE, TOKENIZER_FILE, METADATA_FILE):
        if not (directory / name).is_file():
            raise UserInputError(f"{directory} has no {name}; pass a directory written by `textcnn export` "
                                 "(or a .ckpt checkpoint)")
    try:
        metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserInputError(f"cannot read {directory / METADATA_FILE} ({error}); export again") from None
    if not isinstance(metadata, dict) or metadata.get("format") not in (EXPORT_FORMAT, MULTI_LABEL_EXPORT_FORMAT):
        raise UserInputError(
            f"{directory / METADATA_FILE} has export format {_format_of(metadata)}, this textcnn "
            f"reads formats {EXPORT_FORMAT} and {MULTI_LABEL_EXPORT_FORMAT}; export the checkpoint again"
        )
    config = check_export_metadata(metadata, str(directory / METADATA_FILE))
    tokenizer = load_tokenizer(directory / TOKENIZER_FILE)
    check_vocabulary_fits(tokenizer, metadata["vocab_size"], str(directory / TOKENIZER_FILE))
    return SavedModel(kind="onnx", source=directory, config=config, vocab_size=metadata["vocab_size"],
                      label_names=metadata["label_names"], tokenizer=tokenizer, max_length=metadata["max_length"],
                      temperature=metadata.get("temperature", 1.0), thresholds=metadata.get("thresholds"),
                      risk_coverage=metadata.get("risk_coverage"),
                      metadata=metadata)


CUDA_PROVIDER, CPU_PROVIDER = "CUDAExecutionProvider", "CPUExecutionProvider"


def execution_providers(device: str, available: list[str]) -> list[str]:
    """ONNX Runtime's providers for ``device``: CUDA first (CPU kept for the operators it lacks) for
    cuda, and for auto when this onnxruntime build has it; the CPU alone otherwise."""
    text = str(device).strip().lower()
    if text not in ("auto", "cpu") and not text.startswith("cuda"):
        raise UserInputError(f"device {device!r} is not one an ONNX export runs on: pass cpu, cuda or auto "
                             "(an mps model needs the .ckpt or the model directory, on PyTorch)")
    if text.startswith("cuda") and CUDA_PROVIDER not in available:
        raise unavailable(text, f"this onnxruntime has no {CUDA_PROVIDER}: pip install onnxruntime-gpu")
    if text.startswith("cuda") and not re.fullmatch(r"cuda(:\d+)?", text):
        raise UserInputError(f"device {device!r} is not cuda or cuda:N (a GPU's index); pass one of those")
    if text != "cpu" and CUDA_PROVIDER in available:
        return [(CUDA_PROVIDER, {"device_id": int(text.partition(":")[2] or 0)}), CPU_PROVIDER]
    return [CPU_PROVIDER]


def _format_of(metadata: Any) -> Any:
    return metadata.get("format") if isinstance(metadata, dict) else None
