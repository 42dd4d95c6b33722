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
transmit (:func:`~neurodecon.classical.spectra.noise_power`), and ``S_y = max(S̄_y, S_n)`` the
data power spectrum averaged over neighbouring frequencies
(:func:`~neurodecon.classical.spectra.smoothed_power`): where the data hold only noise the filter
becomes ``conj(H)/(|H|² + λ)``, where they hold signal it tends to ``1/H``; the gain is bounded by
``½ √(S_y / (λ S_n))``.
For Tikhonov and RIF, ``regularization=None`` estimates ``λ = S_n / ⟨|Ŷ|²⟩`` (noise over data
power; a tenth of it for RIF, whose ``|L̂|²`` is larger).
"""

from __future__ import annotations

import torch

from ._iterative import laplacian_power
from ._operator import FFTOperator
from .spectra import noise_power, smoothed_power

__all__ = ["direct_filter", "estimated_regularization", "noise_to_signal"]


def noise_to_signal(y: torch.Tensor, op: FFTOperator) -> float:
    """Return white-noise power over the mean data power (``σ² / ⟨y²⟩``)."""
    spec = torch.fft.rfftn(y, dim=op.dims)
    sn = noise_power(spec, op.otf)
    total = float(torch.mean(y.double() ** 2)) * y.numel()
    return sn / total if total > 0 else 1.0


def estimated_regularization(op: FFTOperator, y: torch.Tensor, method: str) -> float:
    """Return the default λ of ``tikhonov`` (``σ²/⟨y²⟩``) or ``rif`` (a tenth of it)."""
    return noise_to_signal(y, op) * (1.0 if method == "tikhonov" else 0.1)


def direct_filter(
    op: FFTOperator, y: torch.Tensor, method: str, reg: float | None, out: torch.Tensor
) -> torch.Tensor:
    """Apply the closed-form filter of ``method`` to ``y`` (padded grid) into ``out``.

    ``reg=None`` for tikhonov/rif means "σ²/⟨y²⟩ estimated from the data"
    (:func:`estimated_regularization`).
    """
    if reg is None:
        reg = estimated_regularization(op, y, method)
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
        sy = smoothed_power(spec, op.dims)
        # noise-free data (a constant, a lone spike) have S_n = 0: floor it at float32 precision
        # of the data power, or λ S_n / S_y is 0/0 where the data have no power either
        sn = max(noise_power(spec, op.otf), 1e-7 * float(sy.mean()), 1e-30)
        sy.clamp_(min=sn)
        denom = h2.add_(torch.reciprocal_(sy).mul_(reg * sn))
    else:  # pragma: no cover - guarded by the engine
        raise ValueError(method)
    spec.mul_(op.otf.conj()).div_(denom.clamp_(min=1e-30))
    return torch.fft.irfftn(spec, s=op.shape, dim=op.dims, out=out)
