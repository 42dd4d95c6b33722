"""Bead detection: noise-derived threshold, local maxima, size estimate, rejection by position.

Everything here works in voxel units on a (Z, Y, X) float32 volume; :mod:`._beads` converts to µm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "REASONS",
    "Candidates",
    "detect_candidates",
    "estimate_fwhm_vox",
    "saturation_level",
    "mark_position_rejects",
    "robust_noise",
]

#: Reason codes written into :attr:`BeadPSF.rejected` and drawn in the QC figure.
REASONS = {
    "saturated": "saturated or flat-topped peak",
    "border": "too close to the stack border for the crop",
    "close": "a neighbour lies inside the crop window",
    "fit": "sub-voxel localisation failed",
    "bright": "integrated intensity far above the median (doublet/aggregate)",
    "dim": "integrated intensity far below the median",
    "shape": "width differs from the median bead (elongated, doublet or out of focus)",
    "mismatch": "poor correlation with the provisional average",
    "residual": "the joint fit leaves a large residual at its core (doublet, aggregate, debris)",
}


@dataclass
class Candidates:
    """Local maxima of the smoothed stack above the detection threshold."""

    positions: np.ndarray  # (N, 3) int voxel indices (z, y, x), brightest first
    peaks: np.ndarray  # (N,) smoothed peak height above background
    raw_peaks: np.ndarray  # (N,) raw maximum in the 3x3x3 neighbourhood
    background: float  # global background level (raw units)
    noise: float  # noise standard deviation of the smoothed stack
    threshold: float  # detection threshold above background (smoothed units)


def robust_noise(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based standard deviation of ``values`` (falls back to the lower-half std)."""
    med = float(np.median(values))
    sigma = 1.4826 * float(np.median(np.abs(values - med)))
    if sigma <= 0:  # quantised data: most voxels share one value
        low = values[values <= med + 1e-12]
        sigma = float(np.std(np.concatenate([low - med, med - low])))
    if sigma <= 0:
        span = float(values.max() - values.min())
        sigma = max(span * 1e-3, 1e-12)
    return med, sigma


