"""Experimental PSF from a bead stack: the NeuroDecon kernels o* (averaged bead) and i* (ideal bead).

Pipeline of :func:`extract_psf` (paper §4.1.3–4.1.4, §4.2.2, automated):

1. detect local maxima of the σ=1-voxel-smoothed stack above a MAD-derived noise threshold;
2. reject saturated/flat-topped beads, beads whose core or lateral window leaves the stack, and
   beads with a neighbour inside their crop window;
3. localise each bead by a 3-D Gaussian least-squares fit (sub-voxel), crop it with a cubic-spline
   shift so that its centre lands on index ``n//2``, subtract the local background;
4. reject brightness and shape outliers (doublets, aggregates, out-of-focus debris) and beads
   correlating poorly with the provisional (median) average;
5. average the survivors (brightness-weighted mean of unit-sum crops), subtract the residual
   background, clip at 0, normalise to sum 1 → ``blurred_bead`` (o*);
6. render the ideal bead (sphere with partial-volume anti-aliasing) → ``ideal_bead`` (i*);
7. remove the bead size, ``o* = i* ⊛ p``, by Richardson–Lucy iterations → ``psf`` (p).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import user_error
from ..progress import ProgressFn, report
from . import _bead_align as al
from . import _bead_detect as det
from ._bead_figure import bead_qc_figure
from ._bead_ideal import render_ideal_bead
from ._bead_input import load_beads

__all__ = ["BeadPSF", "extract_psf", "render_ideal_bead", "bead_qc_figure"]


_DEFAULTS: dict[str, Any] = {
    "threshold_sigma": 8.0,  # detection threshold in noise standard deviations
    "min_relative": 0.04,  # ... and at least this fraction of the brightest peak
    "window_fwhm": 2.5,  # automatic crop half-size, in FWHM per axis
    "saturation_level": None,  # raw value counting as saturated (None: automatic)
    "max_brightness_ratio": 1.6,  # reject beads brighter than this × the median (doublets)
    "min_brightness_ratio": 0.2,  # reject beads dimmer than this × the median
    "max_width_ratio": 1.3,  # reject beads wider/narrower than this × the median on any axis
    "min_correlation_drop": 0.1,  # reject when NCC < median NCC − max(this, 4·MAD-σ)
    "tail_mask_sigma": 3.0,  # zero the average where its smoothed value is below k·noise (0: off)
    "average": "mean",  # "mean" (brightness-weighted) or "median"
    "spectral_filter": True,  # zero o*'s (and p's) spectrum where it is not above the noise floor
    "bead_removal_iterations": 10,  # RL iterations for p from o* = i* ⊛ p (early stop regularises)
    "channel": None,  # channel index for multi-channel/RGB input (None: the brightest)
    "max_beads": 500,  # localise at most this many candidates (brightest first)
}


@dataclass
class BeadPSF:
    """Result of :func:`extract_psf`. Arrays are (Z, Y, X) float32, centred at ``n//2``, sum 1.

    Attributes
    ----------
    psf : ndarray
        PSF with the bead size removed (p in o* = i* ⊛ p), for classical deconvolution.
    blurred_bead : ndarray
        Averaged bead image o* (NeuroDecon's blurred bead).
    ideal_bead : ndarray
        Ideal bead i*: the sphere of the bead diameter, anti-aliased.
    voxel_size_um : tuple of 3 floats
    n_used : int
        Beads averaged.
    rejected : list of ((z, y, x), reason)
        Every other detected bead, with a reason code (see :data:`neurodecon.psf.BEAD_REJECTION_REASONS`).
    positions : ndarray, shape (n_used, 3)
        Sub-voxel centres (voxels) of the beads used.
    fwhm_um : tuple of 3 floats
        FWHM (z, y, x) of ``blurred_bead`` in µm.
    fwhm_spread_um : tuple of 3 floats
        Standard deviation of the per-bead FWHM across the beads used, µm.
    psf_fwhm_um : tuple of 3 floats
        FWHM of ``psf`` (bead removed) in µm.
    info : dict
        Detection threshold, noise, background, per-bead FWHM, methods used (JSON-friendly).
    """

    psf: np.ndarray
    blurred_bead: np.ndarray
    ideal_bead: np.ndarray
    voxel_size_um: tuple[float, float, float]
    n_used: int
    rejected: list[tuple[tuple[float, float, float], str]]
    positions: np.ndarray
    fwhm_um: tuple[float, float, float]
    fwhm_spread_um: tuple[float, float, float]
    psf_fwhm_um: tuple[float, float, float] = (float("nan"),) * 3
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def rejection_counts(self) -> dict[str, int]:
        """Number of rejected beads per reason code."""
        return dict(Counter(reason for _, reason in self.rejected))

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable summary (what ``neurodecon psf extract --json`` prints)."""
        return {
            "n_used": self.n_used,
            "n_rejected": len(self.rejected),
            "rejected_by_reason": self.rejection_counts,
            "voxel_size_um": list(self.voxel_size_um),
            "shape": list(self.psf.shape),
            "fwhm_um": [round(v, 4) for v in self.fwhm_um],
            "fwhm_spread_um": [round(v, 4) for v in self.fwhm_spread_um],
            "psf_fwhm_um": [round(v, 4) for v in self.psf_fwhm_um],
            **{k: v for k, v in self.info.items() if k != "per_bead_fwhm_um"},
            "positions_used_zyx": [[round(float(v), 3) for v in p] for p in self.positions],
            "rejected": [
                {"position_zyx": [float(v) for v in p], "reason": r} for p, r in self.rejected
            ],
        }


# ----------------------------------------------------------------------------- pipeline
def extract_psf(
    beads: Any,
    *,
    voxel_size_um: tuple[float, float, float] | None = None,
    bead_diameter_um: float | None = None,
    size: tuple[int, int, int] | None = None,
    progress: ProgressFn | None = None,
    **options: Any,
) -> BeadPSF:
    """Detect, align and average the beads of a stack; return o*, i* and the PSF.

    Parameters
    ----------
    beads : (Z, Y, X) ndarray, Image or path
        Bead z-stack (RGB or multi-channel input: the channel with the most signal, or
        ``channel=``).
    voxel_size_um : 3 floats, optional
        (z, y, x) in µm; required for arrays, overrides an Image's or file's metadata.
    bead_diameter_um : float
        Bead diameter in µm for the ideal bead i* (required; e.g. 0.1 for 100 nm beads).
    size : 3 ints, optional
        Output shape (Z, Y, X); default ±2.5 FWHM per axis. Windows past the stack's ends in z are
        padded with zeros (after background subtraction), never wrapped.
    progress : callable, optional
        ``progress(done, total, message)``; return False to cancel.
    **options
        Tuning knobs, see ``_DEFAULTS`` in this module (threshold_sigma, saturation_level,
        max_brightness_ratio, average="mean"|"median", bead_removal_iterations, channel, ...).

    Returns
    -------
    BeadPSF
    """
    unknown = set(options) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"extract_psf() got unknown options {sorted(unknown)}")
    opt = {**_DEFAULTS, **options}
    if bead_diameter_um is None or not np.isfinite(bead_diameter_um) or bead_diameter_um <= 0:
        raise user_error(
            "the bead diameter is needed to extract a PSF"
            if bead_diameter_um is None
            else f"invalid bead diameter {bead_diameter_um} µm",
            fix="give the diameter of the beads in µm, e.g. 0.1 for 100 nm beads",
        )
    raw, vox, path = load_beads(beads, voxel_size_um, opt["channel"])
    volume = raw.astype(np.float32)
    report(progress, 0, 6, "detecting beads")
    cands, sat, half, core, fwhm0 = _detect(volume, raw.dtype, size, opt, path)
    reasons = det.mark_position_rejects(cands, volume.shape, half, core, sat, volume)
    report(progress, 1, 6, f"{len(cands.positions)} candidates; localising")
    shape = tuple(int(v) for v in (size if size is not None else 2 * half + 1))
    beads_ok = _localise(volume, cands, reasons, core, shape, opt, progress)
    report(progress, 4, 6, "rejecting outliers and averaging")
    _reject_outliers(beads_ok, reasons, fwhm0, opt)
    used = [b for b in beads_ok if reasons[b["index"]] is None]
    if not used:
        raise _no_beads_error(cands, reasons, path)
    blurred, gain = _recentre_on_peak(volume, used, _average(used, opt), opt)
    ideal = render_ideal_bead(blurred.shape, vox, bead_diameter_um)
    report(progress, 5, 6, "removing the bead size")
    psf = al.remove_bead(blurred, ideal, iterations=int(opt["bead_removal_iterations"]))
    if gain is not None:  # p has no frequency that o* = i* ⊛ p lacks: same OTF support
        psf = al.unit_sum(al.apply_gain(psf, gain))
    psf = al.recentre(psf)
    result = _assemble(psf, blurred, ideal, vox, used, cands, reasons, sat, opt, bead_diameter_um)
    report(progress, 6, 6, f"{result.n_used} beads used")
    return result


