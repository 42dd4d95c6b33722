"""Device selection shared by every torch code path (``--device auto|cpu|cuda``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .errors import user_error

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device", "cuda_available"]

log = logging.getLogger("neurodecon")


def cuda_available() -> bool:
    """Tell whether torch is importable and sees a CUDA device."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: str = "auto") -> torch.device:
    """Return a ``torch.device`` for ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    ``auto`` picks CUDA when present. Asking for CUDA on a machine without it falls back to the
    CPU with a visible warning (logged and printed by the CLI), never silently.
    """
    import torch

    name = (device or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if cuda_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if cuda_available():
            return torch.device(name)
        log.warning(
            "CUDA was requested but no CUDA device is available; running on the CPU instead."
        )
        return torch.device("cpu")
    raise user_error(f"unknown device {device!r}", fix="use one of auto, cpu, cuda")
