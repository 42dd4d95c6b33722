"""Noise of an image: high-passes, the background (dark level), the photon transfer and the gain.

The background estimate serves ``background="auto"`` of the deconvolution, the gain the ``auto``
stopping rule (:mod:`neurodecon.classical.stopping` re-exports it) and all of them the camera
calibration (:func:`neurodecon.metrics.calibrate_noise`): one implementation for all three.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = [
    "background_from_maps",
    "background_maps",
    "estimate_background",
    "estimate_gain",
    "highpass_residual",
    "photon_transfer",
    "PhotonTransfer",
]

log = logging.getLogger("neurodecon")


def highpass_residual(img: np.ndarray) -> tuple[np.ndarray, float]:
    """Return ``(residual, variance factor)`` of a face-neighbour high-pass.

    The residual is each voxel minus the mean of its ``2·ndim`` face neighbours (mirrored at the
    borders); the factor ``1 + 1/(2·ndim)`` is how much that residual's variance exceeds white
    noise's variance ``σ²``.
    """
    from scipy.ndimage import convolve

    kernel = np.zeros((3,) * img.ndim, np.float32)
    for axis in range(img.ndim):
        for d in (0, 2):
            idx = [1] * img.ndim
            idx[axis] = d
            kernel[tuple(idx)] = -1.0 / (2 * img.ndim)
    kernel[(1,) * img.ndim] = 1.0
    return convolve(img, kernel, mode="mirror"), 1.0 + 1.0 / (2 * img.ndim)


def estimate_background(image: np.ndarray, *, sigma: float = 2.0, percentile: float = 1.0) -> float:
    """Estimate the background / camera offset: the centre of the smoothed image's dark level.

    Smoothing (Gaussian, ``sigma`` voxels) averages most of the noise away. What is left of it
    still spreads the background's smoothed values by ``σ_s`` (the raw noise σ, measured in the
    darkest voxels with a 6-neighbour high-pass, times the kernel's L2 norm), so a low percentile
    alone sits about ``2.3 σ_s`` *below* the background (measured: 4.74–4.82 for a true 5 counts
    with read noise 1; the shortfall is deconvolved into a haze). The estimate therefore starts at
    the ``percentile``-th percentile plus ``2.326 σ_s`` and is refined with the lower half of the
    background's distribution, which objects cannot contaminate (they only add light):
    ``b ← mean(smoothed | smoothed ≤ b) + √(2/π) σ_s`` (the mean of a Gaussian's lower half is
    ``μ − √(2/π) σ``), a few times. The plain percentile is a lower bound of the result.

    Parameters
    ----------
    image : (Z, Y, X) array_like
        One frame (any number of dimensions; computed in float32).
    sigma : float
        Width of the Gaussian smoothing, in voxels.
    percentile : float
        The dark level's starting percentile of the smoothed image.

    Returns
    -------
    float
        The background, in the image's units (negative on offset-free data with read noise).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> flat = rng.poisson(20.0, (16, 32, 32)).astype(np.float32) + 100.0
    >>> round(estimate_background(flat))
    120
    """
    img = np.asarray(image, dtype=np.float32)
    smooth, noise = background_maps(img, sigma=sigma)
    return background_from_maps(smooth, noise, sigma=sigma, ndim=img.ndim, percentile=percentile)


def background_maps(image: np.ndarray, *, sigma: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Return the two voxel-wise maps :func:`estimate_background` works on.

    ``smooth``: the image smoothed by a Gaussian of ``sigma`` voxels (nearest-value edges; it
    reaches ``4·sigma`` voxels); ``noise``: the face-neighbour high-pass residual scaled to the
    raw noise (its square estimates ``σ²`` per voxel; mirrored edges, one voxel). Both are local,
    so a volume too large for memory can be mapped slab by slab with a halo of ``4·sigma``
    planes and the maps' voxels (or a uniform subsample of them) passed to
    :func:`background_from_maps` — what a blocked run does.
    """
    from scipy.ndimage import gaussian_filter

    img = np.asarray(image, dtype=np.float32)
    smooth = gaussian_filter(img, sigma, mode="nearest")
    resid, factor = highpass_residual(img)
    resid *= np.float32(1.0 / np.sqrt(factor))
    return smooth, resid


