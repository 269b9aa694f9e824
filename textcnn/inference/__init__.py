"""Inference: load a trained model and predict, explain, export or serve it — without Lightning.

``load`` (:mod:`textcnn.inference.loader`) returns a :class:`Predictor` for a ``.ckpt`` (read with
``weights_only=True``, :mod:`~textcnn.inference.checkpoint`) or a model directory (safetensors, no
pickle: :mod:`~textcnn.inference.model_directory`, also fetched by Hub id: :mod:`~textcnn.inference.hub`),
or an ONNX Runtime predictor for an export directory (:mod:`~textcnn.inference.onnx`, written by
:mod:`~textcnn.inference.export`), on the device :mod:`~textcnn.inference.devices` resolves. Every file
is read through the checks of :mod:`~textcnn.inference.schema`.
:mod:`~textcnn.inference.explain`, :mod:`~textcnn.inference.serve` and
:mod:`~textcnn.inference.calibration` build on a predictor; :mod:`~textcnn.inference.ensemble` averages several. Nothing here imports Lightning or torchmetrics
except calibration (used by ``evaluate``).
"""

from textcnn.inference.loader import load
from textcnn.inference.ensemble import Ensemble
from textcnn.inference.predictor import BasePredictor, Predictor

__all__ = ["BasePredictor", "Ensemble", "Predictor", "load"]
