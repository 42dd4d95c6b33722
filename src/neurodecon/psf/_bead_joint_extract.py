"""Joint bead extraction (``method="joint"``): every bead in one model of the whole stack.

1. Localise every candidate (3-D Gaussian fit, sub-voxel). Beads the model cannot explain —
   saturated, failed fits, doublets/aggregates (too bright, too wide), too dim — stay in the
   model (their light elsewhere is accounted for) but their neighbourhood (±2 FWHM; for
   saturated beads also every clipped voxel, dilated) is left out of the data.
2. Fit the stack (:func:`._bead_solve.solve_joint`). Beads whose core the fit leaves with a
   residual far above the others' are left out the same way and the stack is fitted again.
3. The PSF box: ``size`` if given; else the planes whose flux stands above the noise (and the
   light cone's radius there), no larger than the image it will deconvolve; when that image needs
   more than the bead stack measured and the optics are known, the tails are extended by a
   fitted physical model (:mod:`._bead_hybrid`).
4. o* = i* ⊛ p on that box (the paper's bead mode stays consistent with p).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..progress import ProgressFn, report
from . import _bead_align as al
from . import _bead_detect as det
from ._bead_hybrid import extend_tails
from ._bead_ideal import render_ideal_bead
from ._bead_result import BeadPSF, fwhm_um, rejected_list
from ._bead_solve import JointResult, solve_joint, tan_theta_of
from ._validate import center_crop

__all__ = ["extract_joint"]

log = logging.getLogger("neurodecon")
_GAUSS = (2 * np.pi) ** 1.5


def extract_joint(
    volume: np.ndarray,
    vox: tuple[float, float, float],
    cands: det.Candidates,
    sat: float | None,
    core: np.ndarray,
    fwhm0: np.ndarray,
    opt: dict[str, Any],
    diameter: float,
    *,
    size: Sequence[int] | None,
    image_shape: Sequence[int] | None,
    optics: Mapping[str, Any] | None,
    progress: ProgressFn | None,
) -> tuple[BeadPSF | None, list[str | None]]:
    """Run the joint method on a detected stack; ``(None, reasons)`` when no bead is usable."""
    beads = _localise_all(volume, cands, core, sat, opt)
    report(progress, 2, 6, f"{int(np.sum(beads['use']))} beads localised; fitting the stack")
    if not beads["use"].any():
        return None, list(beads["reasons"])
    data = volume
    weights = _weights(data, beads, core, sat)
    tan = _tan_theta(optics)
    fit = _fit(data, weights, beads, vox, diameter, fwhm0, tan, opt, progress)
    outliers = _residual_outliers(data, weights, fit, beads, core)
    if outliers.any():
        beads["reasons"] = [
            "residual" if o else r for o, r in zip(outliers, beads["reasons"], strict=True)
        ]
        beads["use"] &= ~outliers
        weights = _weights(data, beads, core, sat)
        fit = _fit(data, weights, beads, vox, diameter, fwhm0, tan, opt, progress)
    report(progress, 5, 6, "sizing the PSF")
    psf, hybrid = _final_box(fit, vox, size, image_shape, optics, opt)
    ideal = render_ideal_bead(psf.shape, vox, diameter)
    blurred = al.unit_sum(_convolve_same(psf, ideal))
    beads["sat"] = sat
    result = _assemble(
        psf, blurred, ideal, vox, fit, beads, cands, data, weights, hybrid, opt, diameter
    )
    return result, list(beads["reasons"])


# ----------------------------------------------------------------------------- localisation
def _localise_all(volume, cands, core, sat, opt) -> dict[str, Any]:
    """Gaussian fit of every candidate; reason codes for those whose data are left out."""
    n = len(cands.positions)
    centres = cands.positions.astype(float).copy()
    sigma = np.full((n, 3), np.nan)
    amp = np.asarray(cands.peaks, float).copy()
    reasons: list[str | None] = [None] * n
    limit = int(opt["max_beads"])
    for i, p in enumerate(cands.positions):
        if sat is not None and det._is_saturated(volume, p, sat):
            reasons[i] = "saturated"
        if i >= limit:
            reasons[i] = reasons[i] or "close"
            continue
        fit = al.fit_gaussian_3d(volume, p, core)
        if fit is None or np.any(np.abs(fit[0] - p) > 1.5 * core):
            reasons[i] = reasons[i] or "fit"
            continue
        centres[i], sigma[i], amp[i] = fit[0], fit[1], fit[2]
    integ = amp * np.prod(np.where(np.isfinite(sigma), sigma, np.nan), axis=1) * _GAUSS
    _shape_outliers(integ, sigma, reasons, opt)
    typical = np.nanmedian(np.prod(sigma, axis=1)) if np.isfinite(sigma).any() else 1.0
    integ = np.where(np.isfinite(integ), integ, amp * typical * _GAUSS)
    return {
        "centres": centres,
        "sigma": sigma,
        "amp0": np.clip(integ, 1e-6 * max(float(np.nanmax(integ)), 1e-12), None),
        "reasons": reasons,
        "use": np.array([r is None for r in reasons]),
    }


def _shape_outliers(integ, sigma, reasons, opt) -> None:
    ok = np.array([r is None for r in reasons]) & np.isfinite(integ)
    if ok.sum() < 3:
        return
    med_i = float(np.median(integ[ok]))
    med_s = np.median(sigma[ok], axis=0)
    ratio = np.max(np.abs(np.log(sigma / med_s)), axis=1)
    for i in np.flatnonzero(ok):
        if integ[i] > opt["max_brightness_ratio"] * med_i:
            reasons[i] = "bright"
        elif integ[i] < opt["min_brightness_ratio"] * med_i:
            reasons[i] = "dim"
        elif ratio[i] > np.log(opt["max_width_ratio"]):
            reasons[i] = "shape"


def _weights(data, beads, core, sat) -> np.ndarray:
    """1 where the data enter the fit; 0 around left-out beads (and clipped voxels, dilated)."""
    w = np.ones(data.shape, np.float32)
    reach = 2 * np.asarray(core)
    left_out = [c for c, u in zip(beads["centres"], beads["use"], strict=True) if not u]
    for c in left_out:
        sl = tuple(
            slice(max(0, int(round(ci)) - r), max(0, int(round(ci)) + r + 1))
            for ci, r in zip(c, reach, strict=True)
        )
        w[sl] = 0.0
    if sat is not None:
        clipped = data >= sat
        if clipped.any():
            grown = ndi.binary_dilation(clipped, structure=np.ones((3, 3, 3), bool), iterations=2)
            w[grown] = 0.0
    return w


def _tan_theta(optics: Mapping[str, Any] | None) -> float | None:
    if not optics or optics.get("na") is None:
        return None
    return tan_theta_of(float(optics["na"]), float(optics.get("immersion_index") or 1.515))


def _fit(data, weights, beads, vox, diameter, fwhm0, tan, opt, progress) -> JointResult:
    keys = (
        "coarse_passes",
        "coarse_iterations",
        "fine_iterations",
        "sectors",
        "shrink",
    )
    return solve_joint(
        data.astype(np.float32),
        weights,
        beads["centres"],
        beads["amp0"],
        voxel_size_um=vox,
        bead_diameter_um=diameter,
        fwhm_vox=fwhm0,
        tan_theta=tan,
        device=_device(opt.get("device", "auto")),
        progress=progress,
        fine_voxels=int(opt["max_voxels"]),
        **{k: opt[k] for k in keys},
    )


def _device(name: str):
    from ..device import resolve_device

    return resolve_device(name)


def _residual_outliers(data, weights, fit: JointResult, beads, core) -> np.ndarray:
    """Flag the used beads whose core residual ``Σ|y − μ| / Σ|μ − b|`` is far above the others'.

    Judged where the fine model exists (the fit's window: the whole stack unless it is large).
    """
    origin = np.array([s.start for s in fit.window])
    data, weights = data[fit.window], weights[fit.window]
    scores = np.full(len(beads["centres"]), np.nan)
    for i, (c0, u) in enumerate(zip(beads["centres"], beads["use"], strict=True)):
        c = c0 - origin
        if not u or np.any(c < 0) or np.any(c > np.array(data.shape) - 1):
            continue
        sl = tuple(
            slice(max(0, int(round(ci)) - r), int(round(ci)) + r + 1)
            for ci, r in zip(c, core, strict=True)
        )
        w = weights[sl] > 0
        signal = np.abs(fit.model[sl] - fit.background)[w].sum()
        if w.sum() and signal > 0:
            scores[i] = float(np.abs(data[sl] - fit.model[sl])[w].sum() / signal)
    ok = np.isfinite(scores)
    if ok.sum() < 4:
        return np.zeros(len(scores), bool)
    med = float(np.median(scores[ok]))
    mad = 1.4826 * float(np.median(np.abs(scores[ok] - med)))
    limit = max(2.0 * med, med + 6.0 * mad)
    return ok & (np.nan_to_num(scores, nan=0.0) > limit)


# ----------------------------------------------------------------------------- box and result
def _odd(n: int) -> int:
    return n if n % 2 else n - 1


def _final_box(fit: JointResult, vox, size, image_shape, optics, opt):
    """Recentred PSF on its final box, and the hybrid-tail record (None when not needed)."""
    psf = al.recentre(fit.psf.astype(np.float32)).astype(np.float64)
    if size is not None:
        target = tuple(int(n) for n in size)
    elif image_shape is not None:
        target = tuple(_odd(int(n)) for n in image_shape)
    else:
        return psf / psf.sum(), None
    hybrid = None
    needs_more = any(t > m for t, m in zip(target, psf.shape, strict=True))
    if needs_more and optics and optics.get("na") is not None and opt.get("hybrid", True):
        psf, hybrid = extend_tails(psf, vox, target, optics, fit.flux_sigma)
    if size is None:  # the image bounds the box; what was measured is never padded with zeros
        target = tuple(min(t, m) for t, m in zip(target, psf.shape, strict=True))
    out = center_crop(psf, target)
    return out / out.sum(), hybrid


def _convolve_same(a: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    from scipy.signal import fftconvolve

    k = kernel[tuple(slice(None) for _ in range(3))]
    nz = np.argwhere(k > 0)
    c = np.array(k.shape) // 2
    r = np.max(np.abs(nz - c), axis=0) if len(nz) else np.zeros(3, int)
    k = k[tuple(slice(ci - ri, ci + ri + 1) for ci, ri in zip(c, r, strict=True))]
    return np.clip(fftconvolve(a, k, mode="same"), 0, None)


def _assemble(psf, blurred, ideal, vox, fit, beads, cands, data, weights, hybrid, opt, d):
    use = beads["use"]
    per_bead = beads["sigma"][use] * 2.3548 * np.asarray(vox)
    spread = np.nanstd(per_bead, axis=0) if use.sum() > 1 else np.zeros(3)
    flux = psf.sum(axis=(1, 2))
    info = {
        "method": "joint",
        "n_detected": len(cands.positions),
        "background": fit.background,
        "noise_sigma": cands.noise,
        "detection_threshold": cands.threshold,
        "saturation_level": beads["sat"],
        "bead_diameter_um": d,
        "channel": opt["channel"],
        "bead_removal": "joint model of the whole stack (beads rendered as spheres)",
        "joint": fit.info,
        "measured_shape": list(fit.psf.shape),
        "hybrid": None if hybrid is None else {k: v for k, v in hybrid.items() if "flux" not in k},
        "fwhm_method": "neurodecon.metrics.bead_fwhm (Gaussian fits to line profiles)",
        "per_bead_fwhm_um": per_bead.tolist(),
    }
    return BeadPSF(
        psf=psf.astype(np.float32),
        blurred_bead=blurred,
        ideal_bead=ideal,
        voxel_size_um=vox,
        n_used=int(use.sum()),
        rejected=rejected_list(cands.positions, beads["reasons"]),
        positions=beads["centres"][use],
        fwhm_um=_t3(fwhm_um(blurred, vox)),
        fwhm_spread_um=_t3(spread),
        psf_fwhm_um=_t3(fwhm_um(psf, vox)),
        info=info,
        method="joint",
        flux_per_plane=flux / flux.sum(),
        flux_sigma=_crop_sigma(fit, psf.shape[0]),
        qc=_qc(data, weights, fit, hybrid),
    )


def _crop_sigma(fit: JointResult, nz: int) -> np.ndarray:
    sig = fit.flux_sigma
    c, h = len(sig) // 2, nz // 2
    out = np.full(nz, np.nan)
    lo = max(0, h - c)
    src = sig[max(0, c - h) : c - h + nz]
    out[lo : lo + len(src)] = src
    return out


def _qc(data, weights, fit: JointResult, hybrid) -> dict[str, Any]:
    data, weights = data[fit.window], weights[fit.window]
    resid = np.where(weights > 0, data - fit.model, 0.0)
    return {
        "window_zyx": [[s.start, s.stop] for s in fit.window],
        "data_mip": data.max(axis=0),
        "model_mip": fit.model.max(axis=0),
        "residual_mip": np.take_along_axis(resid, np.abs(resid).argmax(axis=0)[None], axis=0)[0],
        "left_out_mip": (weights <= 0).any(axis=0),
        "measured_flux": fit.flux_per_plane,
        "measured_sigma": fit.flux_sigma,
        "background": fit.background,
        "hybrid": hybrid,
    }


def _t3(values) -> tuple[float, float, float]:
    v = [float(x) for x in values]
    return (v[0], v[1], v[2])
