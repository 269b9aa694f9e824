"""Predictors: texts in, label names and probabilities out. Neither needs a dataset or Lightning.

A single-label model gives each text one ``label`` (softmax over classes); a multi-label model gives
it a set of ``labels``: every class whose sigmoid probability reaches that class's threshold.

:class:`BasePredictor` holds everything that does not depend on how logits are computed — input
checks, encoding and padding, length-sorted batching, temperature, top-k formatting — so the PyTorch
:class:`Predictor` and the ONNX Runtime predictor (:mod:`textcnn.inference.onnx`) behave identically.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import torch
from tokenizers import Tokenizer

from textcnn.errors import UserInputError
from textcnn.inference.checkpoint import read_saved_checkpoint
from textcnn.inference.devices import DeviceSpec, resolve_device
from textcnn.inference.explain import Explainer, Explanation
from textcnn.inference import model_directory
from textcnn.inference.saved_model import SavedModel, refuse_onnx
from textcnn.inference.schema import decision_rule_problem
from textcnn.inference import selective
from textcnn.model import TextCNN
from textcnn.tokenizer import encode, pad_batch

Texts = Union[str, Sequence[str]]
# A Python str may hold surrogate code points (U+D800..U+DFFF) that are not Unicode text: the JSON
# escape "\ud800", an undecodable byte of a command-line argument (surrogateescape). No tokenizer
# can encode them.
SURROGATE = re.compile("[\ud800-\udfff]")


class NonFiniteScoresError(UserInputError):
    """The model computed NaN or infinite logits: a fault of the model, not of the texts."""


def decide(probabilities: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """(N, C) bool: class c is predicted when its probability reaches ``thresholds[c]`` (multi-label)."""
    return probabilities >= thresholds.to(probabilities)


class BasePredictor:
    """Shared by the PyTorch and ONNX predictors; subclasses implement :meth:`forward_ids`.

    Args:
        tokenizer / label_names / max_length: as at training time (texts keep ``max_length`` tokens).
        min_length: batches are padded to at least this many tokens (the widest kernel).
        temperature: probabilities are ``softmax(logits / temperature)``; fit it with
            ``textcnn.inference.calibration`` (``evaluate`` reports it). Labels do not depend on it.
        thresholds: a multi-label model's per-class decision thresholds on ``sigmoid(logits)``
            (tuned on validation, stored in the checkpoint); None for a single-label model.
        risk_coverage: a single-label model's validation risk–coverage table, which ``predict``'s
            ``min_precision`` reads (see :mod:`textcnn.inference.selective`); None if it has none.
    """

    backend = "base"

    def __init__(
        self,
        tokenizer: Tokenizer,
        label_names: Sequence[str],
        max_length: int = 128,
        min_length: int = 1,
        temperature: float = 1.0,
        thresholds: Optional[Sequence[float]] = None,
        risk_coverage: Optional[dict[str, Any]] = None,
    ):
        problem = decision_rule_problem(temperature, None if thresholds is None else list(thresholds), len(label_names))
        if problem is None and risk_coverage is not None:
            problem = selective.table_problem(risk_coverage)
            if problem is None and thresholds is not None:
                problem = "a multi-label model decides by its per-class thresholds and has no risk_coverage table"
        if problem:
            raise UserInputError(problem)
        self.tokenizer = tokenizer
        self.label_names = list(label_names)
        self.max_length = max_length
        self.min_length = min_length
        self.temperature = float(temperature)
        self.thresholds = None if thresholds is None else torch.tensor([float(t) for t in thresholds])
        self.risk_coverage = risk_coverage

    @property
    def multi_label(self) -> bool:
        return self.thresholds is not None

    def forward_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Padded ids (B, L) → logits (B, num_classes)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What ``GET /metadata`` shows besides labels: architecture and model size."""
        return {}

    def batch(self, texts: Sequence[str]) -> torch.Tensor:
        """Texts → padded ids (B, L), exactly as the training batches were built."""
        return pad_batch(encode(self.tokenizer, texts, self.max_length), self.min_length)

    def logits(self, texts: Texts, batch_size: int = 256) -> torch.Tensor:
        """(N, num_classes) logits in input order.

        Texts are encoded once, sorted by length and batched so that each batch pads only to its
        own longest text; padding does not change a text's logits, so order and grouping are free.
        """
        texts = checked_texts(texts)
        if batch_size < 1:
            raise UserInputError(f"batch_size must be a positive integer, got {batch_size}")
        ids = encode(self.tokenizer, texts, self.max_length)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        logits = torch.empty(len(ids), len(self.label_names))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            logits[rows] = self.forward_ids(pad_batch([ids[i] for i in rows], self.min_length)).float()
        if not torch.isfinite(logits).all():
            index = int((~torch.isfinite(logits)).any(dim=-1).nonzero()[0])
            raise NonFiniteScoresError(
                f"the model gives NaN or infinite scores for text {index}: its weights are broken (saved by a run "
                "that diverged?); train or export it again"
            )
        return logits

    def predict_proba(self, texts: Texts, batch_size: int = 256) -> torch.Tensor:
        """(N, num_classes) class probabilities, columns in ``label_names`` order: softmax, or for a
        multi-label model each class's own sigmoid (rows need not sum to 1)."""
        logits = self.logits(texts, batch_size)
        if self.multi_label:
            return logits.sigmoid()
        return (logits / self.temperature).softmax(dim=-1)

    def predict(self, texts: Texts, top_k: Optional[int] = None, batch_size: int = 256,
                min_confidence: Optional[float] = None, min_precision: Optional[float] = None) -> list[dict]:
        """One ``{"label": name, "probabilities": {name: p}}`` per text, in input order.

        A multi-label model gives ``{"labels": [name, …], "probabilities": {…}}`` instead: the set of
        classes at or above their thresholds, in ``label_names`` order (possibly empty).
        ``probabilities`` holds every class in ``label_names`` order, or with ``top_k`` the ``top_k``
        most probable classes, most probable first; ``top_k`` never changes ``labels``.
        A lone surrogate in a text (not Unicode text) is read as U+FFFD, see :func:`checked_texts`.

        Abstaining (single-label): with ``min_confidence`` a text whose largest probability is below
        it, with ``min_precision`` one below the lowest threshold at which the validation split's
        answered texts reach that accuracy, gets ``"label": None`` and ``"abstained": True``
        (every result then says ``"abstained"``); see :mod:`textcnn.inference.selective`.
        """
        num_classes = len(self.label_names)
        if top_k is not None and not 1 <= top_k <= num_classes:
            raise UserInputError(f"top_k must be between 1 and {num_classes} (the number of classes), got {top_k}")
        rule = self.abstention(min_confidence, min_precision)
        probabilities = self.predict_proba(texts, batch_size)
        ranked = probabilities.argsort(dim=-1, descending=True, stable=True)
        chosen = decide(probabilities, self.thresholds).tolist() if self.multi_label else None
        answered = None if rule is None else self._answered(probabilities, *rule).tolist()
        results = []
        for index, (row, order) in enumerate(zip(probabilities.tolist(), ranked.tolist())):
            shown = order[:top_k] if top_k is not None else range(num_classes)
            if self.multi_label:
                result = {"labels": [name for name, yes in zip(self.label_names, chosen[index]) if yes]}
            else:
                result = {"label": self.label_names[order[0]]}
            if answered is not None:
                result = {"label": result["label"] if answered[index] else None, "abstained": not answered[index]}
            result["probabilities"] = {self.label_names[i]: row[i] for i in shown}
            results.append(result)
        return results

    def abstention(self, min_confidence: Optional[float] = None, min_precision: Optional[float] = None,
                   names: tuple[str, str] = ("min_confidence", "min_precision"),
                   ) -> Optional[tuple[float, Optional[float]]]:
        """The rule a text is answered by: (threshold, temperature its confidence is taken at, None for
        the predictor's own); None when nothing is abstained. Refuses settings that cannot apply, in
        messages that call the two settings ``names`` (the command line's options, say)."""
        if min_confidence is None and min_precision is None:
            return None
        if min_confidence is not None and min_precision is not None:
            raise UserInputError(f"give {names[0]} or {names[1]}, not both")
        if self.multi_label:
            raise UserInputError(f"a multi-label model decides by its per-class thresholds (tuned on validation); "
                                 f"{names[0]} and {names[1]} are for single-label models")
        name, value = (names[0], min_confidence) if min_confidence is not None else (names[1], min_precision)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise UserInputError(f"{name} must be a probability between 0 and 1, got {value!r}")
        if min_confidence is not None:
            return float(min_confidence), None
        if self.risk_coverage is None:
            raise UserInputError(selective.no_table(self.backend, getattr(self, "source", None), names))
        threshold = selective.threshold_for_precision(self.risk_coverage, min_precision)
        if threshold is None:
            raise UserInputError(selective.unreachable(self.risk_coverage, min_precision, names))
        return threshold, self.risk_coverage["temperature"]

    def _answered(self, probabilities: torch.Tensor, threshold: float, temperature: Optional[float]) -> torch.Tensor:
        if temperature is None or temperature == self.temperature:
            return probabilities.amax(dim=-1) >= threshold
        # the logits up to a per-row constant, which the softmax ignores
        logits = probabilities.clamp_min(torch.finfo(probabilities.dtype).tiny).log() * self.temperature
        return selective.confidences(logits, temperature) >= threshold

    def metadata(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "label_names": self.label_names,
            "max_length": self.max_length,
            "temperature": self.temperature,
            "multi_label": self.multi_label,
            **({"thresholds": dict(zip(self.label_names, self.thresholds.tolist()))} if self.multi_label else {}),
            **({"abstaining": self.abstaining()} if self.risk_coverage is not None else {}),
            **self.describe(),
        }

    def abstaining(self) -> dict[str, Any]:
        """For each target precision, the ``min_precision`` threshold and the validation coverage it gave."""
        table, shown = self.risk_coverage, {}
        for precision in selective.TARGET_PRECISIONS:
            index = selective.row_for_precision(table, precision)
            shown[f"{precision:g}"] = None if index is None else {"threshold": table["threshold"][index],
                                                                  "coverage": table["coverage"][index]}
        return {"split": table["split"], "min_precision": shown}


