"""Image formation: linear convolution with exact centring, and a camera noise model."""

from __future__ import annotations

import numpy as np

from ..errors import user_error

__all__ = ["convolve", "forward_model"]


def _fast_len(n: int) -> int:
    from scipy import fft

    return int(fft.next_fast_len(int(n), real=True))


def _trim_zeros(ker: np.ndarray) -> np.ndarray:
    """Drop all-zero borders symmetrically about the centre ``n // 2`` (the result is unchanged)."""
    nz = np.argwhere(ker != 0)
    if nz.size == 0:
        return ker
    centre = np.array([n // 2 for n in ker.shape])
    half = np.maximum(centre - nz.min(axis=0), nz.max(axis=0) - centre)
    sl = tuple(
        slice(max(c - h, 0), min(c + h + 1, n))
        for c, h, n in zip(centre, half, ker.shape, strict=True)
    )
    return ker[sl]  # centre of the slice is again at its n // 2 (or the original array)


def _wrap_kernel(ker: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Return the kernel folded onto a periodic grid of ``shape``, its centre at index 0."""
    idx = [(np.arange(k) - k // 2) % n for k, n in zip(ker.shape, shape, strict=True)]
    out = np.zeros(shape, dtype=np.float32)
    np.add.at(out, np.ix_(*idx), ker)
    return out


def convolve(volume: np.ndarray, psf: np.ndarray, *, boundary: str = "zero") -> np.ndarray:
    """Convolve ``volume`` with ``psf``; the result has the shape of ``volume``, in float32.

    The PSF's centre is index ``n // 2`` on every axis, also for even sizes: a delta in the
    volume stays where it is. The PSF is used as given (normalise it to sum 1 to keep the flux).

    Parameters
    ----------
    volume, psf : ndarray
        Same number of dimensions; the PSF may be larger than the volume.
    boundary : {"zero", "periodic"}
        ``"zero"`` (default): linear convolution, the volume is zero outside (FFT on a grid of at
        least ``volume + psf − 1`` voxels per axis, cropped from the PSF centre).
        ``"periodic"``: circular convolution, the volume wraps around (the FFT convention of
        many published simulations).

    Returns
    -------
    ndarray
        float32, shape of ``volume``.

    Examples
    --------
    >>> import numpy as np
    >>> from neurodecon.synth import convolve
    >>> vol = np.zeros((5, 5, 5), np.float32)
    >>> vol[2, 2, 2] = 1.0
    >>> psf = np.zeros((3, 3, 3), np.float32)
    >>> psf[1, 1, 1], psf[1, 1, 2] = 0.75, 0.25
    >>> out = convolve(vol, psf)
    >>> out.shape, np.round(out[2, 2, 2:4], 4).tolist(), round(float(out.sum()), 4)
    ((5, 5, 5), [0.75, 0.25], 1.0)
    """
    from scipy import fft

    vol = np.asarray(volume, dtype=np.float32)
    ker = np.asarray(psf, dtype=np.float32)
    if vol.ndim != ker.ndim:
        raise user_error(
            f"the PSF has {ker.ndim} dimensions but the volume has {vol.ndim}",
            fix="give a PSF with the same axes as the volume",
        )
    if boundary not in ("zero", "periodic"):
        raise user_error(f"unknown boundary {boundary!r}", fix="use 'zero' or 'periodic'")
    if boundary == "periodic":
        spec = fft.rfftn(vol, workers=1)
        spec *= fft.rfftn(_wrap_kernel(ker, vol.shape), workers=1)
        return np.ascontiguousarray(fft.irfftn(spec, vol.shape, workers=1), dtype=np.float32)
    ker = _trim_zeros(ker)
    fshape = [_fast_len(v + k - 1) for v, k in zip(vol.shape, ker.shape, strict=True)]
    spec = fft.rfftn(vol, fshape, workers=1)
    spec *= fft.rfftn(ker, fshape, workers=1)
    out = fft.irfftn(spec, fshape, workers=1)
    crop = tuple(slice(k // 2, k // 2 + v) for v, k in zip(vol.shape, ker.shape, strict=True))
    return np.ascontiguousarray(out[crop], dtype=np.float32)


def forward_model(
    truth: np.ndarray,
    psf: np.ndarray,
    *,
    photons: float | None = 1000.0,
    background: float = 0.0,
    read_noise: float = 0.0,
    offset: float = 0.0,
    gain: float = 1.0,
    seed: int = 0,
    boundary: str = "zero",
) -> np.ndarray:
    """Simulate a camera image of ``truth`` seen through ``psf``.

    ``truth`` is scaled so that its maximum emits ``photons`` expected photons (per voxel, before
    blurring), blurred with the PSF (normalised to sum 1, so the flux is kept), ``background``
    photons per voxel are added, Poisson noise is drawn, the camera turns each photo-electron
    into ``gain`` counts and adds Gaussian read noise of standard deviation ``read_noise``
    photo-electrons (``gain · read_noise`` counts) and its ``offset`` (counts):
    ``counts = gain · (Poisson(expected) + N(0, read_noise²)) + offset``.

    Parameters
    ----------
    truth : (Z, Y, X) ndarray
        Non-negative ground truth.
    psf : (Z, Y, X) ndarray
        PSF centred at ``n // 2``.
    photons : float or None
        Expected photons at the brightest truth voxel. ``None`` keeps the truth's scale and
        draws no Poisson noise (only blur, background, offset and read noise).
    background, read_noise : float
        Background light in photons per voxel; read noise σ in photo-electrons.
    offset : float
        Camera offset in counts.
    gain : float
        Counts per photo-electron (default 1: counts are photo-electrons).
    seed : int
        Seed of the noise; the same arguments give the same image.
    boundary : {"zero", "periodic"}
        Convolution boundary (see :func:`convolve`).

    Returns
    -------
    (Z, Y, X) float32 ndarray
    """
    truth = np.asarray(truth, dtype=np.float32)
    if truth.size == 0 or not np.isfinite(truth).all():
        raise user_error(
            "the ground truth is empty or contains NaN/Inf", fix="check the input volume"
        )
    if truth.min() < 0:
        raise user_error(
            "the ground truth has negative values",
            fix="clip or offset it: photon emission cannot be negative",
        )
    if photons is not None and not photons > 0:
        raise user_error(f"photons {photons} must be positive", fix="e.g. --photons 1000")
    if background < 0 or read_noise < 0:
        raise user_error(
            "background and read noise must be ≥ 0", fix="check --background and --read-noise"
        )
    if not (np.isfinite(gain) and gain > 0):
        raise user_error(f"gain {gain} must be positive", fix="e.g. --gain 2 (counts per e⁻)")
    kernel = np.clip(np.asarray(psf, dtype=np.float64), 0.0, None)
    if not kernel.sum() > 0:
        raise user_error("the PSF has no positive values", fix="check the PSF")
    kernel = (kernel / kernel.sum()).astype(np.float32)
    peak = float(truth.max())
    scaled = truth * np.float32(photons / peak) if (photons is not None and peak > 0) else truth
    expected = np.clip(convolve(scaled, kernel, boundary=boundary), 0.0, None) + np.float32(
        background
    )
    rng = np.random.default_rng(seed)
    image = rng.poisson(expected).astype(np.float32) if photons is not None else expected
    if gain != 1.0:
        image *= np.float32(gain)
    image += np.float32(offset)
    if read_noise > 0:
        image += rng.normal(0.0, read_noise * gain, size=image.shape).astype(np.float32)
    return image
