"""Decorrelation analysis: resolution and SNR of a single image without ground truth.

Written from the description in A. Descloux, K. S. Grußmayer, A. Radenovic, "Parameter-free
image resolution estimation based on decorrelation analysis", Nat. Methods 16 (2019) 918–924
(the method behind the ImDecorr plugin that the NeuroDecon paper uses).

For the Fourier transform ``I(k)`` of an image and its phase-only version ``In = I / |I|``, the
Pearson correlation of ``I`` with ``In`` low-passed at radius ``r`` is::

    d(r) = Σ_{|k|≤r} |I(k)| / ( sqrt(Σ_k |I(k)|²) · sqrt(#{|k| ≤ r}) )

Where the spectrum is signal-dominated ``|I|`` is large and ``d`` rises; where only white noise is
left, adding coefficients lowers it, so ``d(r)`` peaks near the highest frequency that still
carries signal. The peak position of the unfiltered curve is ``r0`` and its height ``A0``
(ImDecorr reports ``A0`` as its SNR estimate). Repeating the curve on high-passed copies (the image
minus its Gaussian blur, for blur widths from ``2 / r0`` down to 0.15 pixel, geometric; then a
second, finer sweep between the filters that gave the highest peak position and the best
``sqrt(k · A)``) moves the peak to higher frequencies. Peaks lower than 0.05 are ignored; the
cut-off ``k_c`` is the largest peak position left, and the resolution is ``2 · voxel / k_c``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft

from ..errors import user_error
from ._fourier import PLANES
from ._spectral import prepare, radius_rfft, rfft_weights

__all__ = ["DecorrelationResult", "decorrelation", "decorrelation_curve"]

#: A peak must stand this far above the lowest point of the curve to its right.
MIN_PEAK_DROP = 1e-3
#: Peaks lower than this are not physical (noise-only curves) and are ignored.
MIN_PEAK_HEIGHT = 0.05
#: Narrowest real-space Gaussian (pixels) of the high-pass sweep, ``image − blur_σ(image)``.
MIN_BLUR_PX = 0.15


@dataclass(frozen=True)
class DecorrelationResult:
    """Outcome of :func:`decorrelation`.

    Attributes
    ----------
    kc : float
        Cut-off as a fraction of Nyquist (per-axis normalised), NaN when no peak was found.
    snr : float
        ``A0``, height of the unfiltered curve's peak in ``[0, 1]`` (ImDecorr's "SNR"; higher is
        cleaner). 0 when the curve has no peak.
    resolution_um : tuple of float
        ``2 · voxel_i / kc`` along each axis of the analysed plane (NaN without a peak).
    radii : ndarray
        Radii (fraction of Nyquist) at which the curves were sampled.
    d0 : ndarray
        The unfiltered decorrelation curve.
    plane : str or None
        Plane orientation analysed (``None`` for a 2D input).
    """

    kc: float
    snr: float
    resolution_um: tuple[float, float]
    radii: np.ndarray
    d0: np.ndarray
    plane: str | None = None


class _Spectrum:
    """Pooled, radius-sorted Fourier magnitudes of a stack of 2D planes."""

    def __init__(self, planes: np.ndarray, edges: str, n_radii: int) -> None:
        prep = prepare(planes, (1, 2), edges)
        f = sfft.rfftn(prep, axes=(1, 2), workers=1)
        w = rfft_weights(planes.shape[1:])
        r = radius_rfft(planes.shape[1:])
        r.flat[0] = 2.0  # leave out the DC term
        keep = r <= 1.0
        mag = np.abs(f)
        m1 = (mag.sum(axis=0) * w)[keep]
        m2 = ((mag * mag).sum(axis=0) * w)[keep]
        order = np.argsort(r[keep], kind="stable")
        self.r = r[keep][order].astype(np.float64)
        self.m1 = m1[order].astype(np.float64)
        self.m2 = m2[order].astype(np.float64)
        count = np.cumsum(np.broadcast_to(w, r.shape)[keep][order].astype(np.float64))
        self.radii = np.arange(1, n_radii + 1) / n_radii
        self.ends = np.searchsorted(self.r, self.radii, side="right")
        self.count = count[np.maximum(self.ends - 1, 0)] * planes.shape[0]

    def curve(self, sigma: float | None) -> np.ndarray:
        h = 1.0 if sigma is None else 1.0 - np.exp(-(self.r**2) / (2.0 * sigma**2))
        cum = np.concatenate([[0.0], np.cumsum(self.m1 * h)])[self.ends]
        norm = np.sqrt(np.sum(self.m2 * h * h))
        den = norm * np.sqrt(self.count)
        return np.divide(cum, den, out=np.zeros_like(cum), where=den > 0)


def _peak(d: np.ndarray) -> tuple[int, float] | None:
    """Index and height of the right-most-trimmed local maximum of ``d``, or None."""
    j = d.size
    while j > 1:
        i = int(np.argmax(d[:j]))
        if i == j - 1:
            j -= 1
            continue
        if d[i] - d[i:].min() >= MIN_PEAK_DROP and d[i] > 0:
            return i, float(d[i])
        j = i
    return None


def _sweep(spec: _Spectrum, sigmas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak radius and height of the high-passed curve for every ``sigma`` (0, 0 when no peak)."""
    kc, amp = np.zeros(sigmas.size), np.zeros(sigmas.size)
    for n, s in enumerate(sigmas):
        pk = _peak(spec.curve(float(s)))
        if pk is not None and pk[1] >= MIN_PEAK_HEIGHT:
            kc[n], amp[n] = spec.radii[pk[0]], pk[1]
    return kc, amp


