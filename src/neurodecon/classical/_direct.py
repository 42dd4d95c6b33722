"""Closed-form inverse filters on the shared operator: NIF, Wiener, Tikhonov and RIF.

Each computes ``X̂ = F(ω) Ŷ`` on the operator's grid from the background-subtracted data ``y``
(defined on the whole grid: direct filters have no notion of unobserved voxels, so the engine
mirrors the data into the padding for the ``unknown`` boundary, see ``docs/classical.md``).

``F`` is always ``conj(H) / (|H|² + R(ω))``:

========  ==========================================  ============================
method    ``R(ω)``                                    ``regularization``
========  ==========================================  ============================
nif       ``max(ε² − |H|², 0)`` (truncated division)  ``ε``, the smallest ``|H|``
tikhonov  ``λ``                                       ``λ``
rif       ``λ |L̂(ω)|²`` (Laplacian)                  ``λ``
wiener    ``λ S_n / S_y(ω)``                          ``λ`` (1 = the plain Wiener)
========  ==========================================  ============================

For Wiener, ``S_n`` is the white-noise power, estimated from the frequencies the PSF does not
transmit (:func:`noise_power`), and ``S_y = max(S̄_y, S_n)`` the data power spectrum averaged over
neighbouring frequencies (:func:`smoothed_power`): where the data hold only noise the filter
becomes ``conj(H)/(|H|² + λ)``, where they hold signal it tends to ``1/H``; the gain is bounded by
``½ √(S_y / (λ S_n))``.
For Tikhonov and RIF, ``regularization=None`` estimates ``λ = S_n / ⟨|Ŷ|²⟩`` (noise over data
power; a tenth of it for RIF, whose ``|L̂|²`` is larger).
"""

from __future__ import annotations

import torch

from ._iterative import laplacian_power
from ._operator import FFTOperator

__all__ = ["DIRECT_METHODS", "direct_filter", "noise_power", "smoothed_power", "noise_to_signal"]

DIRECT_METHODS = ("nif", "wiener", "tikhonov", "rif")

#: Frequencies where ``|H| < NOISE_OTF_LEVEL`` carry (almost) only noise.
NOISE_OTF_LEVEL = 1e-3


def noise_power(spectrum: torch.Tensor, otf: torch.Tensor) -> float:
    """White-noise power ``S_n`` per rfft coefficient, from the frequencies the PSF blocks.

    Uses the coefficients with ``|H| < 1e-3`` (or, when there are fewer than 1 % of them, the 1 %
    with the smallest ``|H|``). The periodogram of white noise is exponentially distributed, so
    ``S_n = median(|Ŷ|²) / ln 2`` is robust to a little leaked signal. With the unnormalised FFT,
    white noise of variance ``σ²`` on ``N`` voxels has ``S_n = N σ²``.
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
    """``|Ŷ|²`` averaged over the 3×…×3 neighbourhood of each frequency (periodogram variance ÷ ~27).

    ``spectrum`` is an ``rfftn`` over ``dims``: the full axes are periodic in frequency (wrap),
    but the last, half-spectrum axis is not — wrapping it would put the DC power next to the
    Nyquist frequency and make Wiener amplify noise there (stripes), so its ends are replicated.
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


def noise_to_signal(y: torch.Tensor, op: FFTOperator) -> float:
    """Default λ of Tikhonov/RIF: white-noise power over the mean data power (``σ² / ⟨y²⟩``)."""
    spec = torch.fft.rfftn(y, dim=op.dims)
    sn = noise_power(spec, op.otf)
    total = float(torch.mean(y.double() ** 2)) * y.numel()
    return sn / total if total > 0 else 1.0


def direct_filter(
    op: FFTOperator, y: torch.Tensor, method: str, reg: float | None, out: torch.Tensor
) -> torch.Tensor:
    """Apply the closed-form filter of ``method`` to ``y`` (padded grid) into ``out``.

    ``reg=None`` for tikhonov/rif means "σ²/⟨y²⟩ estimated from the data".
    """
    if reg is None:
        reg = noise_to_signal(y, op) * (1.0 if method == "tikhonov" else 0.1)
    spec = op.spec
    torch.fft.rfftn(y, dim=op.dims, out=spec)
    h2 = op.otf.abs().square_()
    if method == "nif":
        denom = torch.clamp(h2, min=reg * reg)
    elif method == "tikhonov":
        denom = h2.add_(reg)
    elif method == "rif":
        denom = h2.add_(laplacian_power(op), alpha=reg)
    elif method == "wiener":
        # |H|² + λ S_n / S̄_y: the data power spectrum, smoothed, never below the noise
        sn = noise_power(spec, op.otf)
        sy = smoothed_power(spec, op.dims).clamp_(min=sn)
        denom = h2.add_(torch.reciprocal_(sy).mul_(reg * sn))
    else:  # pragma: no cover - guarded by the engine
        raise ValueError(method)
    spec.mul_(op.otf.conj()).div_(denom.clamp_(min=1e-30))
    return torch.fft.irfftn(spec, s=op.shape, dim=op.dims, out=out)
