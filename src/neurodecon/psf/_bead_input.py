"""Bead-stack input: arrays, Images or paths to a (Z, Y, X) array with its voxel size."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from ..errors import user_error

__all__ = ["load_beads"]

log = logging.getLogger("neurodecon")


def load_beads(beads: Any, voxel_size_um, channel: int | None):
    """Return ``(data (Z, Y, X), voxel_size_um, path or None)`` from an array, Image or path."""
    from ..io import Image, read

    path: Any = None
    if isinstance(beads, (str, os.PathLike)):
        path = beads
        beads = read(beads, voxel_size_um=voxel_size_um)
    if isinstance(beads, Image):
        path = path or beads.metadata.get("source")  # named in one-line errors
        vox = tuple(voxel_size_um) if voxel_size_um is not None else beads.voxel_size_um
        if voxel_size_um is None and beads.voxel_size_assumed:
            log.warning(
                "bead stack has no voxel size; the FWHM and the ideal bead assume %s µm", vox
            )
        data = beads.data
        axes: str | None = beads.axes
        scaling = beads.metadata.get("scaling")
        if isinstance(scaling, dict) and "scale" in scaling:
            # a rescaled uint16 file from neurodecon: 65535 is the scaling's top, not saturation
            data = data.astype(np.float32) * np.float32(scaling["scale"]) + np.float32(
                scaling.get("offset", 0.0)
            )
    else:
        data = np.asarray(beads)
        axes = "ZYX"[-data.ndim :] if data.ndim <= 3 else None
        if voxel_size_um is None:
            raise user_error(
                "the voxel size of the bead stack is unknown",
                fix="pass voxel_size_um=(z, y, x) in µm",
            )
        vox = tuple(float(v) for v in voxel_size_um)
    data = _to_zyx(np.asarray(data), axes, channel, path)
    if len(vox) != 3 or not all(np.isfinite(v) and v > 0 for v in vox):
        raise user_error(
            f"invalid voxel size {vox}",
            path=path,
            fix="give three positive numbers (z, y, x) in µm",
        )
    return data, tuple(float(v) for v in vox), path


def _to_zyx(data: np.ndarray, axes: str | None, channel: int | None, path) -> np.ndarray:
    """Reduce channel/sample axes (RGB exports: the channel that holds the data) to (Z, Y, X)."""
    if axes is not None:
        for letter in "TCS":
            if letter in axes and data.ndim > 3:
                ax = axes.index(letter)
                data = _pick(data, ax, channel, path)
                axes = axes.replace(letter, "")
    elif data.ndim == 4:  # (Z, Y, X, RGB) or (C, Z, Y, X)
        data = _pick(data, 3 if data.shape[-1] in (3, 4) else 0, channel, path)
    if data.ndim == 2:
        raise user_error(
            "the bead image is 2-D",
            path=path,
            fix="give a z-stack (Z, Y, X) of beads; a single plane has no axial PSF",
        )
    if data.ndim != 3:
        raise user_error(
            f"expected a 3-D bead stack, got shape {data.shape}",
            path=path,
            fix="give a (Z, Y, X) stack, or choose a channel",
        )
    return data


def _pick(data: np.ndarray, ax: int, channel: int | None, path) -> np.ndarray:
    n = data.shape[ax]
    if channel is None:
        signal = [
            float(np.take(data, i, axis=ax).max()) - float(np.median(np.take(data, i, axis=ax)))
            for i in range(n)
        ]
        channel = int(np.argmax(signal))
        log.info(
            "bead stack has %d channels; using channel %d (the one with the most signal)",
            n,
            channel,
        )
    if not 0 <= channel < n:
        raise user_error(
            f"channel {channel} does not exist (the stack has {n})",
            path=path,
            fix=f"choose a channel between 0 and {n - 1}",
        )
    return np.take(data, channel, axis=ax)
