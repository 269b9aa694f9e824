"""Kept so that the class paths recorded in saved ``config.yaml`` files (``textcnn.callbacks.…``) still
resolve; the code lives in :mod:`textcnn.training.callbacks`."""

from textcnn.training.callbacks import BestAndLastCheckpoint, RandomState, SaveTokenizer

__all__ = ["BestAndLastCheckpoint", "RandomState", "SaveTokenizer"]
