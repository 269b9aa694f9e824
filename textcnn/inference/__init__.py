"""Inference: load a trained model and predict, explain, export or serve it — without Lightning.

``read_saved_model`` (:mod:`textcnn.inference.loader`) reads any saved model once into a
:class:`SavedModel`; ``load`` returns a :class:`Predictor` for a ``.ckpt`` (read with
``weights_only=True``, :mod:`~textcnn.inference.checkpoint`) or a model directory (safetensors, no
pickle: :mod:`~textcnn.inference.model_directory`, also fetched by Hub id: :mod:`~textcnn.inference.hub`),
or an ONNX Runtime predictor for an export directory (:mod:`~textcnn.inference.onnx`, written by
:mod:`~textcnn.inference.export`), on the device :mod:`~textcnn.inference.devices` resolves. Every file
is read through the checks of :mod:`~textcnn.inference.schema`.
:mod:`~textcnn.inference.explain`, :mod:`~textcnn.inference.serve` and
:mod:`~textcnn.inference.calibration` build on a predictor; :mod:`~textcnn.inference.ensemble` averages several. Nothing here imports Lightning or torchmetrics
except calibration (used by ``evaluate``).
"""

from textcnn.inference.loader import load, read_saved_model
from textcnn.inference.ensemble import Ensemble
from textcnn.inference.predictor import BasePredictor, Predictor
from textcnn.inference.saved_model import SavedModel

__all__ = ["BasePredictor", "Ensemble", "Predictor", "SavedModel", "load", "read_saved_model"]