def _refined_sigmas(sigmas: np.ndarray, kc: np.ndarray, amp: np.ndarray) -> np.ndarray:
    """Second sweep between the filters giving the highest ``kc`` and the best ``sqrt(kc · A)``."""
    i1, i2 = sorted((int(np.argmax(np.sqrt(kc * amp))), int(np.argmax(kc))))
    if i1 == 0:
        i2 = 0
    i2 = min(i2, sigmas.size - 2)
    return np.geomspace(sigmas[i1], sigmas[i2 + 1], sigmas.size)


def decorrelation_curve(
    image: np.ndarray, *, n_radii: int = 100, edges: str = "periodic", sigma: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return the radii (fraction of Nyquist) and the decorrelation curve ``d(r)`` of a 2D image.

    Parameters
    ----------
    image : (Y, X) ndarray
        One image.
    n_radii : int
        Radii sampled between 0 and Nyquist.
    edges : {"periodic", "tukey", "none"}
        Border treatment before the FFT (see :func:`neurodecon.metrics.fsc`).
    sigma : float, optional
        Apply the Gaussian high-pass ``1 − exp(−r² / 2σ²)`` first (σ a fraction of Nyquist).

    Returns
    -------
    radii, d : (n_radii,) ndarray
        ``radii = (1, 2, …, n_radii) / n_radii`` and the curve at those radii.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise user_error(f"decorrelation_curve needs a 2D image, got {img.ndim}D")
    spec = _Spectrum(img[None], edges, n_radii)
    return spec.radii, spec.curve(sigma)


def _plane_stack(volume: np.ndarray, plane: str, n_planes: int) -> np.ndarray:
    if plane not in PLANES:
        raise user_error(f"unknown plane {plane!r}", fix="use xy, xz or yz")
    normal = ({0, 1, 2} - set(PLANES[plane])).pop()
    n = volume.shape[normal]
    idx = np.unique(np.round(np.linspace(0.25, 0.75, max(1, n_planes)) * (n - 1)).astype(int))
    return np.moveaxis(np.take(volume, idx, axis=normal), normal, 0)


def decorrelation(
    image: np.ndarray,
    *,
    voxel_size_um: Sequence[float] | float = 1.0,
    plane: str | None = None,
    n_planes: int = 5,
    n_radii: int = 100,
    n_filters: int = 10,
    edges: str = "periodic",
) -> DecorrelationResult:
    """Estimate resolution and SNR of an image by decorrelation analysis (Descloux et al. 2019).

    Parameters
    ----------
    image : (Y, X) or (Z, Y, X) ndarray
        One image; no ground truth or second copy needed.
    voxel_size_um : float or sequence
        Voxel size of all axes of ``image`` in µm (``(z, y, x)`` for a stack).
    plane : {"xy", "xz", "yz"}, required for a 3D stack
        Plane orientation. ``n_planes`` planes evenly spaced over the central half of the stack
        along the plane's normal are analysed together (their spectra pooled).
    n_planes, n_radii, n_filters : int
        Planes pooled, radii sampled between 0 and Nyquist, high-pass filters per sweep.
    edges : {"periodic", "tukey", "none"}
        Border treatment before the FFT (see :func:`neurodecon.metrics.fsc`).

    Returns
    -------
    DecorrelationResult
        ``kc``, ``snr`` (= A0), and ``resolution_um`` along the two in-plane axes.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3:
        if plane is None:
            raise user_error("a 3D stack needs plane='xy', 'xz' or 'yz'")
        planes = _plane_stack(img, plane, n_planes)
        axes = PLANES[plane]
    elif img.ndim == 2:
        planes, axes = img[None], (0, 1)
    else:
        raise user_error(f"decorrelation needs a 2D or 3D image, got {img.ndim}D")
    v = (
        (float(voxel_size_um),) * img.ndim
        if isinstance(voxel_size_um, (int, float, np.number))
        else tuple(map(float, voxel_size_um))
    )
    if len(v) != img.ndim:
        raise user_error(f"voxel_size_um must have {img.ndim} values, got {voxel_size_um!r}")
    spec = _Spectrum(planes, edges, n_radii)
    d0 = spec.curve(None)
    pk0 = _peak(d0)
    r0, a0 = (float(spec.radii[pk0[0]]), pk0[1]) if pk0 else (0.0, 0.0)
    # high-pass = image minus its Gaussian blur of σ_g pixels, i.e. 1 − exp(−r² / 2s²) with
    # s = 1 / (π σ_g); σ_g runs geometrically from 2 / r0 (the d0 peak) down to 0.15 pixel
    blur_max = 2.0 / r0 if r0 > 0 else max(planes.shape[1:]) / 2.0
    sigmas = 1.0 / (np.pi * np.geomspace(blur_max, MIN_BLUR_PX, n_filters))
    kc1, amp1 = _sweep(spec, sigmas)
    kc2, amp2 = _sweep(spec, _refined_sigmas(sigmas, kc1, amp1))
    kcs = np.concatenate([kc1, kc2, [r0 if a0 >= MIN_PEAK_HEIGHT else 0.0]])
    kc = float(kcs.max()) if kcs.max() > 0 else float("nan")
    ax0, ax1 = axes
    nan = float("nan")
    res = (2.0 * v[ax0] / kc, 2.0 * v[ax1] / kc) if kc == kc else (nan, nan)
    return DecorrelationResult(kc, a0, res, spec.radii, d0, plane)
