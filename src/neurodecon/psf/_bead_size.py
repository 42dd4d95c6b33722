"""Size the joint bead PSF from the physics, and the filters applied to it at the end.

A plane is measured when its flux, summed outwards from the axis, rises above ``k`` standard
errors at some radius (Poisson Fisher information of the fit); its extent is the radius beyond
which the remaining flux stays within ``k`` standard errors of zero. The measured planes,
contiguous around focus, and the largest significant radius among them (no larger than the light
cone there) give the box.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import _bead_align as al
from ._bead_joint import JointLevel

__all__ = ["swells", "plane_sigma", "measured_half", "post_filter"]


def swells(flux: np.ndarray, core_z: int, tolerance: float = 2.0) -> bool:
    """Tell whether the flux per plane grows away from focus (not a PSF's behaviour).

    True when, beyond the core, a plane holds more than ``tolerance`` × the least flux of the
    planes nearer focus (3-plane running mean). A widefield PSF keeps its flux per plane (ratio
    ≈ 1), a confocal one loses it; a far plane far brighter than nearer ones is the background
    leaking into the tails (the flat pedestal the data hardly see).
    """
    f = np.convolve(flux, np.ones(3) / 3, mode="same")
    c = len(f) // 2
    for side in (f[c:], f[c::-1]):
        env = np.minimum.accumulate(np.clip(side, 1e-30, None))
        far = np.arange(len(side)) > core_z + 1
        if np.any(side[far] > tolerance * env[far]):
            return True
    return False


def plane_sigma(level: JointLevel, sig_cells) -> np.ndarray:
    """Return the standard error of the flux of each plane of the level's box."""
    plane, _ = level.cell_geometry()
    cnt = level.cells.counts
    s = sig_cells.cpu().numpy()
    var = np.where(np.isfinite(s), (cnt * s) ** 2, 0.0)
    return np.sqrt(np.bincount(plane, weights=var, minlength=level.cells.labels.shape[0]))


def clipped_noise_mean(shrink: float) -> float:
    """Return the mean of ``max(0, x − κ)`` for ``x ~ N(0, 1)``.

    That is the flux a non-negative fit puts in a cell whose true value is 0, in units of the
    cell's standard error (κ the soft threshold).
    """
    from scipy.stats import norm

    return float(norm.pdf(shrink) - shrink * norm.sf(shrink))


def _plane_extents(level: JointLevel, theta, sig_cells, k: float, shrink: float = 0.0):
    """Per plane: is its flux significant, and the radius (px) beyond which it is not.

    Cells are taken outwards from the axis: the plane counts as measured when the cumulative flux
    exceeds ``k`` standard errors at some radius; its extent is the smallest radius beyond which
    the remaining flux stays within ``k`` standard errors of zero. The flux is counted above
    what the non-negativity of the fit puts into cells that hold only noise
    (:func:`clipped_noise_mean`): summed over thousands of cells, that bias alone would pass any
    test against the standard error.
    """
    plane, radius = level.cell_geometry()
    cnt = level.cells.counts
    s = sig_cells.cpu().numpy()
    var = np.where(np.isfinite(s), (cnt * s) ** 2, 0.0)
    flux = cnt * theta.cpu().numpy() - clipped_noise_mean(shrink) * np.sqrt(var)
    nz = level.cells.labels.shape[0]
    ok, extent = np.zeros(nz, bool), np.zeros(nz)
    for z in range(nz):
        sel = np.flatnonzero((plane == z) & (var > 0))
        if not len(sel):
            continue
        order = sel[np.argsort(radius[sel], kind="stable")]
        f, v = flux[order], var[order]
        ok[z] = float((np.cumsum(f) / np.sqrt(np.cumsum(v))).max()) > k
        outer_f = np.cumsum(f[::-1])[::-1]
        outer_s = np.sqrt(np.cumsum(v[::-1])[::-1])
        inside = np.flatnonzero(outer_f > k * outer_s)
        extent[z] = radius[order][inside[-1]] + 1 if len(inside) else 0.0
    return ok, extent


def measured_half(
    level, theta, sig_cells, factor, cone, r0_um, vox, opt, shrink: float = 0.0
) -> tuple[int, int, int]:
    """Half-size (fine voxels) of the box of measured planes and of their light.

    Axially the measured planes, contiguous around focus; laterally the largest significant
    radius among them (+10 %, at least 2 core radii), no larger than the cone there.
    """
    ok, extent = _plane_extents(level, theta, sig_cells, opt["flux_significance"], shrink)
    hz = len(ok) // 2
    dz = 0
    while dz < hz and ok[hz + dz + 1] and ok[hz - dz - 1]:
        dz += 1
    zf = max(dz, 1) * factor[0]
    u = min(vox[1:])
    r_sig = 1.1 * float(extent[hz - dz : hz + dz + 1].max()) * factor[1] * u  # µm
    r_um = min(r0_um + zf * vox[0] * cone, max(r_sig, r0_um))
    caps = [n // 2 * k for n, k in zip(level.cells.labels.shape[1:], factor[1:], strict=True)]
    lat = [min(int(np.ceil(r_um / v)), c) for v, c in zip(vox[1:], caps, strict=True)]
    return (zf, lat[0], lat[1])


def post_filter(psf: np.ndarray, voxel_box: bool, noise: float) -> np.ndarray:
    """Put the voxel box back into the PSF and, optionally, zero the shells below the noise.

    The box enters as its transfer function (see :mod:`._bead_joint`); the shells are those of
    :func:`._bead_align.spectral_filter` (``noise`` > 0).
    """
    from scipy import fft

    if not voxel_box and noise <= 0:
        return psf
    pad = 4
    big = np.pad(psf, pad)
    spec = fft.rfftn(big, workers=-1)
    if noise > 0:
        full_gain = al.spectral_filter(psf, noise)  # on the PSF's own grid (FFT layout)
        gain = _resample_gain(full_gain, big.shape)
        spec *= gain
    if voxel_box:
        k = [np.fft.fftfreq(n) for n in big.shape[:2]] + [np.fft.rfftfreq(big.shape[2])]
        spec *= (
            np.sinc(k[0])[:, None, None]
            * np.sinc(k[1])[None, :, None]
            * np.sinc(k[2])[None, None, :]
        )
    out = fft.irfftn(spec, big.shape, workers=-1)[pad:-pad, pad:-pad, pad:-pad]
    return np.clip(out, 0, None)


def _resample_gain(gain: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Evaluate a (0/1) gain on one FFT grid at the frequencies of another (nearest), rfft half."""
    idx = []
    for n_src, n_dst, half in zip(gain.shape, shape, (False, False, True), strict=True):
        f = np.fft.rfftfreq(n_dst) if half else np.fft.fftfreq(n_dst)
        idx.append(np.rint(f * n_src).astype(int) % n_src)
    return gain[np.ix_(*idx)]
