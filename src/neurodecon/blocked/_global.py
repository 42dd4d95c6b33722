"""Decisions a blocked run makes once for the whole volume, never per block.

The background, the flat start's level, ``iterations="auto"`` and a network's normalisation
depend on the data; made per block they would change from block to block and leave seams. They
are made here once: exactly on the whole volume when it is small (≤ ``EXACT_BYTES`` in float32
and a quarter of the memory available, so a blocked run equals the whole-volume run), else on
representative crops spread through it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ._tasks import read_region

__all__ = [
    "sample_volume",
    "global_background",
    "flat_level",
    "global_regularization",
    "auto_iterations",
    "EXACT_BYTES",
]

log = logging.getLogger("neurodecon")

#: Volumes up to this float32 size are read whole for the global decisions (exact).
EXACT_BYTES = 1 << 30
#: Crops of a larger volume: this many, each of at most ``CROP`` voxels, spread along z and y.
N_CROPS = 8
CROP = (16, 192, 192)


def sample_volume(
    source: Any, shape: tuple[int, ...], frame: tuple[int, ...] | None = None
) -> tuple[np.ndarray, bool]:
    """Return ``(volume or stacked crops (Z', Y', X), exact)`` of one 3D frame.

    ``frame``: the (time, channel) index; the first frame by default. The whole frame when it
    takes at most ``EXACT_BYTES`` and a quarter of the memory available in float32; else
    ``N_CROPS`` crops stacked along z.
    """
    from ..memory import available_bytes

    lead: tuple[Any, ...] = tuple(frame) if frame is not None else tuple(0 for _ in shape[:-3])
    spatial = shape[-3:]
    budget = min(EXACT_BYTES, 0.25 * (available_bytes() or EXACT_BYTES * 4))
    if int(np.prod(spatial)) * 4 <= budget:
        region = read_region(source, (*lead, slice(None), slice(None), slice(None)))
        return region.reshape(spatial), True
    crop = [min(c, n) for c, n in zip(CROP, spatial, strict=True)]
    crops = []
    for k in range(N_CROPS):
        f = (k + 0.5) / N_CROPS
        z0 = int(f * (spatial[0] - crop[0]))
        y0 = int(((k * 3 % N_CROPS) + 0.5) / N_CROPS * (spatial[1] - crop[1]))
        x0 = (spatial[2] - crop[2]) // 2
        index = (*lead, slice(z0, z0 + crop[0]), slice(y0, y0 + crop[1]), slice(x0, x0 + crop[2]))
        crops.append(read_region(source, index).reshape(crop))
    return np.concatenate(crops, axis=0), False


def global_background(sample: np.ndarray, background: float | str) -> float:
    """Return ``background`` as a number (``"auto"``: estimated on the sample)."""
    if isinstance(background, str):
        from ..classical import estimate_background

        value = float(estimate_background(sample))
        log.info(f"background=auto: {value:.4g} (decided once for the whole volume)")
        return value
    return float(background)


def flat_level(sample: np.ndarray, background: float, method: str) -> float:
    """Return the flat start's level of the whole volume: its mean above the background.

    As the whole-volume run computes it: negative data count as 0 for the Poisson methods.
    """
    from ..classical import POISSON_METHODS

    data = np.clip(sample, 0, None) if method in POISSON_METHODS else sample
    b = max(background, 0.0) if method in POISSON_METHODS else background
    return max(float(data.mean(dtype=np.float64)) - b, 0.0)


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