def background_from_maps(
    smooth: np.ndarray,
    noise: np.ndarray,
    *,
    sigma: float = 2.0,
    ndim: int = 3,
    percentile: float = 1.0,
) -> float:
    """Return the background from :func:`background_maps`' voxels (or a uniform sample of them).

    ``sigma`` and ``ndim`` are the smoothing's width and the image's dimensions (for the
    smoothed noise ``σ_s``); see :func:`estimate_background` for the rule.
    """
    from scipy.ndimage import gaussian_filter

    smooth = np.asarray(smooth, np.float32).reshape(-1)
    noise = np.asarray(noise, np.float32).reshape(-1)
    low = float(np.percentile(smooth, percentile))
    # noise of the raw data in the darkest tenth
    dark = noise[smooth <= np.percentile(smooth, 10.0)].astype(np.float64)
    sigma_raw = float(np.sqrt(np.mean(dark**2))) if dark.size else 0.0
    delta = np.zeros((int(8 * sigma) + 1,) * ndim, np.float32)
    delta[(delta.shape[0] // 2,) * ndim] = 1.0
    sigma_s = sigma_raw * float(
        np.sqrt(np.sum(gaussian_filter(delta, sigma, mode="constant") ** 2))
    )
    b = low + 2.326 * sigma_s
    for _ in range(20):
        sel = smooth[smooth <= b]
        if sel.size < 100:
            break
        new = float(sel.mean()) + 0.7979 * sigma_s
        if abs(new - b) <= 1e-3 * sigma_s:
            b = new
            break
        b = new
    return max(b, low)


#: Per axis: the second difference ``[1, -2, 1] / √6`` (unit noise gain); its products over the
#: axes pass only the corner of the spectrum, where a band-limited image has almost no signal.
_SECOND_DIFF = np.array([1.0, -2.0, 1.0], np.float32) / np.float32(np.sqrt(6.0))
#: Per axis: ``[1, 4, 1] / 6``, the squared second difference normalised — the weights with which
#: the residual's variance averages the voxels' variances.
_MATCHED_MEAN = np.array([1.0, 4.0, 1.0], np.float32) / np.float32(6.0)


def _separable(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    from scipy.ndimage import correlate1d

    out = img
    for axis in range(img.ndim):
        out = correlate1d(out, kernel, axis=axis, mode="mirror")
    return out


@dataclass(frozen=True)
class PhotonTransfer:
    """The photon-transfer fit ``variance = intercept + gain · mean`` of one image (counts).

    Attributes
    ----------
    gain : float
        The slope: counts per photo-electron (NaN when the image shows no positive slope).
    intercept : float
        The fitted variance at mean 0, in counts².
    gain_se : float
        Standard error of the gain, from the bins' expected scatter.
    means, variances : tuple of float
        Per bin: the local mean and the noise variance, in counts and counts².
    counts : tuple of int
        Voxels per bin.
    used : tuple of bool
        Bins the fit kept (the others stood more than 3 standard errors above, or 4 below, the
        line: structure left in the residual, saturation).
    """

    gain: float
    intercept: float
    gain_se: float
    means: tuple[float, ...]
    variances: tuple[float, ...]
    counts: tuple[int, ...]
    used: tuple[bool, ...]

    def variance_at(self, mean: float) -> float:
        """Return the fitted noise variance (counts²) at a mean level (counts)."""
        return float(self.intercept + self.gain * mean)


def photon_transfer(image: np.ndarray, *, min_bin: int = 50) -> PhotonTransfer:
    """Fit the photon-transfer line ``variance = intercept + gain · mean`` on one image.

    A camera that counts ``g`` per photo-electron on top of an offset ``o`` with read noise
    ``σ`` (counts) has, at every voxel, ``variance = g · (mean − o) + σ²``. Each voxel's noise is
    isolated with the separable high-pass ``Π_axes [1, −2, 1] / √6``: it has unit gain on white
    noise but passes only the corner of the spectrum, which a band-limited (blurred) image barely
    reaches — a Gaussian blob 1.5 voxels wide leaves 0.4 % of its peak in it, against 26 % in a
    6-neighbour high-pass. Its square's expectation is the ``[1, 4, 1] / 6``-weighted mean of the
    neighbours' variances, hence ``g · (m − o) + σ²`` with ``m`` the same weighted mean of the
    image. Voxels are binned by a *ring* mean (the 5³ box without the inner 3³) whose noise is
    independent of both — binning by the noisy mean itself makes the bins' noise select the
    variance and bent the line by −70 % on a bead stack — and a weighted line is fitted through
    the bins' (mean, variance), dropping bins that stand out (structure, saturation).

    Parameters
    ----------
    image : (Z, Y, X) or (Y, X) array_like
        One frame in the camera's units (not background-subtracted, not clipped).
    min_bin : int
        Smallest number of voxels a bin needs.

    Returns
    -------
    PhotonTransfer
        The line and the bins it was fitted on.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> light = np.linspace(5.0, 200.0, 64)[None, None, :] * np.ones((16, 64, 1))
    >>> img = 2.0 * rng.poisson(light) + 100.0 + rng.normal(0, 3.0, light.shape)
    >>> round(photon_transfer(img).gain, 1)
    2.0
    """
    from scipy.ndimage import uniform_filter

    img = np.asarray(image, dtype=np.float32)
    d = img.ndim
    inner = tuple(slice(1, n - 1) for n in img.shape)
    resid2 = _separable(img, _SECOND_DIFF)[inner] ** 2
    mean = _separable(img, _MATCHED_MEAN)[inner]
    ring = uniform_filter(img, 5, mode="mirror") * np.float32(5.0**d)
    ring -= uniform_filter(img, 3, mode="mirror") * np.float32(3.0**d)
    ring = ring[inner] / np.float32(5.0**d - 3.0**d)
    # bins: quantiles of the ring mean, finer in the bright tail where structure is
    q = np.concatenate([np.linspace(0.0, 0.98, 25), 1.0 - np.geomspace(0.02, 2e-5, 15)])
    edges = np.unique(np.quantile(ring, q))
    idx = np.digitize(ring.ravel(), edges)
    k = len(edges) + 1
    n = np.bincount(idx, minlength=k).astype(np.float64)
    ok = n >= min_bin
    means = np.bincount(idx, mean.ravel(), minlength=k)[ok] / n[ok]
    variances = np.bincount(idx, resid2.ravel(), minlength=k)[ok] / n[ok]
    # neighbouring residuals are correlated: Σ_lags ρ² = (35/18)^ndim voxels count as one
    n_eff = n[ok] / (35.0 / 18.0) ** d
    gain, intercept, gain_se, used = _fit_line(means, variances, n_eff)
    return PhotonTransfer(
        gain,
        intercept,
        gain_se,
        tuple(float(v) for v in means),
        tuple(float(v) for v in variances),
        tuple(int(v) for v in n[ok]),
        tuple(bool(u) for u in used),
    )


def _fit_line(
    m: np.ndarray, v: np.ndarray, n_eff: np.ndarray
) -> tuple[float, float, float, np.ndarray]:
    """Weighted line ``v = a + g·m`` (bin-mean variance ``2 v² / n_eff``), rejecting outliers."""
    keep = np.ones(m.size, bool)
    pred = np.maximum(v, 1e-12)
    nan = float("nan")
    for _ in range(30):
        if keep.sum() < 3 or np.ptp(m[keep]) <= 0:
            return nan, nan, nan, keep
        w = n_eff[keep] / (2.0 * np.maximum(pred[keep], 1e-12) ** 2)
        x = np.stack([np.ones(int(keep.sum())), m[keep]], axis=1)
        normal = x.T @ (x * w[:, None])
        a, g = np.linalg.solve(normal, x.T @ (w * v[keep]))
        cov = np.linalg.inv(normal)
        pred = np.maximum(a + g * m, 1e-12)
        se = np.sqrt(2.0 / n_eff) * pred
        new = (v - pred < 3.0 * se) & (pred - v < 4.0 * se)
        if np.array_equal(new, keep):
            break
        keep = new
    if not g > 0:
        return nan, float(a), nan, keep
    return float(g), float(a), float(np.sqrt(cov[1, 1])), keep


def estimate_gain(image: np.ndarray) -> float:
    """Estimate the camera gain (intensity units per photon): the photon-transfer slope.

    See :func:`photon_transfer`. When the image shows no positive slope (no structure, or too
    dim), the ratio of the high-pass noise power to the mean intensity is returned instead.

    Parameters
    ----------
    image : (Z, Y, X) array_like
        One frame.

    Returns
    -------
    float
        The gain ``g``.
    """
    img = np.asarray(image, dtype=np.float32)
    gain = photon_transfer(img).gain
    if np.isfinite(gain) and gain > 0:
        return gain
    resid, scale = highpass_residual(img)
    mean = float(np.mean(np.clip(img, 0, None)))
    return float(np.mean(resid.astype(np.float64) ** 2) / scale / mean) if mean > 0 else 1.0
