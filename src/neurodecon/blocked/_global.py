"""Decisions a blocked run makes once for the whole volume, never per block.

The background, the flat start's level, ``iterations="auto"`` and a network's normalisation
depend on the data; made per block they would change from block to block and leave seams. They
are made here once. The background, the flat level and the normalisation see the whole frame
(:mod:`._summary`: read whole when it fits, else in one streaming pass); a closed-form filter's
regularization, ``iterations="auto"`` and a network's input-level check run a deconvolution or a
noise calibration, so they use the whole frame when it fits, else representative crops.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ._tasks import read_region

__all__ = ["representative_crops", "global_regularization", "auto_iterations"]

log = logging.getLogger("neurodecon")

#: Crops of a larger volume: this many, each of at most ``CROP`` voxels, spread along z and y.
N_CROPS = 8
CROP = (16, 192, 192)


def representative_crops(
    source: Any, shape: tuple[int, ...], frame: tuple[int, ...] | None = None
) -> np.ndarray:
    """Return ``N_CROPS`` crops of one 3D frame (the first by default) stacked along z.

    For the decisions that run a deconvolution or a noise calibration on a frame too large to
    read whole (:class:`._summary.FrameSummary` holds the frame itself when it fits).
    """
    lead: tuple[Any, ...] = tuple(frame) if frame is not None else tuple(0 for _ in shape[:-3])
    spatial = shape[-3:]
    crop = [min(c, n) for c, n in zip(CROP, spatial, strict=True)]
    crops = []
    for k in range(N_CROPS):
        f = (k + 0.5) / N_CROPS
        z0 = int(f * (spatial[0] - crop[0]))
        y0 = int(((k * 3 % N_CROPS) + 0.5) / N_CROPS * (spatial[1] - crop[1]))
        x0 = (spatial[2] - crop[2]) // 2
        index = (*lead, slice(z0, z0 + crop[0]), slice(y0, y0 + crop[1]), slice(x0, x0 + crop[2]))
        crops.append(read_region(source, index).reshape(crop))
    return np.concatenate(crops, axis=0)


def auto_iterations(
    source: Any, shape: tuple[int, ...], psf: np.ndarray, method: str, options: dict[str, Any]
) -> int:
    """``iterations="auto"`` decided once, on the central crop of at most 64×256×256 voxels.

    Every block starts from the flat estimate, so the count is the one ``auto`` gives a run from
    the flat start (:meth:`~neurodecon.classical.Deconvolver.count_from_flat`), not the warm
    start's of a whole-volume ``rl``/``rl-accel`` run.
    """
    from ..classical import Deconvolver

    spatial = shape[-3:]
    size = [min(c, n) for c, n in zip((64, 256, 256), spatial, strict=True)]
    start = [(n - c) // 2 for n, c in zip(spatial, size, strict=True)]
    index: tuple[Any, ...] = (
        *(0 for _ in shape[:-3]),
        *(slice(s, s + c) for s, c in zip(start, size, strict=True)),
    )
    crop = read_region(source, index).reshape(size)
    dec = Deconvolver(psf, crop.shape, method=method, regularization=options["regularization"],
                      boundary=options["boundary"], device=options["device"])  # fmt: skip
    count = dec.count_from_flat(
        crop, background=options["background"], initial=options["initial"],
        background_mode=options["background_mode"],
    ).iterations  # fmt: skip
    log.info(
        f"iterations=auto: {count} (decided once, on the central {'×'.join(map(str, size))} crop)"
    )
    return count


def global_regularization(sample: np.ndarray, psf: np.ndarray, method: str, b: float) -> float:
    """Return a closed-form filter's regularization, estimated once on the sample.

    Estimated per block, it would follow each block's content and the blocks would not agree.
    """
    from ..classical import deconvolve

    res = deconvolve(sample, psf, method, background=b, return_result=True)
    reg = res.regularization
    value = float(reg if isinstance(reg, int | float) else 0.0)
    log.info(f"{method} regularization: {value:.4g} (decided once for the whole volume)")
    return value
