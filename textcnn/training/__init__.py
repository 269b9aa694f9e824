"""Training with PyTorch Lightning: the LightningModule, its callbacks, atomic checkpoint writing,
threshold tuning for multi-label models, and scoring a checkpoint on a labelled split.

:mod:`~textcnn.training.module` wraps the plain :class:`textcnn.model.TextCNN`;
:mod:`~textcnn.training.evaluation` scores what a run saved.
"""

from textcnn.training.module import TextCNNClassifier

__all__ = ["TextCNNClassifier"]
