"""Temperature scaling (Guo et al., 2017): one scalar ``T`` so that ``softmax(logits / T)`` says how
often the model is right. Fitted on the validation split by minimising the negative log-likelihood;
it never changes a prediction, only its confidence. Expected calibration error (ECE, 15 equal-width
confidence bins) measures the gap between confidence and accuracy before and after.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

ECE_BINS = 15


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 100) -> float:
    """The ``T > 0`` minimising the cross-entropy of ``logits / T`` (N, C) against ``labels`` (N,)."""
    with torch.inference_mode(False), torch.enable_grad():  # callers may be under inference_mode
        logits, labels = logits.detach().double().clone(), labels.detach().clone()
        log_temperature = torch.zeros(1, dtype=torch.float64, requires_grad=True)  # T = exp(·) stays positive
        optimizer = torch.optim.LBFGS([log_temperature], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(logits / log_temperature.exp(), labels)
            loss.backward()
            return loss

        optimizer.step(closure)
    return float(log_temperature.detach().exp())


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    probabilities = (logits.float() / temperature).softmax(dim=-1)
    return float(multiclass_calibration_error(probabilities, labels, num_classes=logits.shape[1], n_bins=ECE_BINS))


def calibration_report(
    validation_logits: torch.Tensor,
    validation_labels: torch.Tensor,
    logits: torch.Tensor,
    labels: torch.Tensor,
    split: str,
) -> dict[str, Any]:
    """Fit ``T`` on validation; ECE and NLL on ``split`` (``logits``, ``labels``) with T = 1 and T."""
    temperature = fit_temperature(validation_logits, validation_labels)

    def nll(t: float) -> float:
        return float(F.cross_entropy(logits.float() / t, labels))

    return {
        "temperature": temperature,
        "fitted_on": "validation",
        "evaluated_on": split,
        "ece_bins": ECE_BINS,
        "ece_before": expected_calibration_error(logits, labels),
        "ece_after": expected_calibration_error(logits, labels, temperature),
        "nll_before": nll(1.0),
        "nll_after": nll(temperature),
    }
