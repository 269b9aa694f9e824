"""textcnn: text classification with convolutional networks over embedding channels.

    import textcnn
    result = textcnn.train(df_train, test=df_test)      # DataFrames, files, datasets or (texts, labels)
    result.predictor.predict(["a gripping, funny film"])
    predictor = textcnn.load(result.checkpoint)           # later: no Lightning needed to predict
"""

from textcnn.errors import UserInputError
from textcnn.model import TextCNN, TextCNNConfig
from textcnn.inference import Predictor, load

__version__ = "0.1.0"
__all__ = ["Predictor", "TextCNN", "TextCNNConfig", "UserInputError", "load", "train"]


def __getattr__(name: str):
    """``textcnn.train`` is imported on first use: predicting never loads Lightning."""
    if name == "train":
        from textcnn.training.run import train

        return train
    raise AttributeError(f"module 'textcnn' has no attribute {name!r}")
