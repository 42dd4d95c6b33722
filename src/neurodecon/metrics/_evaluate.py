"""One call that scores a result: full-reference metrics when a truth is given, the rest always."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import user_error
from ..progress import ProgressFn, report
from ._decorrelation import decorrelation
from ._fidelity import (
    NORMALIZATIONS,
    check_pair,
    data_range_of,
    normalize_pair,
    nrmse,
    pearson,
    psnr,
    rmse,
    ssim,
)
from ._fourier import frc_resolution, fsc
from ._texture import glcm_features, shannon_entropy

__all__ = ["evaluate", "METRIC_KEYS"]

#: Every key :func:`evaluate` can return, with its meaning (the CLI prints these).
METRIC_KEYS: dict[str, str] = {
    "psnr": "peak SNR vs truth, dB (data_range 1 after normalisation)",
    "ssim": "3D structural similarity vs truth (7³ window)",
    "nrmse": "RMSE / (max − min of truth)",
    "rmse": "root-mean-square error vs normalised truth",
    "pearson": "Pearson correlation vs truth",
    "fsc_resolution_z_um": "FSC vs truth, 1/7 threshold, along z (µm)",
    "fsc_resolution_y_um": "FSC vs truth, 1/7 threshold, along y (µm)",
    "fsc_resolution_x_um": "FSC vs truth, 1/7 threshold, along x (µm)",
    "decorr_xy_resolution_um": "decorrelation resolution, XY planes, along x (µm)",
    "decorr_xz_resolution_um": "decorrelation resolution, XZ planes, along z (µm)",
    "decorr_yz_resolution_um": "decorrelation resolution, YZ planes, along z (µm)",
    "decorr_xy_kc": "decorrelation cut-off, XY (fraction of Nyquist)",
    "decorr_xz_kc": "decorrelation cut-off, XZ (fraction of Nyquist)",
    "decorr_yz_kc": "decorrelation cut-off, YZ (fraction of Nyquist)",
    "decorr_xy_snr": "decorrelation peak height A0, XY (ImDecorr 'SNR', 0–1)",
    "decorr_xz_snr": "decorrelation peak height A0, XZ (ImDecorr 'SNR', 0–1)",
    "decorr_yz_snr": "decorrelation peak height A0, YZ (ImDecorr 'SNR', 0–1)",
    "entropy_bits": "Shannon entropy of the 256-bin histogram (bits)",
    "glcm_asm": "GLCM angular second moment (32 levels, 1 px, 4 angles, XY)",
    "glcm_idm": "GLCM inverse difference moment (32 levels, 1 px, 4 angles, XY)",
}

#: Axis whose voxel size turns a plane's cut-off into µm: x for XY, z for XZ and YZ.
_PLANE_AXIS = {"xy": 2, "xz": 0, "yz": 0}


def _as_volume(x: Any, name: str) -> tuple[np.ndarray, tuple[float, float, float] | None]:
    voxel = None
    if hasattr(x, "data") and hasattr(x, "voxel_size_um"):
        voxel = tuple(x.voxel_size_um)
        x = x.data
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 3:
        raise user_error(
            f"the {name} must be one 3D (Z, Y, X) stack, got shape {arr.shape}",
            fix="pass a single-channel, single-time-point stack",
        )
    if not np.all(np.isfinite(arr)):
        raise user_error(f"the {name} contains NaN or infinite values", fix="clean or recompute it")
    return arr, voxel


def _reference_metrics(
    pred: np.ndarray, truth: np.ndarray, voxel: tuple[float, ...], normalization: str
) -> dict[str, float]:
    p, t = normalize_pair(pred, truth, normalization)
    dr = data_range_of(t, normalization)
    out = {
        "psnr": psnr(p, t, data_range=dr),
        "ssim": ssim(p, t, data_range=dr),
        "nrmse": nrmse(p, t),
        "rmse": rmse(p, t),
        "pearson": pearson(p, t),
    }
    res = frc_resolution(fsc(pred, truth, voxel), threshold="1/7")
    out.update({f"fsc_resolution_{a}_um": r for a, r in zip("zyx", res, strict=True)})
    return out


def evaluate(
    pred: Any,
    truth: Any = None,
    *,
    voxel_size_um: Sequence[float] | None = None,
    normalization: str = "affine",
    progress: ProgressFn | None = None,
) -> dict[str, float]:
    """Score a result with every metric that applies, as a flat dict of floats.

    Parameters
    ----------
    pred : (Z, Y, X) ndarray or Image
        The result (or any stack) to score.
    truth : (Z, Y, X) ndarray or Image, optional
        Ground truth of the same shape; adds the full-reference keys.
    voxel_size_um : 3 floats, optional
        ``(z, y, x)`` in µm; default the ``Image``'s, else ``(1, 1, 1)`` (results then in voxels).
    normalization : {"affine", "percentile", "none"}
        Policy of :func:`normalize_pair` before PSNR/SSIM/NRMSE/RMSE/Pearson. FSC, decorrelation
        and texture metrics are scale-free and use the raw arrays.
    progress : callable, optional
        ``progress(done, total, message)``.

    Returns
    -------
    dict
        Keys of :data:`METRIC_KEYS`: with a truth ``psnr, ssim, nrmse, rmse, pearson,
        fsc_resolution_{z,y,x}_um``; always ``decorr_{xy,xz,yz}_{resolution_um,kc,snr}``,
        ``entropy_bits``, ``glcm_asm``, ``glcm_idm``. Values are Python floats; NaN where no
        decorrelation peak was found; ``inf`` PSNR for a perfect match; an FSC that never drops
        below 1/7 gives the Nyquist limit ``2 · voxel``.
    """
    if normalization not in NORMALIZATIONS:
        raise user_error(
            f"unknown normalization {normalization!r}",
            fix=f"use one of {', '.join(NORMALIZATIONS)}",
        )
    p, own_voxel = _as_volume(pred, "prediction")
    voxel: tuple[float, ...] = (
        tuple(map(float, voxel_size_um))
        if voxel_size_um is not None
        else own_voxel or (1.0, 1.0, 1.0)
    )
    total = 5 if truth is not None else 4
    out: dict[str, float] = {}
    if truth is not None:
        t, _ = _as_volume(truth, "ground truth")
        p, t = check_pair(p, t)
        report(progress, 0, total, "full-reference metrics")
        out.update(_reference_metrics(p, t, voxel, normalization))
    for n, plane in enumerate(("xy", "xz", "yz")):
        report(progress, total - 4 + n, total, f"decorrelation {plane}")
        d = decorrelation(p, voxel_size_um=voxel, plane=plane)
        out[f"decorr_{plane}_resolution_um"] = 2.0 * voxel[_PLANE_AXIS[plane]] / d.kc
        out[f"decorr_{plane}_kc"] = d.kc
        out[f"decorr_{plane}_snr"] = d.snr
    report(progress, total - 1, total, "texture")
    out["entropy_bits"] = shannon_entropy(p)
    out.update({f"glcm_{k}": v for k, v in glcm_features(p).items()})
    report(progress, total, total, "done")
    return {k: float(v) for k, v in out.items()}
