"""What a model was trained for, checked at inference: voxel size and intensity levels.

``predict`` warns in one line when an input's voxel size differs from the model's by more than
10 % on an axis, and when its dark level or the photons of its brightest structures — measured
with :func:`neurodecon.metrics.calibrate_noise` on at most :data:`LEVEL_CHECK_VOXELS` voxels —
lie outside the range the training inputs spanned by more than a factor 2.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import NeuroDeconError
from ._model import Model

__all__ = ["check_voxel_size", "check_levels", "trained_levels", "LEVEL_CHECK_VOXELS"]

log = logging.getLogger("neurodecon")

#: Voxels the level check calibrates at most (the centre of a larger input).
LEVEL_CHECK_VOXELS = 2_000_000
#: How far outside the trained range an input's level may be before ``predict`` warns.
LEVEL_FACTOR = 2.0


def check_voxel_size(
    model: Model, voxel_size_um: Sequence[float] | None, *, rtol: float = 0.1
) -> str | None:
    """Warn (one line) when the image's voxel size differs from the model's by > ``rtol``.

    Returns the warning, or None.
    """
    if voxel_size_um is None:
        return None
    want = model.voxel_size_um
    got = tuple(float(v) for v in voxel_size_um)
    if not any(abs(g - w) > rtol * w for g, w in zip(got, want, strict=True)):
        return None
    msg = (
        f"the image voxel size {got} µm differs from the model's {want} µm; the network "
        f"expects the blur in voxels it was trained on. Resample the image to {want} µm, or "
        f"train a model for {got} µm (`neurodecon train --voxel-size ...`)"
    )
    log.warning(msg)
    return msg


def trained_levels(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the levels a model was trained on: dark level (counts), photons, gain, read noise.

    From ``config["noise"]["input_levels"]`` (models that record it); for earlier models the
    dark level is their background range (counts at gain 1) and the photons are unknown (they
    were counted on the sharp volumes). None when the config says nothing about its noise.
    """
    noise = config.get("noise")
    if not isinstance(noise, Mapping):
        return None
    levels: dict[str, Any] = {
        "gain": float(noise.get("gain_counts_per_e") or 1.0),
        "read_noise_counts": float(noise.get("read_noise_counts") or 0.0),
    }
    recorded = noise.get("input_levels")
    if isinstance(recorded, Mapping):
        levels["offset_counts"] = [float(v) for v in recorded["offset_counts"]]
        levels["photons"] = [float(v) for v in recorded["photons"]]
        return levels
    backgrounds = noise.get("background_counts")
    if not backgrounds:
        return None
    levels["offset_counts"] = [float(min(backgrounds)), float(max(backgrounds))]
    return levels


def check_levels(model: Model, volume: np.ndarray) -> str | None:
    """Warn (one line) when the input's levels lie outside the trained ones by > a factor 2.

    The dark level (counts; outside ``[lo / 2 − 3σ, 2 · hi + 3σ]`` with σ the trained read
    noise) and the photons at the brightest structures (outside ``[lo / 2, 2 · hi]``; counted
    with the input's own gain when it is measured to 10 %, else the model's) are compared with
    :func:`trained_levels`. Returns the warning, or None (also when the model records no levels
    or the input is too small to measure).
    """
    from ..metrics import calibrate_noise

    levels = trained_levels(model.config)
    vol = np.asarray(volume)
    if levels is None or vol.ndim < 2 or min(vol.shape) < 8:
        return None
    try:
        cal = calibrate_noise(vol, max_voxels=LEVEL_CHECK_VOXELS)
    except NeuroDeconError:
        return None
    problems = []
    lo, hi = levels["offset_counts"]
    slack = 3.0 * levels["read_noise_counts"]
    if not lo / LEVEL_FACTOR - slack <= cal.offset <= LEVEL_FACTOR * hi + slack:
        problems.append(f"dark level {cal.offset:.4g} counts (trained {_range(lo, hi)})")
    if "photons" in levels:
        own = math.isfinite(cal.gain) and cal.gain_se <= 0.1 * cal.gain
        photons = cal.signal / (cal.gain if own else levels["gain"])
        lo, hi = levels["photons"]
        if not lo / LEVEL_FACTOR <= photons <= LEVEL_FACTOR * hi:
            problems.append(
                f"brightest structures {photons:.4g} photons (trained {_range(lo, hi)})"
            )
    if not problems:
        return None
    msg = (
        "the input's levels are outside what the model was trained on (by more than a factor "
        f"{LEVEL_FACTOR:g}): {'; '.join(problems)}. The result may be under- or over-smoothed; "
        "train a model for such data (`neurodecon train ... --sample THIS_STACK`)"
    )
    log.warning(msg)
    return msg


def _range(lo: float, hi: float) -> str:
    return f"{lo:.4g}" if math.isclose(lo, hi, rel_tol=1e-3) else f"{lo:.4g}–{hi:.4g}"