def _subsample(volume: np.ndarray, max_values: int = 2_000_000) -> np.ndarray:
    flat = volume.ravel()
    step = max(1, flat.size // max_values)
    return flat[::step]


def detect_candidates(
    volume: np.ndarray,
    *,
    smooth_sigma: float = 1.0,
    threshold_sigma: float = 8.0,
    min_relative: float = 0.04,
    footprint: int = 5,
) -> tuple[Candidates, np.ndarray]:
    """Local maxima of the Gaussian-smoothed stack above ``bg + max(k·noise, f·(max − bg))``.

    The background and noise are the median and the MAD of the smoothed stack (beads occupy a
    small fraction of the voxels); ``min_relative`` guards against noise-limited thresholds in
    nearly noise-free data. Returns the candidates and the smoothed stack.
    """
    smooth = ndi.gaussian_filter(volume, smooth_sigma, mode="nearest")
    bg_s, noise = robust_noise(_subsample(smooth))
    bg_raw = float(np.median(_subsample(volume)))
    top = float(smooth.max()) - bg_s
    threshold = max(threshold_sigma * noise, min_relative * top)
    pos = _local_maxima(smooth, bg_s + threshold, footprint)
    peaks = smooth[tuple(pos.T)] - bg_s if len(pos) else np.zeros(0, np.float32)
    order = np.argsort(-peaks, kind="stable")
    pos, peaks = pos[order], peaks[order]
    raw = np.array([volume[tuple(slice(max(0, c - 1), c + 2) for c in p)].max() for p in pos])
    return Candidates(
        positions=pos,
        peaks=np.asarray(peaks, np.float64),
        raw_peaks=np.asarray(raw, np.float64),
        background=bg_raw,
        noise=noise,
        threshold=threshold,
    ), smooth


def _local_maxima(smooth: np.ndarray, level: float, footprint: int) -> np.ndarray:
    """Voxels above ``level`` that equal the maximum of their ``footprint``³ neighbourhood.

    The maximum filter runs only on the bounding boxes of the above-level regions (beads are
    sparse). Plateaus give several maxima; the caller merges them.
    """
    labels, _ = ndi.label(smooth > level)
    r = footprint // 2
    found = []
    for sl in ndi.find_objects(labels):
        if sl is None:
            continue
        box = tuple(
            slice(max(0, s.start - r), min(n, s.stop + r))
            for s, n in zip(sl, smooth.shape, strict=True)
        )
        sub = smooth[box]
        peaks = np.argwhere(
            (sub == ndi.maximum_filter(sub, size=footprint, mode="nearest")) & (sub > level)
        )
        found.append(peaks + np.array([b.start for b in box]))
    if not found:
        return np.zeros((0, 3), int)
    return np.unique(np.concatenate(found), axis=0)


def _half_max_width(profile: np.ndarray, centre: int) -> float:
    """Full width at half maximum of a 1-D profile around ``centre`` (linear interpolation)."""
    base = float(np.min(profile))
    peak = float(profile[centre]) - base
    if peak <= 0:
        return float("nan")
    half = base + peak / 2
    widths = []
    for step in (-1, 1):
        i = centre
        while 0 <= i + step < len(profile) and profile[i + step] > half:
            i += step
        if not 0 <= i + step < len(profile):
            return float("nan")
        a, b = float(profile[i]), float(profile[i + step])
        widths.append(abs(i - centre) + (a - half) / (a - b))
    return float(sum(widths))


def estimate_fwhm_vox(
    smooth: np.ndarray,
    positions: np.ndarray,
    *,
    smooth_sigma: float = 1.0,
    max_beads: int = 30,
    reach: int = 40,
) -> np.ndarray:
    """Median FWHM (z, y, x) in voxels of the brightest candidates, from half-max profiles.

    Profiles are taken on the stack already smoothed by ``smooth_sigma``; that blur is removed
    in quadrature. Used only to size the crop windows; the reported FWHM comes from the average.
    """
    widths = []
    for p in positions[:max_beads]:
        w = []
        for ax in range(3):
            lo = max(0, p[ax] - reach)
            hi = min(smooth.shape[ax], p[ax] + reach + 1)
            idx = [slice(int(c), int(c) + 1) for c in p]
            idx[ax] = slice(lo, hi)
            w.append(_half_max_width(smooth[tuple(idx)].ravel(), int(p[ax] - lo)))
        widths.append(w)
    arr = np.asarray(widths, dtype=float).reshape(-1, 3)
    med = np.array(
        [np.median(col[np.isfinite(col)]) if np.isfinite(col).any() else np.nan for col in arr.T]
    )
    blur = 2.3548 * smooth_sigma
    med = np.sqrt(np.clip(med**2 - blur**2, 1.0, None))
    return np.where(np.isfinite(med), med, 3.0)


def saturation_level(
    volume: np.ndarray, raw_dtype: np.dtype, explicit: float | None
) -> float | None:
    """Value at or above which a peak counts as saturated.

    ``explicit`` wins. Otherwise: the integer dtype's maximum if the stack reaches it, or the stack
    maximum if at least 3 voxels share it exactly (a clipping signature in float or 12-bit data).
    """
    if explicit is not None:
        return float(explicit)
    vmax = float(volume.max())
    if np.issubdtype(raw_dtype, np.integer) and vmax >= np.iinfo(raw_dtype).max:
        return vmax
    if int(np.count_nonzero(volume == vmax)) >= 3:
        return vmax
    return None


def mark_position_rejects(
    cands: Candidates,
    shape: tuple[int, ...],
    half: np.ndarray,
    core: np.ndarray,
    sat_level: float | None,
    volume: np.ndarray,
) -> list[str | None]:
    """Reason code per candidate for saturation, border and neighbour conflicts (None = keep).

    ``half`` is the crop half-size and ``core`` the core radius (≈ FWHM) per axis, in voxels.
    A candidate is ``border`` when its core leaves the stack on any axis or its lateral window
    does; z windows may run past the stack ends (they are padded, never wrapped).
    ``close`` means another candidate lies within the crop window widened by half the core
    radius (its half-maximum core would enter the window).
    """
    pos = cands.positions
    reasons: list[str | None] = [None] * len(pos)
    shape_a = np.asarray(shape)
    reach = half + (core + 1) // 2
    for i, p in enumerate(pos):
        if sat_level is not None and _is_saturated(volume, p, sat_level):
            reasons[i] = "saturated"
            continue
        lo_core = p - core
        hi_core = p + core
        lateral_out = (p[1:] - half[1:] < 0) | (p[1:] + half[1:] >= shape_a[1:])
        if (lo_core < 0).any() or (hi_core >= shape_a).any() or lateral_out.any():
            reasons[i] = "border"
            continue
        d = np.abs(pos - p)
        near = np.all(d <= reach, axis=1)
        near[i] = False
        if near.any():
            reasons[i] = "close"
    return reasons


def _is_saturated(volume: np.ndarray, p: np.ndarray, level: float) -> bool:
    sl = tuple(slice(max(0, int(c) - 2), int(c) + 3) for c in p)
    return bool((volume[sl] >= level).any())
