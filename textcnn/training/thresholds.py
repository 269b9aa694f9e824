"""Multi-label classification: the per-class decision thresholds tuned on the validation split.

A multi-label model scores every class independently (sigmoid of its logit) and predicts the set
of classes whose probability reaches that class's threshold. Thresholds are tuned on the validation
split, per class, to maximise that class's F1 over :data:`THRESHOLD_GRID`. A class that the
validation split cannot tune keeps 0.5: fewer than :data:`MIN_POSITIVES` positive examples, or F1 = 0
at every threshold. (For a class the model has barely learned, the F1-optimal threshold is to
predict it for nearly every text, Lipton et al. 2014; measured on a few positives that choice
costs micro-F1 far more than it gains the class.)
"""

from __future__ import annotations

import torch

DEFAULT_THRESHOLD = 0.5
THRESHOLD_GRID = torch.arange(1, 20) / 20  # 0.05, 0.10, …, 0.95: coarse enough not to fit noise
MIN_POSITIVES = 20  # positive validation examples a class needs for its threshold to be tuned


def tune_thresholds(
    precision: torch.Tensor, recall: torch.Tensor, grid: torch.Tensor, positives: torch.Tensor
) -> torch.Tensor:
    """(C,) thresholds maximising each class's F1, from a precision-recall curve over ``grid``.

    ``precision`` and ``recall`` are (C, len(grid) + 1), as torchmetrics'
    ``MultilabelPrecisionRecallCurve(thresholds=grid)`` returns them (the last column is the
    curve's end point, not a threshold); ``positives`` (C,) counts each class's positive examples.
    Ties go to the lowest threshold.
    """
    precision, recall = precision[:, : len(grid)].nan_to_num(0.0), recall[:, : len(grid)].nan_to_num(0.0)
    f1 = (2 * precision * recall / (precision + recall)).nan_to_num(0.0)  # (C, T)
    thresholds = grid.to(f1.device)[f1.argmax(dim=1)]
    untunable = (f1.amax(dim=1) == 0) | (positives.to(f1.device) < MIN_POSITIVES)
    return torch.where(untunable, torch.full_like(thresholds, DEFAULT_THRESHOLD), thresholds)
