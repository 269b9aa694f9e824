"""Data: files or a Hub id in, checked splits, a trained tokenizer and batches of token ids out.

:class:`TextDataModule` (:mod:`~textcnn.data.datamodule`) is what training and evaluation use; it
builds on :mod:`~textcnn.data.samplers` (seeded, sharded batch order), :mod:`~textcnn.data.streaming`
(corpora larger than memory), :mod:`~textcnn.data.vectors` (pretrained word vectors) and
:mod:`~textcnn.data.distributed` (the tokenizer handed from rank 0 to the other processes).
"""

from textcnn.data.datamodule import TextDataModule, load_dataset_dict

__all__ = ["TextDataModule", "load_dataset_dict"]
