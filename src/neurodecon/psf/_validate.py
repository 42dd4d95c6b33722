"""Make any PSF fit an image: validation, re-centring, resampling, cropping, and a summary.

Conventions: ``(Z, Y, X)`` arrays, voxel sizes ``(z, y, x)`` in µm, the PSF centre at ``n // 2``
on every axis, sum 1, float32.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import user_error
from ..memory import check_memory
from ._floor import check_measured_psf
from ._scale import centre_fraction, check_voxel_ratio, check_width, resampled_shape

__all__ = ["prepare_psf", "resample_psf", "psf_info", "center_crop"]

log = logging.getLogger("neurodecon")


# ---------------------------------------------------------------------------------------------
# geometry helpers
def center_crop(arr: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Crop (or zero-pad) each axis so that index ``n_in // 2`` lands on ``n_out // 2``."""
    out = np.zeros(tuple(shape), dtype=arr.dtype)
    src, dst = [], []
    for n_in, n_out in zip(arr.shape, shape, strict=True):
        start = n_in // 2 - n_out // 2  # input index that goes to output index 0
        lo, hi = max(start, 0), min(start + n_out, n_in)
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    out[tuple(dst)] = arr[tuple(src)]
    return out


def _keys(t: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel (a = −0.5)."""
    t = np.abs(t)
    return np.where(
        t <= 1,
        1.5 * t**3 - 2.5 * t**2 + 1,
        np.where(t < 2, -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2, 0.0),
    )


def _axis_matrix(n_in: int, n_out: int, ratio: float) -> np.ndarray:
    """Return the (n_out, n_in) cubic interpolation matrix (area-averaged when downsampling)."""
    k = 1 if ratio <= 1.0 + 1e-9 else 2 * math.ceil(ratio) + 1
    sub = ((np.arange(k) + 0.5) / k - 0.5) * ratio if k > 1 else np.zeros(1)
    pos = n_in // 2 + (np.arange(n_out)[:, None] - n_out // 2) * ratio + sub[None, :]
    mat = np.zeros((n_out, n_in))
    base = np.floor(pos).astype(np.int64)
    rows = np.broadcast_to(np.arange(n_out)[:, None], pos.shape)
    for tap in (-1, 0, 1, 2):
        idx = base + tap
        w = _keys(pos - idx) / k
        ok = (idx >= 0) & (idx < n_in)
        np.add.at(mat, (rows[ok], idx[ok]), w[ok])
    return mat


def resample_psf(
    psf: np.ndarray,
    from_voxel_size_um: Sequence[float],
    to_voxel_size_um: Sequence[float],
    *,
    shape: Sequence[int] | None = None,
    normalize: bool = True,
) -> np.ndarray:
    """Resample a centred PSF to another voxel size, keeping its centre at ``n // 2``.

    Cubic (Keys) interpolation; when a voxel grows, each new voxel averages several interpolated
    sub-samples (area integration, no aliasing of the narrow peak). The output covers the same
    physical extent (odd sizes: the centre stays on a voxel) unless ``shape`` is given. Negative
    interpolation lobes are clipped; with ``normalize`` the result sums to 1. Returns float32
    when ``normalize`` else float64.
    """
    arr = np.asarray(psf, dtype=np.float64)
    src = tuple(float(v) for v in from_voxel_size_um)
    dst = tuple(float(v) for v in to_voxel_size_um)
    if len(src) != arr.ndim or len(dst) != arr.ndim or min(src + dst) <= 0:
        raise user_error(
            f"cannot resample a {arr.ndim}-D PSF from {src} to {dst} µm",
            fix="give one positive voxel size per axis",
        )
    if shape is None:  # same physical extent, odd so that the centre stays a voxel
        shape = resampled_shape(arr.shape, src, dst)
    n_out = float(np.prod([float(n) for n in shape]))
    check_memory(
        24 * max(n_out, float(arr.size)),
        f"resampling the PSF to {'×'.join(map(str, shape))} voxels",
        fix="check the voxel sizes: they are in micrometres (0.1 for 100 nm)",
    )
    for axis, (n_out, a, b) in enumerate(zip(shape, src, dst, strict=True)):
        if arr.shape[axis] == n_out and abs(a - b) <= 1e-9 * a:
            continue
        mat = _axis_matrix(arr.shape[axis], int(n_out), b / a)
        arr = np.moveaxis(np.tensordot(mat, np.moveaxis(arr, axis, 0), axes=(1, 0)), 0, axis)
    arr = np.clip(arr, 0.0, None)
    if normalize:
        total = arr.sum()
        if not total > 0:
            raise user_error("the resampled PSF is empty", fix="check the voxel sizes")
        return (arr / total).astype(np.float32)
    return arr


# ---------------------------------------------------------------------------------------------
def _fwhm_3d(
    psf: np.ndarray, voxel_size_um: Sequence[float], peak: Sequence[int]
) -> tuple[float, ...]:
    """FWHM (z, y, x) in µm through ``peak``: the metrics package's bead FWHM (Gaussian fits)."""
    from ..metrics import bead_fwhm

    return tuple(
        float(v) for v in bead_fwhm(psf, voxel_size_um, center=tuple(float(p) for p in peak))
    )


def psf_info(psf: np.ndarray, voxel_size_um: Sequence[float] = (1.0, 1.0, 1.0)) -> dict[str, Any]:
    """Summary of a 3-D PSF.

    Returns
    -------
    dict
        ``shape``, ``voxel_size_um``, ``sum``, ``min``, ``peak`` and ``centre`` (index of the
        maximum), ``expected_centre`` (``n // 2``), ``centred`` (peak at the expected centre),
        ``fwhm_um`` (``{"z", "y", "x"}``, Gaussian fit of the lines through the peak), and
        ``axial_asymmetry`` = (E_after − E_before) / (E_after + E_before) with E the energy in
        the planes after/before the peak plane (0 for a symmetric PSF).
    """
    arr = np.asarray(psf, dtype=np.float64)
    if arr.ndim != 3:
        raise user_error(
            f"expected a 3-D PSF (Z, Y, X), got {arr.ndim} dimensions",
            fix="give a PSF stack with Z, Y, X axes",
        )
    peak = tuple(int(i) for i in np.unravel_index(int(np.argmax(arr)), arr.shape))
    fz, fy, fx = _fwhm_3d(arr, voxel_size_um, peak)
    before = float(arr[: peak[0]].sum())
    after = float(arr[peak[0] + 1 :].sum())
    centre = tuple(n // 2 for n in arr.shape)
    return {
        "shape": list(arr.shape),
        "voxel_size_um": [float(v) for v in voxel_size_um],
        "sum": float(arr.sum()),
        "min": float(arr.min()),
        "peak": list(peak),
        "centre": list(peak),
        "expected_centre": list(centre),
        "centred": peak == centre,
        "fwhm_um": {"z": fz, "y": fy, "x": fx},
        "axial_asymmetry": (after - before) / (after + before) if after + before > 0 else 0.0,
    }


# ---------------------------------------------------------------------------------------------
# prepare a user PSF for an image
def _check_values(arr: np.ndarray, path: Any) -> np.ndarray:
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise user_error(
            f"unsupported PSF pixel type {arr.dtype}",
            path=path,
            fix="save the PSF as real-valued integers or floats",
        )
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise user_error(
            f"the PSF contains {int((~np.isfinite(arr)).sum())} NaN/Inf values",
            path=path,
            fix="replace them (e.g. with 0) or regenerate the PSF",
        )
    if not arr.max() > 0:
        raise user_error(
            "the PSF has no positive values",
            path=path,
            fix="check that this is the PSF file (a bright spot on a dark background)",
        )
    return arr


def _clip_negative(arr: np.ndarray, path: Any) -> np.ndarray:
    neg = arr < 0
    if neg.any():
        log.info(f"{path or 'PSF'}: clipped {int(neg.sum())} negative values to 0")
        arr = np.clip(arr, 0.0, None)
    return arr


def _match_ndim(arr: np.ndarray, ndim: int, path: Any) -> np.ndarray:
    while arr.ndim > ndim and arr.shape[0] == 1:
        arr = arr[0]
    while arr.ndim < ndim and ndim - arr.ndim == 1 and ndim == 3:
        arr = arr[None]
    if arr.ndim != ndim:
        raise user_error(
            f"the PSF has {arr.ndim} dimensions but the image has {ndim}",
            path=path,
            fix="give a PSF with the same axes as the image (Z, Y, X)",
        )
    return arr


def _recentre(arr: np.ndarray, path: Any) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    centre = tuple(n // 2 for n in arr.shape)
    peak = tuple(int(i) for i in np.unravel_index(int(np.argmax(arr)), arr.shape))
    if peak == centre:
        return arr
    smooth_peak = tuple(
        int(i)
        for i in np.unravel_index(
            int(np.argmax(gaussian_filter(arr, 1.0, mode="constant"))), arr.shape
        )
    )
    if smooth_peak == centre:
        return arr
    new_shape = tuple(
        2 * max(p, n - 1 - p) + 1 for p, n in zip(smooth_peak, arr.shape, strict=True)
    )
    out = np.zeros(new_shape)
    dst = tuple(
        slice(m // 2 - p, m // 2 - p + n)
        for p, n, m in zip(smooth_peak, arr.shape, new_shape, strict=True)
    )
    out[dst] = arr
    off = max(abs(p - c) for p, c in zip(smooth_peak, centre, strict=True))
    report = log.warning if off > 1 else log.info
    report(f"{path or 'PSF'}: maximum at {smooth_peak}, not at the centre {centre}; re-centred")
    return out


def _warn_axis_order(arr: np.ndarray, vox: Sequence[float], path: Any) -> None:
    if min(arr.shape) < 5:
        return
    peak = tuple(int(i) for i in np.unravel_index(int(np.argmax(arr)), arr.shape))
    fz, fy, fx = _fwhm_3d(arr, vox, peak)
    if (
        np.isfinite([fz, fy, fx]).all()
        and fz < 0.7 * max(fy, fx)
        and max(fy, fx) > 2 * min(vox[1:])
    ):
        log.warning(
            f"{path or 'PSF'}: the PSF is narrower along z ({fz:.3g} µm) than along y/x "
            f"({fy:.3g}/{fx:.3g} µm); check that its axes are (Z, Y, X) and its voxel size"
        )


def prepare_psf(
    psf: np.ndarray,
    *,
    image_shape: Sequence[int],
    psf_voxel_size_um: Sequence[float] | None = None,
    image_voxel_size_um: Sequence[float] | None = None,
    path: Any = None,
    background: float | str | None = "auto",
) -> np.ndarray:
    """Make a PSF usable for an image: validated, resampled, re-centred, cropped, float32, sum 1.

    Parameters
    ----------
    psf : ndarray
        The PSF (same number of spatial axes as the image; a leading singleton axis is dropped).
    image_shape : tuple of int
        Spatial shape of the image (``(Z, Y, X)``).
    psf_voxel_size_um, image_voxel_size_um : 3 floats, optional
        When both are given and differ by more than 1 %, the PSF is resampled to the image's.
    path : optional
        Named in error messages.
    background : float, "auto" or None
        A measured PSF's offset: ``"auto"`` detects a camera offset or measurement noise far from
        the bead and removes it with the noise outside the PSF's support (one info line; see
        :mod:`neurodecon.psf._floor`); a number is subtracted as the offset; ``None`` skips
        the check (for kernels known to be clean).

    Raises
    ------
    NeuroDeconError
        NaN/Inf, no positive value, or a dimensionality that does not match the image; a PSF
        voxel size 200× off the image's (a unit mistake), a PSF that only resampling made
        narrower than a voxel, or one whose core is as wide as the image
        (:mod:`neurodecon.psf._scale`; a PSF that is narrower than a voxel anyway gets a warning).
    """
    image_shape = tuple(int(s) for s in image_shape)
    arr = _check_values(np.asarray(psf), path)
    arr = _match_ndim(arr, len(image_shape), path)
    arr = _clip_negative(check_measured_psf(arr, background=background, path=path), path)
    resampled_from = None
    if psf_voxel_size_um is not None and image_voxel_size_um is not None:
        src = tuple(float(v) for v in psf_voxel_size_um)
        dst = tuple(float(v) for v in image_voxel_size_um)
        if any(abs(a - b) > 0.01 * b for a, b in zip(src, dst, strict=True)):
            check_voxel_ratio(src, dst, path)
            log.info(f"{path or 'PSF'}: resampling from voxel size {src} to the image's {dst} µm")
            arr = _recentre(arr, path)
            resampled_from = (src, centre_fraction(arr))
            # only the part that fits the image is computed (it is cropped to the image below)
            natural = resampled_shape(arr.shape, src, dst)
            shape = [min(n, i) for n, i in zip(natural, image_shape, strict=True)]
            arr = resample_psf(arr, src, dst, shape=shape).astype(np.float64)
    arr = _recentre(arr, path)
    if any(p > i for p, i in zip(arr.shape, image_shape, strict=True)):
        new = tuple(min(p, i) for p, i in zip(arr.shape, image_shape, strict=True))
        log.info(f"{path or 'PSF'}: cropped from {arr.shape} to {new} to fit the image")
        arr = center_crop(arr, new)
    axis_vox = image_voxel_size_um if image_voxel_size_um is not None else psf_voxel_size_um
    if arr.ndim == 3 and axis_vox is not None:
        _warn_axis_order(arr, axis_vox, path)
    total = arr.sum()
    if not total > 0:
        raise user_error(
            "the PSF is empty after cropping to the image",
            path=path,
            fix="give a PSF whose peak lies inside the image's extent",
        )
    arr = arr / total
    vox = image_voxel_size_um if image_voxel_size_um is not None else psf_voxel_size_um
    check_width(arr, image_shape, vox, path, resampled_from=resampled_from)
    return arr.astype(np.float32)
