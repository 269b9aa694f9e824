"""Data: files or a Hub id in, checked splits, a trained tokenizer and batches of token ids out.

:class:`TextDataModule` (:mod:`~textcnn.data.datamodule`) is what training and evaluation use; it
builds on :mod:`~textcnn.data.samplers` (seeded, sharded batch order), :mod:`~textcnn.data.streaming`
(corpora larger than memory), :mod:`~textcnn.data.vectors` (pretrained word vectors) and
:mod:`~textcnn.data.distributed` (the tokenizer handed from rank 0 to the other processes).
"""

__all__ = ["TextDataModule", "load_dataset_dict"]


def __getattr__(name: str):
    """Imported on first use: reading a file or a dataset (``textcnn.data.files``, ``.sources``) does
    not load Lightning, which the data module needs."""
    if name == "TextDataModule":
        from textcnn.data.datamodule import TextDataModule

        return TextDataModule
    if name == "load_dataset_dict":
        from textcnn.data.sources import load_dataset_dict

        return load_dataset_dict
    raise AttributeError(f"module 'textcnn.data' has no attribute {name!r}")
