"""Several training processes (Lightning DDP): who is rank 0 before the process group exists, and
how rank 0 hands a file it made to the others.

The training CLI builds the model while it parses the config, before Lightning starts the other
processes (``strategy: ddp``) or creates the process group, so nothing can be broadcast then. What
rank 0 makes at that point (the tokenizer) goes through a file instead: rank 0 writes it atomically,
the others wait for it (``textcnn.atomic``). On several nodes that file must be on storage all nodes share.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from textcnn.errors import UserInputError

log = logging.getLogger(__name__)

# torchrun sets RANK; SLURM's srun sets SLURM_PROCID; Lightning's own launcher starts ranks 1.. of
# a node with LOCAL_RANK set, and reads which node it is on from NODE_RANK.
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK")
WAIT_S = 600.0
POLL_S = 0.2


def launch_rank() -> str:
    """This process as its launcher named it, e.g. ``RANK=3`` or ``LOCAL_RANK=1``; ``""`` for rank 0."""
    named = [f"{name}={os.environ[name]}" for name in RANK_VARIABLES if os.environ.get(name, "0") != "0"]
    return ", ".join(named)


def is_launch_rank_zero() -> bool:
    """True in a single process and in rank 0 of a distributed run, judged from the launcher's
    environment variables (the only thing known before Lightning sets the process group up)."""
    return not launch_rank()


def wait_for_file(path: Path, what: str, fix: str, timeout_s: float | None = None) -> str:
    """The text of ``path`` once rank 0 has written it; a clear error after ``timeout_s`` (WAIT_S)."""
    timeout_s = WAIT_S if timeout_s is None else timeout_s
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise UserInputError(
                f"{launch_rank()} waited {timeout_s:.0f} s for the {what} that rank 0 writes to {path}, "
                f"and it never appeared; {fix}"
            )
        time.sleep(POLL_S)
    return path.read_text(encoding="utf-8")
