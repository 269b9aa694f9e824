"""textcnn: text classification with convolutional networks over embedding channels.

    import textcnn
    predictor = textcnn.load("runs/sst2/lightning_logs/version_0/checkpoints/last.ckpt")
    predictor.predict(["a gripping, funny film"])
"""

from textcnn.errors import UserInputError
from textcnn.model import TextCNN, TextCNNConfig
from textcnn.inference import Predictor, load

__all__ = ["Predictor", "TextCNN", "TextCNNConfig", "UserInputError", "load"]
__version__ = "0.1.0"
