"""Experimental PSF from a bead stack: the PSF p, the bead image o* and the ideal bead i*.

Two methods behind :func:`extract_psf`:

``"joint"`` (default, :mod:`._bead_joint_extract`)
    The whole stack is one linear model of the PSF: every detected bead (sub-voxel centre × ideal
    bead) blurred by the same PSF, plus a background. Overlapping beads help instead of being
    rejected, every plane contributes, and the PSF is as large as the stack allows — what a
    widefield PSF, whose flux per plane hardly decays with defocus, needs. Sized from the
    physics (flux per plane against its noise, the light cone), optionally extended by a fitted
    physical model where the image needs more than the stack measured.
``"average"`` (:mod:`._bead_average`)
    Crop isolated beads on a ±2.5 FWHM window, align and average them, remove the bead size by
    RL. Fits compact (confocal, two-photon) PSFs; truncates widefield ones.

Both start from the same detection (:mod:`._bead_detect`): local maxima of the σ=1-voxel-smoothed
stack above a MAD-derived noise threshold, saturated and merged maxima flagged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import user_error
from ..progress import ProgressFn, report
from . import _bead_detect as det
from ._bead_average import extract_average
from ._bead_figure import bead_qc_figure
from ._bead_ideal import render_ideal_bead
from ._bead_input import load_beads
from ._bead_joint_extract import extract_joint
from ._bead_result import BeadPSF, no_beads_error

__all__ = ["BeadPSF", "extract_psf", "render_ideal_bead", "bead_qc_figure", "BEAD_METHODS"]

#: Extraction methods of :func:`extract_psf`.
BEAD_METHODS = ("joint", "average")

_DEFAULTS: dict[str, Any] = {
    "threshold_sigma": 8.0,  # detection threshold in noise standard deviations
    "min_relative": 0.04,  # ... and at least this fraction of the brightest peak
    "saturation_level": None,  # raw value counting as saturated (None: automatic)
    "max_brightness_ratio": 1.6,  # bright: beads brighter than this × the median (doublets)
    "min_brightness_ratio": 0.2,  # dim: beads dimmer than this × the median
    "max_width_ratio": 1.3,  # shape: wider/narrower than this × the median on any axis
    "channel": None,  # channel index for multi-channel/RGB input (None: the brightest)
    "max_beads": 500,  # localise at most this many candidates (brightest first)
    # method="average"
    "window_fwhm": 2.5,  # automatic crop half-size, in FWHM per axis
    "min_correlation_drop": 0.1,  # reject when NCC < median NCC − max(this, 4·MAD-σ)
    "tail_mask_sigma": 3.0,  # zero the average where its smoothed value is below k·noise (0: off)
    "average": "mean",  # "mean" (brightness-weighted) or "median"
    "spectral_filter": True,  # zero o*'s (and p's) spectrum where it is not above the noise floor
    "bead_removal_iterations": 10,  # RL iterations for p from o* = i* ⊛ p (early stop regularises)
    # method="joint"
    "max_voxels": 4_000_000,  # larger stacks: the lateral window with the most beads
    "coarse_passes": 3,  # alternations (PSF + background by CG, then amplitudes) when coarse
    "coarse_iterations": 20,  # CG iterations per coarse pass
    "fine_iterations": 25,  # RL iterations at full resolution
    "sectors": 1,  # angular sectors of the tail cells (1: radially averaged tails)
    "shrink": 0.5,  # soft threshold of the tail cells, in standard errors (0: plain NNLS)
    "hybrid": True,  # extend with a fitted model where the image needs more than measured
    "device": "auto",  # torch device of the joint fit
}


def extract_psf(
    beads: Any,
    *,
    voxel_size_um: tuple[float, float, float] | None = None,
    bead_diameter_um: float | None = None,
    size: tuple[int, int, int] | None = None,
    method: str = "joint",
    optics: Mapping[str, Any] | None = None,
    image_shape: Sequence[int] | None = None,
    image_voxel_size_um: Sequence[float] | None = None,
    progress: ProgressFn | None = None,
    **options: Any,
) -> BeadPSF:
    """Estimate the PSF from a bead stack; return p, o* and i* with QC data.

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
        Output shape (Z, Y, X). Default: joint — the planes whose flux stands above the noise
        (and the light cone there), no larger than ``image_shape``; average — ±2.5 FWHM per axis.
        The PSF is zero where nothing was measured (never wrapped).
    method : {"joint", "average"}
        Joint model of the whole stack (default), or the per-bead crop-and-average.
    optics : mapping, optional
        What is known of the microscope: ``na`` and ``immersion_index`` bound the light cone;
        with them, ``wavelength_um`` and the other :func:`make_psf` options (and ``model``, one of
        :data:`MODELS`, default widefield) the tails are extended by that model, scaled to the
        measured flux, where ``size``/``image_shape`` need more than the stack measured.
    image_shape : 3 ints, optional
        Shape of the image the PSF is for (joint method): its extent bounds the default box, and
        the hybrid tails (``optics``) reach as far as it needs.
    image_voxel_size_um : 3 floats, optional
        That image's voxel size (default: the bead stack's).
    progress : callable, optional
        ``progress(done, total, message)``; return False to cancel.
    **options
        Tuning knobs, see ``_DEFAULTS`` in this module (threshold_sigma, saturation_level,
        max_brightness_ratio, channel, ...; average: average="mean"|"median",
        bead_removal_iterations, spectral_filter; joint: max_voxels, sectors, device, ...).

    Returns
    -------
    BeadPSF
    """
    unknown = set(options) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"extract_psf() got unknown options {sorted(unknown)}")
    if method not in BEAD_METHODS:
        raise user_error(f"unknown bead method {method!r}", fix="use 'joint' or 'average'")
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
    report(progress, 1, 6, f"{len(cands.positions)} candidates; localising")
    if method == "average":
        reasons = det.mark_position_rejects(cands, volume.shape, half, core, sat, volume)
        shape = tuple(int(v) for v in (size if size is not None else 2 * half + 1))
        result = extract_average(
            volume, vox, cands, reasons, sat, core, fwhm0, shape, opt, bead_diameter_um, progress
        )
    else:
        result, reasons = extract_joint(
            volume,
            vox,
            cands,
            sat,
            core,
            fwhm0,
            opt,
            bead_diameter_um,
            size=size,
            image_shape=_in_bead_voxels(image_shape, image_voxel_size_um, vox),
            optics=optics,
            progress=progress,
        )
    if result is None:
        raise no_beads_error(cands, reasons, path)
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
            fix="check the channel and that the stack shows beads, or lower the detection "
            "threshold (--threshold)",
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


def _in_bead_voxels(shape, image_vox, bead_vox) -> tuple[int, int, int] | None:
    """Return the image's extent in voxels of the bead stack."""
    if shape is None:
        return None
    if image_vox is None:
        return (int(shape[0]), int(shape[1]), int(shape[2]))
    n = [
        max(1, int(np.floor(int(s) * float(a) / float(b) + 1e-6)))
        for s, a, b in zip(shape, image_vox, bead_vox, strict=True)
    ]
    return (n[0], n[1], n[2])
