"""Kept so that the class paths recorded in saved ``config.yaml`` files (``textcnn.lit.…``) still
resolve; the code lives in :mod:`textcnn.training.module`."""

from textcnn.training.module import TextCNNClassifier

__all__ = ["TextCNNClassifier"]