class Predictor(BasePredictor):
    """Scores texts with a trained :class:`TextCNN` under ``torch.inference_mode``, on ``device``
    (see :mod:`textcnn.inference.devices`; logits come back on the CPU).

    Safe to share between threads: the model is only read, and explanations run on their own copy.
    ``provenance`` says how the model was made (training data settings, evaluations, languages,
    dataset ids); :meth:`save` writes it into the model card.
    """

    backend = "pytorch"

    def __init__(
        self,
        model: TextCNN,
        tokenizer: Tokenizer,
        label_names: Sequence[str],
        max_length: int = 128,
        temperature: float = 1.0,
        thresholds: Optional[Sequence[float]] = None,
        device: DeviceSpec = "cpu",
        provenance: Optional[dict[str, Any]] = None,
        risk_coverage: Optional[dict[str, Any]] = None,
    ):
        super().__init__(tokenizer, label_names, max_length, model.config.widest_kernel, temperature, thresholds,
                         risk_coverage)
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        self.provenance = dict(provenance or {})
        self.source: Optional[str] = None  # the file or directory it was read from, for messages
        self._explainer = None
        self._explainer_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its lock and its explainer (rebuilt on first use), e.g. inside a fitted estimator."""
        state = dict(self.__dict__)
        state.pop("_explainer_lock")
        state["_explainer"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._explainer_lock = threading.Lock()

    @classmethod
    def from_saved(cls, saved: SavedModel, temperature: Optional[float] = None,
                   device: DeviceSpec = "cpu") -> "Predictor":
        """The predictor of a checkpoint or a model directory read by :func:`read_saved_model`.
        ``temperature`` defaults to the saved one (1 for a checkpoint)."""
        refuse_onnx(saved, "a PyTorch predictor")
        predictor = cls(saved.network(), saved.tokenizer, saved.label_names, max_length=saved.max_length,
                        temperature=saved.temperature if temperature is None else temperature,
                        thresholds=saved.thresholds, device=device, provenance=saved.provenance,
                        risk_coverage=saved.risk_coverage)
        predictor.source = str(saved.source)
        return predictor

    @classmethod
    def from_checkpoint(cls, path: Union[str, Path], temperature: float = 1.0, device: DeviceSpec = "cpu") -> "Predictor":
        return cls.from_saved(read_saved_checkpoint(path), temperature, device)

    @classmethod
    def from_directory(cls, directory: Union[str, Path], temperature: Optional[float] = None,
                       device: DeviceSpec = "cpu") -> "Predictor":
        """A model directory (``model.safetensors`` + ``config.json`` + ``tokenizer.json``): no pickle is
        read. ``temperature`` defaults to the saved one."""
        return cls.from_saved(model_directory.read_directory(directory), temperature, device)

    def save(self, directory: Union[str, Path], repo_id: Optional[str] = None,
             metrics: Optional[dict[str, Any]] = None, language: Sequence[str] = (),
             datasets: Sequence[str] = (), force: bool = False) -> dict[str, Any]:
        """Write the model directory the way Hugging Face models ship (safetensors weights, config.json,
        tokenizer.json, README.md model card), then read it back and check that it gives the same logits.
        ``force``: replace files of those names that textcnn did not write (refused otherwise).

        ``metrics``: a report printed by ``textcnn evaluate``, for the card; ``language``: language codes
        (``["en"]``); ``datasets``: Hub dataset ids; ``repo_id``: the Hub id the card's example loads.
        """
        files = model_directory.save_directory(self, directory, repo_id, metrics, language, datasets, force=force)
        texts = probe_texts(self)
        max_abs_diff = float((Predictor.from_directory(directory, self.temperature, self.device).logits(texts)
                              - self.logits(texts)).abs().max())
        if max_abs_diff != 0.0:
            raise RuntimeError(f"the saved model's logits differ from this model's by {max_abs_diff:.2e}")
        return {"output": str(directory), "files": [str(path) for path in files],
                "max_abs_diff_vs_pytorch": max_abs_diff, "probe_texts": len(texts)}

    def push_to_hub(self, repo_id: str, token: Optional[str] = None, private: bool = False,
                    metrics: Optional[dict[str, Any]] = None, language: Sequence[str] = (),
                    datasets: Sequence[str] = (), commit_message: str = "Upload textcnn model") -> str:
        """Save the model directory (see :meth:`save`) and upload it to the Hub repository ``repo_id``
        (created if need be) with ``huggingface_hub``; returns the commit's URL. ``token`` defaults to
        ``HF_TOKEN`` or the one ``hf auth login`` saved."""
        from textcnn.inference import hub

        with tempfile.TemporaryDirectory(prefix="textcnn-push-") as directory:
            self.save(directory, repo_id=repo_id, metrics=metrics, language=language, datasets=datasets)
            return hub.upload(Path(directory), repo_id, token=token, private=private, commit_message=commit_message)

    @torch.inference_mode()
    def forward_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids.to(self.device)).cpu()

    def describe(self) -> dict[str, Any]:
        parameters = list(self.model.parameters())
        return {
            "network": dataclasses.asdict(self.model.config),
            "vocab_size": self.model.embedding.num_embeddings,
            "num_parameters": sum(p.numel() for p in parameters),
            "size_bytes": sum(p.numel() * p.element_size() for p in parameters),
            "device": str(self.device),
        }

    def explain(self, texts: Texts, label: Optional[str] = None, batch_size: int = 256) -> list[Explanation]:
        """Which n-grams won the max-pooling and how much each added to a class's logit.

        ``label`` defaults to each text's predicted class. See :mod:`textcnn.inference.explain`.
        Explanations are computed on the CPU (a copy of the model, if it runs elsewhere).
        """
        with self._explainer_lock:
            if self._explainer is None:
                model = self.model if self.device.type == "cpu" else copy.deepcopy(self.model).cpu()
                self._explainer = Explainer(model, self.tokenizer, self.label_names, self.max_length)
        return self._explainer.explain(checked_texts(texts), label=label, batch_size=batch_size)


def probe_texts(predictor: BasePredictor) -> list[str]:
    """Texts that exercise a model's edge cases, built from its own vocabulary: empty, punctuation only,
    shorter than the widest kernel, and longer than ``max_length`` (truncated). Exports and saved model
    directories are checked against the model on them."""
    words = [token for token in predictor.tokenizer.get_vocab() if token.isalpha()][: 2 * predictor.max_length]
    return [
        "",
        "!",
        "a gripping , funny film",
        "dull and lifeless",
        " ".join(words[: predictor.max_length // 2]),
        " ".join(words),  # longer than max_length: truncated
    ]


def checked_texts(texts: Texts) -> list[str]:
    """A non-empty list of strings, or a :class:`UserInputError` naming the first bad entry.

    Lone surrogates are replaced with U+FFFD (the replacement character), as a UTF-8 decoder does
    with bytes it cannot read; a surrogate pair written as two code points becomes its character.
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise UserInputError("no texts to predict; pass at least one text")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise UserInputError(f"text {index} is {type(text).__name__}, not str; pass strings only")
        if SURROGATE.search(text):
            texts[index] = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return texts


def first_surrogate(text: str) -> Optional[int]:
    """The position of the first surrogate code point in ``text`` (not Unicode text), None if none."""
    match = SURROGATE.search(text)
    return None if match is None else match.start()