def _detect(volume, dtype, size, opt, path):
    cands, smooth = det.detect_candidates(
        volume, threshold_sigma=opt["threshold_sigma"], min_relative=opt["min_relative"]
    )
    if len(cands.positions) == 0:
        raise user_error(
            "no beads found (no local maximum rises above the noise threshold)",
            path=path,
            fix="check the channel and that the stack shows beads, or lower the detection threshold (--threshold)",
        )
    cands = _merge_same_bead(cands, np.full(3, 2.0))  # plateau voxels of one saturated top
    sat = det.saturation_level(volume, dtype, opt["saturation_level"])
    clean = cands.positions if sat is None else cands.positions[cands.raw_peaks < sat]
    fwhm0 = det.estimate_fwhm_vox(smooth, clean if len(clean) else cands.positions)
    del smooth
    core = np.maximum(np.ceil(fwhm0).astype(int), 2)
    if size is not None:
        size = np.asarray(size, int)
        if size.shape != (3,) or np.any(size < 3):
            raise user_error(
                f"invalid output size {tuple(size)}",
                path=path,
                fix="give three integers Z Y X, each at least 3",
            )
        half = size // 2
    else:
        half = np.maximum(np.ceil(opt["window_fwhm"] * fwhm0).astype(int), 4)
    cands = _merge_same_bead(cands, 1.5 * core)
    return cands, sat, half, core, fwhm0


