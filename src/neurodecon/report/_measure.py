"""Numbers for the report: metrics per volume, FWHM of small objects, and the ranking."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import _views

__all__ = ["volume_metrics", "objects_fwhm", "profile_fwhm", "rank", "metric_direction",
           "TRUTH_METRICS"]

log = logging.getLogger("neurodecon")

#: Metrics against the ground truth (in ranking order of importance).
TRUTH_METRICS = ("psnr", "ssim", "nrmse", "pearson")


def metric_direction(key: str) -> int | None:
    """+1 if higher is better, -1 if lower is better, ``None`` if the metric does not rank."""
    k = key.lower()
    if "psnr" in k or "ssim" in k or "pearson" in k:
        return +1
    if "nrmse" in k or "rmse" in k:
        return -1
    if "resolution" in k and "snr" not in k:
        return -1
    if "snr" in k:
        return +1
    return None


def volume_metrics(volume: np.ndarray, truth: np.ndarray | None, voxel_size_um) -> dict[str, float]:
    """:func:`neurodecon.metrics.evaluate` as plain floats (truth metrics only with a truth)."""
    from ..metrics import evaluate

    values = evaluate(volume, truth, voxel_size_um=tuple(voxel_size_um), normalization="affine")
    return {str(k): float(v) for k, v in values.items() if np.isscalar(v) or np.ndim(v) == 0}


def objects_fwhm(volume: np.ndarray, centres: np.ndarray, voxel_size_um) -> np.ndarray:
    """FWHM ``(n, 3)`` in µm (z, y, x) of the objects at ``centres``; NaN where not measurable."""
    from ..metrics import bead_fwhm

    out = np.full((len(centres), 3), np.nan)
    for i, c in enumerate(centres):
        try:
            out[i] = np.asarray(bead_fwhm(volume, tuple(voxel_size_um), center=tuple(int(v) for v in c)),
                                dtype=float)
        except (ValueError, RuntimeError, ArithmeticError) as exc:
            log.debug("FWHM not measurable at %s: %s", tuple(c), exc)
    out[~np.isfinite(out) | (out <= 0)] = np.nan
    return out


def profile_fwhm(profiles: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """FWHM (µm) of each line profile ``{axis: (positions_um, values)}``; NaN when undefined."""
    from ..metrics import line_profile_fwhm

    out = {}
    for axis, (pos, val) in profiles.items():
        spacing = float(pos[1] - pos[0]) if len(pos) > 1 else 1.0
        try:
            out[axis] = float(line_profile_fwhm(val, spacing))
        except (ValueError, RuntimeError, ArithmeticError):
            out[axis] = float("nan")
    return out


def _ranks(values: Sequence[float], direction: int) -> np.ndarray:
    """Ranks 1..n (1 = best); NaN values share the last rank."""
    v = np.asarray(values, dtype=float) * direction
    v = np.where(np.isfinite(v), v, -np.inf)
    order = np.argsort(-v, kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(1, len(v) + 1)
    return ranks


def rank(table: Mapping[str, Mapping[str, Any]], *, use_truth: bool) -> tuple[list[str], str, list[str]]:
    """Order the rows of ``table`` (name -> metrics) from best to worst.

    With a ground truth the score is the mean rank over PSNR, SSIM, NRMSE and Pearson; without
    one it is the mean rank over the no-reference metrics that have a direction (decorrelation
    resolution per plane, lower is better; decorrelation SNR, higher is better).
    Returns ``(order, criterion text, keys used)``.
    """
    names = list(table)
    keys = sorted({k for row in table.values() for k in row})
    if use_truth:
        used = [k for k in keys if any(t == k.lower() or k.lower().startswith(t) for t in TRUTH_METRICS)]
        criterion = "mean rank over PSNR, SSIM, NRMSE and Pearson against the ground truth"
    else:
        used = [k for k in keys if metric_direction(k) is not None
                and not any(t in k.lower() for t in TRUTH_METRICS)]
        criterion = ("mean rank over decorrelation resolution (lower is better) and SNR "
                     "(higher is better), XY/XZ/YZ planes; no ground truth")
    if not used or not names:
        return names, "not ranked (no comparable metric)", []
    score = np.zeros(len(names))
    for k in used:
        score += _ranks([table[n].get(k, np.nan) for n in names], metric_direction(k) or 1)
    score /= len(used)
    order = [names[i] for i in np.argsort(score, kind="stable")]
    return order, criterion, used


def reference_point(raw: np.ndarray, voxel_size_um) -> tuple[int, int, int]:
    """Where figures look: the brightest small structure of the raw input."""
    return _views.brightest_small_structure(raw, voxel_size_um)
