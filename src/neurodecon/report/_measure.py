"""Numbers for the report: metrics per volume, FWHM of small objects, and the ranking."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import _views

__all__ = [
    "volume_metrics",
    "objects_fwhm",
    "profile_fwhm",
    "rank",
    "metric_direction",
    "TRUTH_METRICS",
    "METRIC_LABELS",
    "reference_point",
    "small_objects",
]

log = logging.getLogger("neurodecon")

#: Short labels of the metrics shown in tables and figures (others keep their key).
METRIC_LABELS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "nrmse": "NRMSE",
    "rmse": "RMSE",
    "pearson": "Pearson r",
    "decorr_xy_resolution_um": "decorr. resolution XY (µm)",
    "decorr_xz_resolution_um": "decorr. resolution XZ (µm)",
    "decorr_yz_resolution_um": "decorr. resolution YZ (µm)",
    "decorr_xy_snr": "decorr. SNR XY",
    "decorr_xz_snr": "decorr. SNR XZ",
    "decorr_yz_snr": "decorr. SNR YZ",
    "objects_fwhm_x_um": "object FWHM x (µm)",
    "objects_fwhm_y_um": "object FWHM y (µm)",
    "objects_fwhm_z_um": "object FWHM z (µm)",
    "profile_fwhm_x_um": "profile FWHM x (µm)",
    "profile_fwhm_z_um": "profile FWHM z (µm)",
}

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


def objects_fwhm(
    volume: np.ndarray,
    centres: np.ndarray,
    voxel_size_um,
    *,
    half_size: tuple[int, int, int] = (6, 8, 8),
) -> np.ndarray:
    """FWHM ``(n, 3)`` in µm (z, y, x) of the objects at ``centres``; NaN where not measurable.

    Each object is measured by :func:`neurodecon.metrics.bead_fwhm` on a crop of
    ``±half_size`` voxels around it, so that neighbours do not enter the line fits.
    """
    from ..metrics import bead_fwhm

    out = np.full((len(centres), 3), np.nan)
    for i, c in enumerate(centres):
        lo = [max(0, int(ci) - h) for ci, h in zip(c, half_size, strict=True)]
        hi = [min(n, int(ci) + h + 1) for ci, h, n in zip(c, half_size, volume.shape, strict=True)]
        crop = volume[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        local = tuple(int(ci) - l0 for ci, l0 in zip(c, lo, strict=True))
        try:
            out[i] = np.asarray(bead_fwhm(crop, tuple(voxel_size_um), center=local), dtype=float)
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


#: No-reference metrics ranked without a truth: decorrelation resolution (↓) and SNR (↑).
_NO_TRUTH = tuple(f"decorr_{p}_{m}" for m in ("resolution_um", "snr") for p in ("xy", "xz", "yz"))


def rank(
    table: Mapping[str, Mapping[str, Any]], *, use_truth: bool
) -> tuple[list[str], str, list[str]]:
    """Order the rows of ``table`` (name -> metrics) from best to worst.

    With a ground truth the score is the mean of the ranks by PSNR and by SSIM (NRMSE and Pearson
    are reported but not counted: NRMSE is PSNR in other units); ties go to the higher SSIM.
    Without one it is the mean rank over decorrelation resolution (lower is better) and
    decorrelation SNR (higher is better) in the XY, XZ and YZ planes; ties go to the finer XY
    resolution.

    Parameters
    ----------
    table : mapping
        ``{name: {metric key: value}}``, e.g. from :func:`neurodecon.metrics.evaluate`; missing
        or NaN values rank last.
    use_truth : bool
        Rank by the ground-truth metrics instead of the no-reference ones.

    Returns
    -------
    order : list of str
        The names, best first.
    criterion : str
        The ranking rule in words.
    used : list of str
        The metric keys that counted (empty when none was present: then not ranked).
    """
    names = list(table)
    keys = {k for row in table.values() for k in row}
    used: list[str]
    if use_truth:
        used = [k for k in ("psnr", "ssim") if k in keys]
        criterion = "mean of the ranks by PSNR and by SSIM against the ground truth"
    else:
        used = [k for k in _NO_TRUTH if k in keys]
        criterion = (
            "mean rank over decorrelation resolution (lower is better) and SNR "
            "(higher is better) in the XY, XZ and YZ planes; no ground truth"
        )
    if not used or not names:
        return names, "not ranked (no comparable metric)", []
    score = np.zeros(len(names))
    for k in used:
        score += _ranks([table[n].get(k, np.nan) for n in names], metric_direction(k) or 1)
    score /= len(used)
    tie = used[-1] if use_truth else used[0]
    tie_rank = _ranks([table[n].get(tie, np.nan) for n in names], metric_direction(tie) or 1)
    order = [names[i] for i in np.lexsort((tie_rank, score))]
    return order, criterion, used


def small_objects(
    raw: np.ndarray, voxel_size_um, *, psf_fwhm_um=None, max_objects: int = 20
) -> np.ndarray:
    """Centres ``(n, 3)`` of small, isolated, bright objects of the input, brightest first.

    Candidates are difference-of-Gaussians maxima (:func:`_views.find_small_objects`, at the
    scale of the PSF's lateral FWHM when known); an object is *small* when the FWHM of its
    profile along x is below 1.5 × the PSF's lateral FWHM (without a PSF: below the median of
    the candidates), i.e. close to a point seen through the microscope. When none is, the
    candidates are returned narrowest first.
    """
    from ..metrics import line_profile_fwhm

    vs = tuple(float(v) for v in voxel_size_um)
    scale = float(psf_fwhm_um[2]) if psf_fwhm_um is not None else None
    if scale is not None and not (np.isfinite(scale) and scale > 0):
        scale = None  # the PSF's FWHM could not be measured (e.g. narrower than a voxel)
    cands = _views.find_small_objects(raw, vs, scale_um=scale, max_objects=3 * max_objects)
    if len(cands) == 0:
        return cands
    half = max(4, int(round(3 * (scale or 3 * vs[2]) / vs[2])))
    measured: list[float] = []
    for z, y, x in cands:
        line = raw[z, y, max(0, x - half) : x + half + 1]
        try:
            measured.append(float(line_profile_fwhm(line, vs[2])))
        except (ValueError, RuntimeError, ArithmeticError):
            measured.append(float("nan"))
    widths = np.asarray(measured)
    ok = np.isfinite(widths)
    if not ok.any():
        return cands[:max_objects]
    limit = 1.5 * scale if scale else float(np.median(widths[ok]))
    keep = ok & (widths <= limit)
    if not keep.any():  # nothing near a point: the narrowest structures first
        return cands[np.argsort(np.where(ok, widths, np.inf), kind="stable")][:max_objects]
    return cands[keep][:max_objects]


def reference_point(
    raw: np.ndarray, voxel_size_um, objects: np.ndarray | None = None
) -> tuple[int, int, int]:
    """Where figures look: the brightest small object, else the brightest small structure."""
    if objects is not None and len(objects):
        z, y, x = (int(v) for v in objects[0])
        return z, y, x
    return _views.brightest_small_structure(raw, voxel_size_um)
