"""Which device a loaded model runs on: ``cpu``, ``cuda`` (``cuda:N``), ``mps``, or ``auto``.

``auto`` takes the first of cuda, mps and cpu that this machine has. A device that was asked for by
name and is missing is an error naming the devices there are, never a silent fall back to the CPU:
a service sized for a GPU would otherwise run, slowly, on the CPU.
"""

from __future__ import annotations

import re
from typing import Union

import torch

from textcnn.errors import UserInputError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
DEVICE_PATTERN = re.compile(r"(auto|cpu|mps|cuda)(:\d+)?")
DeviceSpec = Union[str, torch.device]


def available_devices() -> list[str]:
    """The devices this machine can run a PyTorch model on, most capable first (cpu always last)."""
    found = [f"cuda:{index}" if torch.cuda.device_count() > 1 else "cuda"
             for index in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if _mps_available():
        found.append("mps")
    return found + ["cpu"]


def resolve_device(device: DeviceSpec = "cpu") -> torch.device:
    """``device`` as a ``torch.device`` that exists here; ``auto`` picks cuda, then mps, then cpu."""
    text = str(device).strip().lower()
    match = DEVICE_PATTERN.fullmatch(text)
    if match is None or (match.group(2) and match.group(1) != "cuda"):
        raise UserInputError(f"device {device!r} is not one of {', '.join(DEVICE_CHOICES)} (or cuda:N); "
                             f"available here: {', '.join(available_devices())}")
    kind = match.group(1)
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu")
    if kind == "cuda":
        index = int(match.group(2)[1:]) if match.group(2) else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise unavailable(text)
        return torch.device("cuda", index)
    if kind == "mps" and not _mps_available():
        raise unavailable(text)
    return torch.device(kind)


def unavailable(device: str, reason: str = "") -> UserInputError:
    """The one-line error for a device this machine lacks."""
    because = f" ({reason})" if reason else ""
    return UserInputError(f"device {device!r} is not available here{because}; available: "
                          f"{', '.join(available_devices())} (or auto, which picks the first); pass one of those")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
