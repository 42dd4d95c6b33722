"""How networks compute: precision (bf16, fp16 + gradient scaling, fp32) and memory layout."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import torch

__all__ = [
    "cpu_has_fast_bf16",
    "cuda_amp_dtype",
    "training_autocast",
    "precision_name",
    "place_network",
]

M = TypeVar("M", bound=torch.nn.Module)


def cpu_has_fast_bf16() -> bool:
    """Tell whether the CPU has native bf16 (AVX512-BF16 or AMX).

    There bf16 autocast is ~1.8× faster; without it (e.g. AVX2-only CPUs) bf16 3D convolutions
    are over 100× slower.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cuda_amp_dtype(device: torch.device) -> torch.dtype | None:
    """Return the mixed-precision type on CUDA: bf16 where supported, else fp16; None on the CPU.

    fp16 overflowed here: the paper-width network (16 base channels, lr 1e-3, no normalisation
    layers) trained on an H100 with fp16 autocast produced a NaN loss at step 149, where bf16's
    float32 exponent range leaves headroom.
    """
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _cpu_bf16(bf16: bool | None) -> bool:
    return cpu_has_fast_bf16() if bf16 is None else bool(bf16)


def training_autocast(device: torch.device, bf16: bool | None) -> torch.autocast:
    """Return the autocast context of a training or validation forward pass.

    CUDA: :func:`cuda_amp_dtype`. CPU: bf16 when ``bf16`` is true, or when it is ``None`` and
    the CPU has native bf16; fp32 otherwise.
    """
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=cuda_amp_dtype(device))
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=_cpu_bf16(bf16))


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """Return the gradient scaler: on for fp16 only (bf16 has float32's exponent range)."""
    return torch.amp.GradScaler("cuda", enabled=cuda_amp_dtype(device) == torch.float16)


def precision_name(device: torch.device, bf16: bool | None) -> str:
    """Return what :func:`training_autocast` does, in words (recorded in ``config.json``)."""
    if device.type == "cuda":
        if cuda_amp_dtype(device) == torch.bfloat16:
            return "bf16 autocast"
        return "fp16 autocast + gradient scaling"
    return "bf16 autocast" if _cpu_bf16(bf16) else "fp32"


def place_network(net: M, device: torch.device) -> M:
    """Move ``net`` to ``device`` in the memory layout its convolutions are fastest in there.

    On the CPU the weights (and so the activations) are kept channels last, the layout
    oneDNN's convolutions prefer: the same arithmetic in another order, measured on two cores
    1.3–2.1× faster training steps and 1.1–1.9× faster inference for the four 3D networks and
    Self-Net's 2D one (BENCHMARKS.md, "Memory layout"). On CUDA PyTorch's default layout, as
    measured there before. Inputs need no conversion: with one channel both layouts are the same
    memory, and a convolution follows its weights' layout.
    """
    if device.type != "cpu":
        return net.to(device)
    has_3d = any(isinstance(m, torch.nn.Conv3d) for m in net.modules())
    fmt = torch.channels_last_3d if has_3d else torch.channels_last
    # Module.to documents memory_format; torch's type stubs leave it out
    return net.to(device, memory_format=fmt)  # type: ignore[call-overload]
