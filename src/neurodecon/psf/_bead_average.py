"""Per-bead averaging (``method="average"``): crop, align and average isolated beads.

Pipeline (paper §4.1.3–4.1.4, §4.2.2, automated):

1. reject saturated beads, beads whose core or lateral window leaves the stack, and beads with a
   neighbour inside their crop window (done by the caller, :func:`.extract_psf`);
2. localise each bead by a 3-D Gaussian least-squares fit (sub-voxel), crop it with a cubic-spline
   shift so that its centre lands on index ``n//2``, subtract the local background;
3. reject brightness and shape outliers (doublets, aggregates, out-of-focus debris) and beads
   correlating poorly with the provisional (median) average;
4. average the survivors (brightness-weighted mean of unit-sum crops), subtract the residual
   background, clip at 0, normalise to sum 1 → ``blurred_bead`` (o*);
5. render the ideal bead → ``ideal_bead`` (i*); remove the bead size, ``o* = i* ⊛ p``, by
   Richardson–Lucy iterations → ``psf`` (p).

The crop only fits compact PSFs: a widefield PSF keeps most of its flux in the out-of-focus cone,
far outside a few-FWHM window (see ``docs/beads.md``); the joint method has no such limit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import user_error
from ..progress import report
from . import _bead_align as al
from ._bead_ideal import render_ideal_bead
from ._bead_result import BeadPSF, fwhm_um, rejected_list

__all__ = ["extract_average"]


def extract_average(volume, vox, cands, reasons, sat, core, fwhm0, shape, opt, diameter, progress):
    """Localise, reject, align and average; return the :class:`BeadPSF` (or None: no bead)."""
    beads_ok = _localise(volume, cands, reasons, core, shape, opt, progress)
    report(progress, 4, 6, "rejecting outliers and averaging")
    _reject_outliers(beads_ok, reasons, fwhm0, opt)
    used = [b for b in beads_ok if reasons[b["index"]] is None]
    if not used:
        return None
    blurred, gain = _recentre_on_peak(volume, used, _average(used, opt), opt)
    ideal = render_ideal_bead(blurred.shape, vox, diameter)
    report(progress, 5, 6, "removing the bead size")
    psf = al.remove_bead(blurred, ideal, iterations=int(opt["bead_removal_iterations"]))
    if gain is not None:  # p has no frequency that o* = i* ⊛ p lacks: same OTF support
        psf = al.unit_sum(al.apply_gain(psf, gain))
    psf = al.recentre(psf)
    return _assemble(psf, blurred, ideal, vox, used, cands, reasons, sat, opt, diameter)


def _localise(volume, cands, reasons, core, shape, opt, progress) -> list[dict[str, Any]]:
    todo = [i for i, r in enumerate(reasons) if r is None]
    for i in todo[int(opt["max_beads"]) :]:
        reasons[i] = "close"  # beyond the localisation budget: treated as not used
    todo = todo[: int(opt["max_beads"])]
    out = []
    for n, i in enumerate(todo):
        fit = al.fit_gaussian_3d(volume, cands.positions[i], core)
        if fit is None or np.any(np.abs(fit[0] - cands.positions[i]) > 1.5 * core):
            reasons[i] = "fit"
            continue
        centre, sigma, _amp, _bg = fit
        crop, valid = al.aligned_crop(volume, centre, shape)
        crop = crop - al.frame_background(crop, valid)
        feats = al.bead_features(crop, core)
        out.append(
            {
                "index": i,
                "centre": centre,
                "sigma_fit": sigma,
                "crop": crop,
                "valid": valid,
                **feats,
            }
        )
        if n % 10 == 0:
            report(
                progress,
                1 + (3 * n) // max(len(todo), 1),
                6,
                f"localising bead {n + 1}/{len(todo)}",
            )
    return out


def _reject_outliers(beads: list[dict[str, Any]], reasons: list[str | None], fwhm0, opt) -> None:
    if not beads:
        return
    integ = np.array([b["integral"] for b in beads])
    med_i = float(np.median(integ))
    sig = np.array([b["sigma_fit"] for b in beads])
    med_s = np.median(sig, axis=0)
    ratio = np.max(np.abs(np.log(sig / med_s)), axis=1)
    for b, val, r in zip(beads, integ, ratio, strict=True):
        if med_i > 0 and val > opt["max_brightness_ratio"] * med_i:
            reasons[b["index"]] = "bright"
        elif med_i > 0 and val < opt["min_brightness_ratio"] * med_i:
            reasons[b["index"]] = "dim"
        elif r > np.log(opt["max_width_ratio"]):
            reasons[b["index"]] = "shape"
    kept = [b for b in beads if reasons[b["index"]] is None]
    if len(kept) < 3:
        return
    provisional = al.weighted_average(
        [b["crop"] / b["integral"] for b in kept],
        [b["valid"] for b in kept],
        np.ones(len(kept)),
        method="median",
    )
    corr = np.array([al.ncc(b["crop"], provisional) for b in kept])
    med_c = float(np.median(corr))
    spread = 4 * 1.4826 * float(np.median(np.abs(corr - med_c)))
    limit = med_c - max(opt["min_correlation_drop"], spread)
    for b, c in zip(kept, corr, strict=True):
        b["ncc"] = float(c)
        if c < limit:
            reasons[b["index"]] = "mismatch"


def _average(used: list[dict[str, Any]], opt) -> tuple[np.ndarray, np.ndarray | None]:
    """Averaged bead o* (sum 1) and the spectral gain applied to it (None when off)."""
    integ = np.array([max(b["integral"], 1e-12) for b in used])
    crops = [b["crop"] / w for b, w in zip(used, integ, strict=True)]
    valids = [b["valid"] for b in used]
    avg = al.weighted_average(crops, valids, integ, method=opt["average"])
    gain = None
    if opt["spectral_filter"] and len(used) >= 2:
        noise = al.noise_power(crops, valids, integ, avg)
        if opt["average"] == "median":
            noise *= np.pi / 2  # variance of a median of Gaussian samples vs the mean's
        gain = al.spectral_filter(avg - al.frame_background(avg), noise)
        avg = al.apply_gain(avg, gain)
    avg = avg - al.frame_background(avg)
    if opt["tail_mask_sigma"]:
        avg = avg * al.support_mask(avg, float(opt["tail_mask_sigma"]))
    avg = np.clip(avg, 0, None)
    if avg.sum() <= 0:
        raise user_error(
            "the averaged bead is empty after background subtraction",
            fix="check the bead stack and the --size",
        )
    return (avg / avg.sum()).astype(np.float32), gain


def _recentre_on_peak(volume, used, averaged, opt) -> tuple[np.ndarray, np.ndarray | None]:
    """Put the average's sub-voxel peak (not the beads' Gaussian centre) at ``n//2``.

    For asymmetric PSFs the two differ; the PSF convention (and ``prepare_psf``) is the peak.
    The beads are re-cropped at the shifted centres, so the data are interpolated only once.
    """
    offset = al.peak_offset(averaged[0])
    if np.all(np.abs(offset) < 0.25):
        return averaged
    for b in used:
        crop, valid = al.aligned_crop(volume, b["centre"] + offset, averaged[0].shape)
        b["crop"], b["valid"] = crop - al.frame_background(crop, valid), valid
    return _average(used, opt)


def _assemble(psf, blurred, ideal, vox, used, cands, reasons, sat, opt, diameter) -> BeadPSF:
    fwhm = fwhm_um(blurred, vox)
    per_bead = np.array([fwhm_um(b["crop"], vox) for b in used])
    spread = np.nanstd(per_bead, axis=0) if len(used) > 1 else np.zeros(3)
    rejected = rejected_list(cands.positions, reasons)
    info = {
        "method": "average",
        "n_detected": len(cands.positions),
        "background": cands.background,
        "noise_sigma": cands.noise,
        "detection_threshold": cands.threshold,
        "saturation_level": sat,
        "bead_diameter_um": diameter,
        "channel": opt["channel"],
        "average": opt["average"],
        "bead_removal": (
            f"Richardson-Lucy, {int(opt['bead_removal_iterations'])} iterations, linear convolution"
        ),
        "fwhm_method": "neurodecon.metrics.bead_fwhm (Gaussian fits to line profiles)",
        "per_bead_fwhm_um": per_bead.tolist(),
    }
    return BeadPSF(
        psf=psf,
        blurred_bead=blurred,
        ideal_bead=ideal,
        voxel_size_um=vox,
        n_used=len(used),
        rejected=rejected,
        positions=np.array([b["centre"] for b in used]),
        fwhm_um=_t3(fwhm),
        fwhm_spread_um=_t3(spread),
        psf_fwhm_um=_t3(fwhm_um(psf, vox)),
        info=info,
        method="average",
    )


def _t3(values) -> tuple[float, float, float]:
    v = [float(x) for x in values]
    return (v[0], v[1], v[2])
