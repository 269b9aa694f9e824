"""Checkpoint writing for the Trainer: atomic, so a crash never leaves half a checkpoint."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any, Optional

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from textcnn.atomic import unwritable, write_atomic
from textcnn.inference.checkpoint import read_checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file in the same directory, then renames it into place,
    and reads it back (to resume) through textcnn's checked reader.

    A crash while saving leaves the previous file (e.g. ``last.ckpt``) whole: ``os.replace`` on one
    filesystem is atomic, so the path always holds a complete checkpoint or none. Reading never
    unpickles objects (``weights_only``), and a URL is refused rather than fetched.
    """

    def load_checkpoint(self, path: Any, map_location: Optional[Any] = None,
                        weights_only: Optional[bool] = None) -> dict[str, Any]:
        return read_checkpoint(path)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Optional[Any] = None) -> None:
        path = Path(path)
        try:
            write_atomic(path, lambda file: torch.save(checkpoint, file))
        except OSError as error:  # a full disk, a read-only directory
            raise unwritable(path.parent, error, SETTING) from None
        except RuntimeError:
            # torch's zip writer reports a failed write (a full disk) as a RuntimeError of its own
            # ("unexpected pos", "file write failed"), the OSError at most in its context
            needed, free = tensor_bytes(checkpoint), shutil.disk_usage(path.parent).free
            if free >= needed:
                raise
            full = OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: a checkpoint needs about "
                                         f"{_megabytes(needed)}, {_megabytes(free)} free")
            raise unwritable(path.parent, full, SETTING) from None


SETTING = "checkpoint.dirpath (or trainer.default_root_dir)"


def tensor_bytes(value: Any) -> int:
    """The bytes of the tensors in a checkpoint's nested dicts and lists: about what it takes on disk."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(item) for item in value)
    return 0


def _megabytes(count: int) -> str:
    return f"{count / 2**20:.1f} MB"
