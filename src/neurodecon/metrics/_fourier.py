"""Fourier shell / ring correlation (FSC / FRC) between two images and its resolution threshold.

``FSC(r) = Σ_shell Re(A · B*) / sqrt(Σ_shell |A|² · Σ_shell |B|²)`` over shells of the
per-axis-normalised frequency radius ``r`` (see :mod:`._spectral`). 3D arrays use spherical shells
(ellipsoidal in µm for anisotropic voxels); 2D arrays use rings; ``plane="xy"|"xz"|"yz"`` on a
3D stack computes a 2D FRC in every plane of that orientation and pools the sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft

from ..errors import user_error
from ._spectral import prepare, radius_rfft, rfft_weights

__all__ = ["FourierCorrelation", "fsc", "frc_resolution", "threshold_curve", "PLANES"]

#: Plane orientation -> the two array axes (of a Z, Y, X stack) spanning it.
PLANES = {"xy": (1, 2), "xz": (0, 2), "yz": (0, 1)}


@dataclass(frozen=True)
class FourierCorrelation:
    """An FSC/FRC curve.

    Attributes
    ----------
    frequency : (n_bins,) ndarray
        Shell centre as a fraction of the Nyquist frequency (per-axis normalised).
    correlation : (n_bins,) ndarray
        Correlation in ``[-1, 1]`` per shell.
    n_points : (n_bins,) ndarray
        Fourier coefficients per shell (full spectrum, summed over planes), for the half-bit curve.
    voxel_size_um : tuple of float
        Sampling of the analysed axes, in array order.
    """

    frequency: np.ndarray
    correlation: np.ndarray
    n_points: np.ndarray
    voxel_size_um: tuple[float, ...]

    @property
    def frequency_per_um(self) -> np.ndarray:
        """Shell frequency in 1/µm along the last (lateral, X) axis: ``k / (2 · voxel_x)``."""
        return self.frequency / (2.0 * self.voxel_size_um[-1])

    def frequency_per_um_along(self, axis: int) -> np.ndarray:
        """Return the shell frequency in 1/µm along array ``axis``: ``k / (2 · voxel_axis)``."""
        return self.frequency / (2.0 * self.voxel_size_um[axis])


def _voxel(voxel_size_um: Sequence[float] | float, ndim: int) -> tuple[float, ...]:
    v = (
        (float(voxel_size_um),) * ndim
        if isinstance(voxel_size_um, (int, float, np.number))
        else tuple(map(float, voxel_size_um))
    )
    if len(v) != ndim or not all(x > 0 for x in v):
        raise user_error(f"voxel_size_um must be {ndim} positive values, got {voxel_size_um!r}")
    return v


def _stack_planes(a: np.ndarray, plane: str) -> tuple[np.ndarray, tuple[int, int]]:
    if plane not in PLANES:
        raise user_error(f"unknown plane {plane!r}", fix="use xy, xz or yz")
    if a.ndim != 3:
        raise user_error(f"plane={plane!r} needs a 3D (Z, Y, X) array, got {a.ndim}D")
    axes = PLANES[plane]
    other = ({0, 1, 2} - set(axes)).pop()
    return np.moveaxis(a, other, 0), axes


def fsc(
    a: np.ndarray,
    b: np.ndarray,
    voxel_size_um: Sequence[float] | float = 1.0,
    *,
    plane: str | None = None,
    n_bins: int | None = None,
    edges: str = "periodic",
) -> FourierCorrelation:
    """Fourier shell (3D) or ring (2D) correlation of two images of the same object.

    Parameters
    ----------
    a, b : (Z, Y, X) or (Y, X) ndarray
        Two images with independent noise (two acquisitions, or a result and the ground truth).
    voxel_size_um : float or sequence
        Voxel size of all axes of ``a`` (``(z, y, x)`` or ``(y, x)``), in µm.
    plane : {"xy", "xz", "yz"}, optional
        For a 3D stack: 2D FRC in every plane of this orientation, with the shell sums pooled.
    n_bins : int, optional
        Number of shells between 0 and Nyquist (default ``max(shape) // 2``: one pixel step along
        the longest axis).
    edges : {"periodic", "tukey", "none"}
        Border treatment before the FFT (after subtracting the mean): ``"periodic"`` (default)
        keeps Moisan's periodic component, which removes the border cross without blurring the
        spectrum; ``"tukey"`` tapers 12.5 % of each border; ``"none"``.

    Returns
    -------
    FourierCorrelation
    """
    if a.shape != b.shape:
        raise user_error(
            f"shapes differ: {a.shape} vs {b.shape}", fix="correlate images of the same size"
        )
    v = _voxel(voxel_size_um, a.ndim)
    if plane is not None:
        a, axes = _stack_planes(a, plane)
        b, _ = _stack_planes(b, plane)
        v = tuple(v[i] for i in axes)
        fft_axes: tuple[int, ...] = (1, 2)
    else:
        fft_axes = tuple(range(a.ndim))
    a, b = prepare(a, fft_axes, edges), prepare(b, fft_axes, edges)
    fa = sfft.rfftn(np.asarray(a, np.float32), axes=fft_axes, workers=1)
    fb = sfft.rfftn(np.asarray(b, np.float32), axes=fft_axes, workers=1)
    spatial = tuple(a.shape[i] for i in fft_axes)
    w = rfft_weights(spatial)
    num = np.real(fa * np.conj(fb)) * w
    pa = (np.abs(fa) ** 2) * w
    pb = (np.abs(fb) ** 2) * w
    if plane is not None:  # pool planes
        num, pa, pb = num.sum(axis=0), pa.sum(axis=0), pb.sum(axis=0)
        stack = a.shape[0]
    else:
        stack = 1
    r = radius_rfft(spatial)
    nb = n_bins or max(4, max(spatial) // 2)
    idx = np.minimum((r * nb).astype(np.int64), nb)  # r >= 1 (corners) -> overflow bin nb
    idx.flat[0] = nb  # the DC term (zero after mean subtraction) is left out
    sums = [
        np.bincount(idx.ravel(), weights=x.ravel().astype(np.float64), minlength=nb + 1)[:nb]
        for x in (num, pa, pb)
    ]
    count = np.bincount(idx.ravel(), weights=np.broadcast_to(w, r.shape).ravel(), minlength=nb + 1)[
        :nb
    ]
    den = np.sqrt(sums[1] * sums[2])
    corr = np.divide(sums[0], den, out=np.zeros(nb), where=den > 0)
    freq = (np.arange(nb) + 0.5) / nb
    return FourierCorrelation(freq, corr, count * stack, v)


def threshold_curve(curve: FourierCorrelation, threshold: str | float = "1/7") -> np.ndarray:
    """Return the threshold per shell: ``"1/7"`` (fixed 0.1429), ``"half-bit"`` or a number.

    Half-bit (van Heel & Schatz 2005): ``(0.2071 + 1.9102/√n) / (1.2071 + 0.9102/√n)`` with ``n``
    Fourier coefficients in the shell; meant for two independent half data sets.
    """
    if threshold == "1/7":
        return np.full_like(curve.correlation, 1.0 / 7.0)
    if threshold == "half-bit":
        s = 1.0 / np.sqrt(np.maximum(curve.n_points, 1.0))
        return (0.2071 + 1.9102 * s) / (1.2071 + 0.9102 * s)
    try:
        return np.full_like(curve.correlation, float(threshold))
    except (TypeError, ValueError):
        raise user_error(
            f"unknown threshold {threshold!r}", fix="use '1/7', 'half-bit' or a number"
        ) from None


def _crossing(curve: FourierCorrelation, thr: np.ndarray) -> float:
    """Return the first frequency (fraction of Nyquist) where the curve falls below ``thr``.

    Linearly interpolated between the two shells around the crossing; 1 (Nyquist) when the curve
    never falls below.
    """
    c, f = curve.correlation, curve.frequency
    ok = np.nonzero(curve.n_points > 0)[0]
    c, f, thr = c[ok], f[ok], thr[ok]
    below = np.nonzero(c[1:] < thr[1:])[0]
    if below.size == 0:  # correlated up to the last shell: the sampling limits the resolution
        return 1.0
    i = int(below[0]) + 1
    d0, d1 = c[i - 1] - thr[i - 1], c[i] - thr[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(f[i - 1] + t * (f[i] - f[i - 1]))


def frc_resolution(
    a: np.ndarray | FourierCorrelation,
    b: np.ndarray | None = None,
    *,
    voxel_size_um: Sequence[float] | float = 1.0,
    threshold: str | float = "1/7",
    plane: str | None = None,
    n_bins: int | None = None,
) -> tuple[float, ...]:
    """Resolution in µm along each analysed axis where the FSC/FRC crosses ``threshold``.

    Parameters
    ----------
    a, b : ndarray, or ``a`` a :class:`FourierCorrelation` already computed (then ``b=None``)
    voxel_size_um, plane, n_bins :
        As in :func:`fsc`.
    threshold : {"1/7", "half-bit"} or float
        Named criterion (see :func:`threshold_curve`).

    Returns
    -------
    tuple of float
        ``2 · voxel_i / k_c`` for every analysed axis ``i`` (``(z, y, x)`` for a 3D FSC, the two
        in-plane axes for ``plane``), where ``k_c`` is the first crossing as a fraction of Nyquist.
        When the curve never drops below the threshold (correlated up to Nyquist), ``k_c = 1``:
        the Nyquist limit ``2 · voxel_i`` is returned, a bound set by the sampling.
    """
    if isinstance(a, FourierCorrelation):
        curve = a
    elif b is None:
        raise TypeError("frc_resolution needs two images, or one FourierCorrelation")
    else:
        curve = fsc(a, b, voxel_size_um, plane=plane, n_bins=n_bins)
    kc = _crossing(curve, threshold_curve(curve, threshold))
    return tuple(2.0 * v / kc for v in curve.voxel_size_um)
