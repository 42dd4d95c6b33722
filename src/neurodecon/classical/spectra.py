"""Spectral estimates of the Wiener filter: the white-noise power and the smoothed data power.

Both work on an ``rfftn`` spectrum (torch, any device) and are used by the closed-form filters
(``wiener``; ``tikhonov`` and ``rif`` for their default λ), see ``docs/classical.md``. Public for
diagnostics and tests; :func:`neurodecon.classical.deconvolve` calls them itself.
"""

from __future__ import annotations

import torch

__all__ = ["NOISE_OTF_LEVEL", "noise_power", "smoothed_power"]

#: Frequencies where ``|H| < NOISE_OTF_LEVEL`` carry (almost) only noise.
NOISE_OTF_LEVEL = 1e-3


def noise_power(spectrum: torch.Tensor, otf: torch.Tensor) -> float:
    """Estimate the white-noise power ``S_n`` per rfft coefficient from what the PSF blocks.

    Uses the coefficients with ``|H| < 1e-3`` (or, when there are fewer than 1 % of them, the 1 %
    with the smallest ``|H|``). The periodogram of white noise is exponentially distributed, so
    ``S_n = median(|Ŷ|²) / ln 2`` is robust to a little leaked signal. With the unnormalised FFT,
    white noise of variance ``σ²`` on ``N`` voxels has ``S_n = N σ²``.

    Parameters
    ----------
    spectrum : (..., n) complex torch.Tensor
        ``rfftn`` of the data.
    otf : (..., n) complex torch.Tensor
        The OTF on the same frequency grid.

    Returns
    -------
    float
        The noise power per coefficient.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> noise = torch.randn(16, 32, 32, generator=g) * 2.0  # σ = 2 on N = 16384 voxels
    >>> spec = torch.fft.rfftn(noise)
    >>> otf = torch.zeros_like(spec)  # a PSF that passes nothing: every coefficient is noise
    >>> round(noise_power(spec, otf) / (noise.numel() * 4.0), 1)
    1.0
    """
    mag = otf.abs().reshape(-1)
    power = spectrum.abs().square_().reshape(-1)
    mask = mag < NOISE_OTF_LEVEL
    count = int(mask.sum())
    if count < 0.01 * mag.numel():
        k = max(1, int(0.01 * mag.numel()))
        idx = torch.topk(mag, k, largest=False).indices
        sample = power[idx]
    else:
        sample = power[mask]
    return float(torch.median(sample)) / float(torch.log(torch.tensor(2.0)))


def smoothed_power(spectrum: torch.Tensor, dims: tuple[int, ...] = (-3, -2, -1)) -> torch.Tensor:
    """Average ``|Ŷ|²`` over the 3×…×3 neighbourhood of each frequency (variance ÷ ~27).

    ``spectrum`` is an ``rfftn`` over ``dims``: the full axes are periodic in frequency (wrap),
    but the last, half-spectrum axis is not — wrapping it would put the DC power next to the
    Nyquist frequency and make Wiener amplify noise there (stripes), so its ends are replicated.

    Parameters
    ----------
    spectrum : complex torch.Tensor
        ``rfftn`` of the data over ``dims`` (the last of them is the half-spectrum axis).
    dims : tuple of int
        The transformed axes.

    Returns
    -------
    torch.Tensor
        Real, same shape as ``spectrum``.
    """
    power = spectrum.abs().square_()
    *full, half = dims
    for axis in full:
        power = (torch.roll(power, 1, axis) + power + torch.roll(power, -1, axis)) / 3.0
    if power.shape[half] > 1:
        lo = torch.cat(
            [power.narrow(half, 0, 1), power.narrow(half, 0, power.shape[half] - 1)], dim=half
        )
        hi = torch.cat(
            [power.narrow(half, 1, power.shape[half] - 1), power.narrow(half, -1, 1)], dim=half
        )
        power = (lo + power + hi) / 3.0
    return power
