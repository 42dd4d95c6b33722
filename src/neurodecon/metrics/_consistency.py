"""Data consistency: does a deconvolution reproduce the raw data it came from? (no truth needed).

A correct estimate ``x̂``, blurred again by the PSF and with the background added, reproduces the
raw stack within its noise: ``raw ≈ a · (h ⊛ x̂) + b``. :func:`consistency` fits the gain ``a`` and
the background ``b`` (least squares on the interior), divides the residual ``raw − μ`` by the
noise's standard deviation at ``μ`` (the camera's photon-transfer line, ``var = σ₀² + g · μ``,
measured on the raw stack unless given) and reports

* ``score``: the mean squared normalised residual (a reduced χ²); 1 when the residual is pure
  noise. Well below 1: the estimate follows the noise (over-fitting, many iterations); well above:
  it misses or adds light.
* ``map``: the normalised residual band-passed at the PSF's scale (a Gaussian with the σ of the
  PSF's core, its FWHM / 2.355, minus one 4 × wider: slow misfits such as light from beyond the
  stack are not structure) and divided by the standard deviation that filter leaves of white
  noise, so that it is N(0, 1) where the estimate is consistent. Structure a method invented
  shows as negative values (the estimate has light the data lack), structure it removed as
  positive ones.
* ``flagged_fraction``: the share of the interior where ``|map| > threshold`` (4 by default: 6e-5
  of pure white noise; the smoothing correlates neighbours, so isolated false flags come in small
  clumps), split into ``invented_fraction`` and ``missing_fraction``.

The interior excludes a margin along each axis — the half-width that holds 95 % of the PSF's
light along it, at most a quarter of the axis: light from outside the stack, which no estimate
inside it can reproduce, leaves a residual there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Consistency", "consistency", "DEFAULT_THRESHOLD", "FLAGGED_LIMIT"]

#: ``|map|`` above this (in standard deviations of the smoothed noise) counts as structured.
DEFAULT_THRESHOLD = 4.0
#: A result with more of its interior flagged than this is not consistent with its raw data
#: (and ``deconvolve --check`` warns). Calibrated on phantoms (BENCHMARKS.md, "Can I trust this
#: result?"): the shipped model on its own microscope's samples flags 0.4–2.6 % (30 samples),
#: on data it misreads 20–49 %; RL run to convergence ≤ 0.1 %, ten iterations 11 %.
FLAGGED_LIMIT = 0.05
#: The map is band-passed: the PSF's scale minus this many times it (slow misfits removed).
BROAD = 4.0


@dataclass
class Consistency:
    """Result of :func:`consistency` (``to_dict()`` gives everything but the map)."""

    score: float
    expected: float
    flagged_fraction: float
    invented_fraction: float
    missing_fraction: float
    threshold: float
    map: np.ndarray = field(repr=False)
    gain: float  # a: re-blurred estimate → raw counts
    background: float  # b: counts
    noise: dict[str, Any]
    smoothing_sigma_vox: tuple[float, float, float]
    interior: tuple[tuple[int, int], ...]

    @property
    def consistent(self) -> bool:
        """Tell whether no more than :data:`FLAGGED_LIMIT` (5 %) of the interior is flagged."""
        return self.flagged_fraction <= FLAGGED_LIMIT

    def to_dict(self) -> dict[str, Any]:
        """Return the scores and the fit as plain JSON-ready values."""
        return {
            "score": round(self.score, 4),
            "expected": self.expected,
            "flagged_fraction": round(self.flagged_fraction, 6),
            "invented_fraction": round(self.invented_fraction, 6),
            "missing_fraction": round(self.missing_fraction, 6),
            "consistent": self.consistent,
            "threshold": self.threshold,
            "gain": self.gain,
            "background": self.background,
            "noise": self.noise,
            "smoothing_sigma_vox": list(self.smoothing_sigma_vox),
            "interior": [list(p) for p in self.interior],
        }


def consistency(
    raw: Any,
    result: Any,
    psf: Any,
    *,
    background: float | str = "fit",
    noise_gain: float | None = None,
    noise_variance: float | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> Consistency:
    """Check a deconvolution against the raw stack it came from (see the module docstring).

    Parameters
    ----------
    raw : (Z, Y, X) array_like
        The recorded stack, in camera counts as recorded (offset included).
    result : (Z, Y, X) array_like
        The deconvolved stack, same shape; any intensity scale (the gain is fitted).
    psf : (Z, Y, X) array_like
        The PSF the result should be consistent with (for a learned model: the kernel it was
        trained to invert, ``physics_psf.npy`` or ``kernel_psf.npy`` in its folder), centred.
    background : "fit" or float
        The additive level of the raw data in counts (offset + background light); fitted by
        default together with the gain.
    noise_gain, noise_variance : float, optional
        The noise model ``var = noise_variance + noise_gain · μ`` (counts², ``μ`` in counts, the
        photon-transfer line's intercept and slope). Default: measured on ``raw``
        (:func:`~neurodecon.metrics.photon_transfer`); where no slope can be measured, the white
        noise level of the raw stack (constant variance), said in ``noise["source"]``.
    threshold : float
        ``|map|`` above it is flagged (standard deviations of the smoothed noise).

    Returns
    -------
    Consistency

    Examples
    --------
    >>> import numpy as np
    >>> from neurodecon.synth import convolve, forward_model
    >>> z, y, x = np.mgrid[-3:4, -3:4, -3:4]
    >>> psf = np.exp(-(z**2 / 4.0 + (y**2 + x**2) / 2.0)).astype(np.float32)
    >>> truth = np.zeros((24, 48, 48), np.float32); truth[8:16, 16:32, 16:32] = 1.0
    >>> raw = forward_model(truth, psf, photons=200, background=10, seed=1)
    >>> c = consistency(raw, truth, psf)
    >>> 0.9 < c.score < 1.1, c.flagged_fraction < 0.01
    (True, True)
    """
    from ..errors import user_error

    raw_a = np.asarray(raw, dtype=np.float32)
    est = np.asarray(result, dtype=np.float32)
    kernel = np.clip(np.asarray(psf, dtype=np.float64), 0, None)
    if raw_a.ndim != 3 or est.shape != raw_a.shape:
        raise user_error(
            f"the result's shape {est.shape} differs from the raw stack's {raw_a.shape}",
            fix="check the result against the raw 3D stack it was computed from",
        )
    if kernel.ndim != 3 or not kernel.sum() > 0:
        raise user_error("the PSF is not a 3D kernel with positive values", fix="check the PSF")
    if not (np.isfinite(raw_a).all() and np.isfinite(est).all()):
        raise user_error("the raw stack or the result has NaN/Inf values", fix="check the inputs")
    kernel = (kernel / kernel.sum()).astype(np.float32)
    sigma = _core_sigma(kernel)
    inner = _interior(raw_a.shape, kernel, sigma)
    blurred = _convolve(est, kernel)
    a, b = _fit_gain(blurred[inner], raw_a[inner], background)
    mu = a * blurred + b
    var, noise = _noise_model(raw_a, mu, noise_gain, noise_variance)
    r = (raw_a - mu) / np.sqrt(var)
    r_in = np.zeros_like(r)  # outside the interior: the noise's expectation, 0 (not its misfit)
    r_in[inner] = r[inner]
    smoothed, norm = _smooth(r_in, sigma)
    z = (smoothed / norm).astype(np.float32)
    zi = z[inner]
    invented = float(np.mean(zi < -threshold))
    missing = float(np.mean(zi > threshold))
    out = np.zeros_like(z)
    out[inner] = zi
    return Consistency(
        score=float(np.mean(r[inner].astype(np.float64) ** 2)),
        expected=1.0,
        flagged_fraction=invented + missing,
        invented_fraction=invented,
        missing_fraction=missing,
        threshold=float(threshold),
        map=out,
        gain=float(a),
        background=float(b),
        noise=noise,
        smoothing_sigma_vox=tuple(round(float(s), 3) for s in sigma),  # type: ignore[arg-type]
        interior=tuple((s.start, s.stop) for s in inner),
    )


def _convolve(volume: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``volume ⊛ kernel`` (centre at ``n // 2``, zero outside the stack), float32."""
    from scipy.signal import fftconvolve

    pad = [(0, 1 - n % 2) for n in kernel.shape]  # even sizes: centre n // 2 of an odd box
    k = np.pad(kernel, pad) if any(p[1] for p in pad) else kernel
    return fftconvolve(volume, k, mode="same").astype(np.float32)


def _core_sigma(kernel: np.ndarray) -> np.ndarray:
    """Per-axis σ (voxels, ≥ 0.5) of the PSF's core: its FWHM through the peak / 2.355.

    The core, not the second moment: a widefield PSF's moments are set by its far cone, which
    would smooth the map far beyond the size of anything the check should see.
    """
    peak = np.unravel_index(int(np.argmax(kernel)), kernel.shape)
    top = float(kernel[peak])
    out = []
    for axis in range(3):
        idx = list(peak)
        idx[axis] = slice(None)  # type: ignore[call-overload]
        line = kernel[tuple(idx)].astype(np.float64) / top
        c = int(peak[axis])
        width = 0.0
        for step in (-1, 1):
            i = c
            while 0 <= i + step < len(line) and line[i + step] >= 0.5:
                i += step
            j = i + step
            if 0 <= j < len(line):  # interpolate the half-maximum crossing
                width += abs(i - c) + (line[i] - 0.5) / max(line[i] - line[j], 1e-12)
            else:
                width += abs(i - c) + 0.5
        out.append(max(width / (2 * math.sqrt(2 * math.log(2))), 0.5))
    return np.asarray(out)


def _interior(shape: Sequence[int], kernel: np.ndarray, sigma: np.ndarray) -> tuple[slice, ...]:
    """Return the stack without a margin per axis that light from beyond it reaches.

    The margin is the half-width holding 95 % of the PSF's light along that axis (at least 3 σ of
    its core), at most a quarter of the axis.
    """
    out = []
    for axis, (n, s) in enumerate(zip(shape, sigma, strict=True)):
        prof = kernel.sum(axis=tuple(a for a in range(3) if a != axis)).astype(np.float64)
        c = int(np.argmax(prof))
        total = float(prof.sum())
        w = 0
        while w < len(prof) and prof[max(c - w, 0) : c + w + 1].sum() < 0.95 * total:
            w += 1
        m = min(max(w, int(math.ceil(3 * s))), n // 4)
        out.append(slice(m, n - m))
    return tuple(out)


def _fit_gain(blurred: np.ndarray, raw: np.ndarray, background: float | str) -> tuple[float, float]:
    """Least-squares ``raw ≈ a · blurred + b`` (``b`` fixed when given), ``a ≥ 0``."""
    x = blurred.astype(np.float64).ravel()
    y = raw.astype(np.float64).ravel()
    if background != "fit":
        b = float(background)
        a = float((x * (y - b)).sum() / max(float((x * x).sum()), 1e-30))
        return max(a, 0.0), b
    xm, ym = x.mean(), y.mean()
    vx = float(((x - xm) ** 2).sum())
    a = float(((x - xm) * (y - ym)).sum() / vx) if vx > 0 else 0.0
    a = max(a, 0.0)
    return a, float(ym - a * xm)


def _noise_model(
    raw: np.ndarray, mu: np.ndarray, gain: float | None, variance: float | None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Return the noise variance at ``mu`` (counts²) and how it was obtained."""
    from ._noise import highpass_residual, photon_transfer

    if gain is not None or variance is not None:
        g, v0 = float(gain or 0.0), float(variance or 0.0)
        source = "given"
    else:
        ptc = photon_transfer(raw)
        g, v0, source = ptc.gain, ptc.intercept, "photon transfer of the raw stack"
        if not (math.isfinite(g) and g > 0):
            res, factor = highpass_residual(raw)
            v0 = float(1.4826 * np.median(np.abs(res - np.median(res)))) ** 2 / factor
            g, source = 0.0, "white noise level of the raw stack (no photon-transfer slope)"
    var = v0 + g * mu
    floor = max(1e-6, 0.01 * float(np.median(var)))  # never divide by ~0 (dark, read-noise-free)
    return np.maximum(var, floor).astype(np.float32), {
        "gain": float(g),
        "variance_at_zero": float(v0),
        "source": source,
    }


def _smooth(r: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, float]:
    """Band-pass at the PSF's scale; also the standard deviation it leaves of white noise.

    A Gaussian at the PSF's σ minus one ``BROAD`` times wider: structure of the PSF's size stays,
    a slowly varying misfit goes (light from beyond the stack that no estimate inside it can
    reproduce, a background that is not flat). Without it a mean residual of a tenth of the noise
    — nothing per voxel — would be flagged everywhere after averaging over a PSF's volume.
    """
    from scipy import ndimage as ndi

    fine = tuple(float(s) for s in sigma)
    broad = tuple(BROAD * s for s in fine)
    band = ndi.gaussian_filter(r, fine, mode="constant") - ndi.gaussian_filter(
        r, broad, mode="constant"
    )
    half = [int(math.ceil(4 * s)) for s in broad]
    delta = np.zeros([2 * h + 1 for h in half], np.float64)
    delta[tuple(half)] = 1.0
    k = ndi.gaussian_filter(delta, fine, mode="constant") - ndi.gaussian_filter(
        delta, broad, mode="constant"
    )
    return band, float(np.sqrt((k**2).sum()))
