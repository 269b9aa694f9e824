"""Kept so that the class paths recorded in saved ``config.yaml`` files (``textcnn.checkpoint.…``) still
resolve; the code lives in :mod:`textcnn.training.checkpoint_io`."""

from textcnn.training.checkpoint_io import AtomicCheckpointIO

__all__ = ["AtomicCheckpointIO"]