def _merge_same_bead(cands: det.Candidates, radius: np.ndarray) -> det.Candidates:
    """Drop maxima within ``radius`` (ellipsoid, voxels) of a brighter one: plateaus, side lobes."""
    pos = cands.positions
    keep: list[int] = []
    for i, p in enumerate(pos):
        if not keep or np.all(np.sum(((pos[keep] - p) / radius) ** 2, axis=1) > 1.0):
            keep.append(i)
    k = np.asarray(keep, int)
    return det.Candidates(
        pos[k], cands.peaks[k], cands.raw_peaks[k], cands.background, cands.noise, cands.threshold
    )


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


_HINTS = {
    "close": "the beads are too dense for the crop: give a smaller --size or a sparser bead field",
    "border": "move the beads away from the stack border (a larger field or z range) or give a smaller --size",
    "saturated": "re-acquire with lower laser power or gain, or set the saturation level",
}


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


def _no_beads_error(cands, reasons, path):
    counts = Counter(r for r in reasons if r)
    parts = ", ".join(f"{n} {r}" for r, n in counts.most_common())
    top = counts.most_common(1)[0][0] if counts else ""
    hint = _HINTS.get(
        top, "check the channel, the saturation and that the stack shows isolated beads"
    )
    return user_error(
        f"no usable beads: {len(reasons)} detected, all rejected ({parts})", path=path, fix=hint
    )


def _fwhm_um(volume: np.ndarray, vox) -> np.ndarray:
    """FWHM (z, y, x) in µm through the centre ``n//2`` (``neurodecon.metrics.bead_fwhm``)."""
    from ..metrics import bead_fwhm

    return np.array(bead_fwhm(volume, vox, center=tuple(float(n // 2) for n in volume.shape)))


def _assemble(psf, blurred, ideal, vox, used, cands, reasons, sat, opt, diameter) -> BeadPSF:
    fwhm = _fwhm_um(blurred, vox)
    per_bead = np.array([_fwhm_um(b["crop"], vox) for b in used])
    spread = np.nanstd(per_bead, axis=0) if len(used) > 1 else np.zeros(3)
    rejected = [
        (tuple(float(v) for v in cands.positions[i]), r)
        for i, r in enumerate(reasons)
        if r is not None
    ]
    info = {
        "n_detected": len(cands.positions),
        "background": cands.background,
        "noise_sigma": cands.noise,
        "detection_threshold": cands.threshold,
        "saturation_level": sat,
        "bead_diameter_um": diameter,
        "channel": opt["channel"],
        "average": opt["average"],
        "bead_removal": f"Richardson-Lucy, {int(opt['bead_removal_iterations'])} iterations, linear convolution",
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
        fwhm_um=tuple(float(v) for v in fwhm),
        fwhm_spread_um=tuple(float(v) for v in spread),
        psf_fwhm_um=tuple(float(v) for v in _fwhm_um(psf, vox)),
        info=info,
    )
