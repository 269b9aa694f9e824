"""Checkpoint writing for the Trainer: atomic, so a crash never leaves half a checkpoint."""

from __future__ import annotations

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
        try:
            write_atomic(Path(path), lambda file: torch.save(checkpoint, file))
        except OSError as error:  # a full disk, a read-only directory
            raise unwritable(Path(path).parent, error, "checkpoint.dirpath (or trainer.default_root_dir)") from None
