"""textcnn: text classification with convolutional networks over embedding channels.

    import textcnn
    result = textcnn.train(df_train, test=df_test)      # DataFrames, files, datasets or (texts, labels)
    result.predictor.predict(["a gripping, funny film"])
    predictor = textcnn.load(result.checkpoint)           # later: no Lightning needed to predict
"""

from textcnn.errors import UserInputError, missing_extra

__version__ = "0.1.0"
__all__ = ["Predictor", "TextCNN", "TextCNNConfig", "UserInputError", "audit", "load", "train"]

# Imported on first use, so that ``textcnn --help`` starts without torch and predicting never loads Lightning.
_LAZY = {"TextCNN": "textcnn.model", "TextCNNConfig": "textcnn.model", "Predictor": "textcnn.inference",
         "load": "textcnn.inference", "train": "textcnn.training.run", "audit": "textcnn.training.audit"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        try:
            module = importlib.import_module(_LAZY[name])
        except ModuleNotFoundError as error:  # e.g. textcnn.train without the [train] extra
            raise (missing_extra(error, f"textcnn.{name}") or error) from None
        return getattr(module, name)
    raise AttributeError(f"module 'textcnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
