"""Temperature scaling (Guo et al., 2017): one scalar ``T`` so that ``softmax(logits / T)`` says how
often the model is right. Fitted on the validation split by minimising the negative log-likelihood;
it never changes a prediction, only its confidence. Expected calibration error (ECE, 15 equal-width
confidence bins) measures the gap between confidence and accuracy before and after.

The temperature is judged where it was fitted: it is kept only when it lowers the validation
split's NLL by at least :data:`MIN_NLL_GAIN`; otherwise the model's own probabilities (T = 1) stand.
The evaluated split (test) is reported beside it as the check, never used to decide.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

ECE_BINS = 15
# Nats of validation NLL a temperature must save to be kept: a smaller gain is within what the fit
# picks up from the split's noise, and a well-calibrated model's T ~ 1 changes nothing worth a setting.
MIN_NLL_GAIN = 1e-3


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
    """Fit ``T`` on validation; NLL and ECE with T = 1 and T on validation (where it was fitted) and
    on ``split`` (``logits``, ``labels``: the check). ``temperature`` is the one to predict with: the
    fitted one when ``kept``, else 1."""
    fitted = fit_temperature(validation_logits, validation_labels)
    on_validation = _nll_and_ece(validation_logits, validation_labels, fitted)
    kept = on_validation["nll_before"] - on_validation["nll_after"] >= MIN_NLL_GAIN
    report = {
        "temperature": fitted if kept else 1.0,
        "fitted_temperature": fitted,
        "kept": kept,
        "fitted_on": "validation",
        "evaluated_on": split,
        "ece_bins": ECE_BINS,
        "validation": on_validation,
    }
    if split != "validation":
        report[split] = _nll_and_ece(logits, labels, fitted)
    return report


def _nll_and_ece(logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> dict[str, float]:
    def nll(t: float) -> float:
        return float(F.cross_entropy(logits.float() / t, labels))

    return {
        "nll_before": nll(1.0),
        "nll_after": nll(temperature),
        "ece_before": expected_calibration_error(logits, labels),
        "ece_after": expected_calibration_error(logits, labels, temperature),
    }


def describe(report: dict[str, Any]) -> str:
    """One line on what the fitted temperature did and whether it is kept."""
    fitted, validation = report["fitted_temperature"], report["validation"]
    line = (f"calibration: temperature {fitted:.3f} fitted on validation: NLL {validation['nll_before']:.4f} → "
            f"{validation['nll_after']:.4f}, ECE {validation['ece_before']:.3f} → {validation['ece_after']:.3f}")
    check = report.get(report["evaluated_on"]) if report["evaluated_on"] != "validation" else None
    if check is not None:
        line += (f"; {report['evaluated_on']} (the check): NLL {check['nll_before']:.4f} → {check['nll_after']:.4f}, "
                 f"ECE {check['ece_before']:.3f} → {check['ece_after']:.3f}")
    if report["kept"]:
        return line + f"; kept: predict with --temperature {fitted:.3f}"
    return line + f"; not kept (validation NLL improved by under {MIN_NLL_GAIN}): probabilities stay as trained"
