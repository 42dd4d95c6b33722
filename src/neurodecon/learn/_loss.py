"""Training losses: MAE + α · mean Frobenius norm of the prediction's Hessian (paper §4.2.4).

Optionally MSE, an SSIM term, and a Fourier-amplitude term (DeBCR-style); ``training_loss``
picks the configured one, RLN's and DeBCR's included.
"""

from __future__ import annotations

from typing import Any

import torch

from ._arch_debcr import debcr_loss
from ._arch_rln import rln_loss

__all__ = ["hessian_frobenius", "neurodecon_loss", "fourier_loss", "ssim3d", "training_loss"]


def _d2(u: torch.Tensor, a: int) -> torch.Tensor:
    """Central second difference along spatial axis ``a`` (0=z, 1=y, 2=x), valid part only."""
    dim = u.ndim - 3 + a
    n = u.shape[dim]
    return u.narrow(dim, 2, n - 2) - 2 * u.narrow(dim, 1, n - 2) + u.narrow(dim, 0, n - 2)


def _dd(u: torch.Tensor, a: int, b: int) -> torch.Tensor:
    """Central mixed difference ∂²/∂a∂b (step 2 differences divided by 4), valid part only."""
    da, db = u.ndim - 3 + a, u.ndim - 3 + b

    def shift(t: torch.Tensor, dim: int, k: int) -> torch.Tensor:
        return t.narrow(dim, 1 + k, t.shape[dim] - 2)

    return (
        shift(shift(u, da, 1), db, 1)
        - shift(shift(u, da, 1), db, -1)
        - shift(shift(u, da, -1), db, 1)
        + shift(shift(u, da, -1), db, -1)
    ) / 4


def _interior(t: torch.Tensor, axes_done: tuple[int, ...]) -> torch.Tensor:
    """Crop the axes not yet reduced by a difference so all Hessian terms share one grid."""
    for a in range(3):
        if a not in axes_done:
            dim = t.ndim - 3 + a
            t = t.narrow(dim, 1, t.shape[dim] - 2)
    return t


def hessian_frobenius(u: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-voxel Frobenius norm of the 3×3 Hessian of ``u`` (``(..., Z, Y, X)``), in voxel units.

    Returns a tensor of shape ``(..., Z-2, Y-2, X-2)`` (interior voxels). Off-diagonal terms
    count twice, as in the symmetric matrix.
    """
    total = _interior(_d2(u, 0), (0,)) ** 2  # the same sums as 0.0 + t0 + t1 + ..., in order
    for a in (1, 2):
        total = total + _interior(_d2(u, a), (a,)) ** 2
    for a, b in ((0, 1), (0, 2), (1, 2)):
        total = total + 2 * _interior(_dd(u, a, b), (a, b)) ** 2
    return torch.sqrt(total + eps)


def fourier_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the log-amplitude spectra (DeBCR-style frequency term)."""
    fp = torch.fft.rfftn(pred.float(), dim=(-3, -2, -1)).abs()
    ft = torch.fft.rfftn(target.float(), dim=(-3, -2, -1)).abs()
    return (torch.log1p(fp) - torch.log1p(ft)).abs().mean()


def ssim3d(pred: torch.Tensor, target: torch.Tensor, win: int = 7) -> torch.Tensor:
    """Return the mean SSIM of ``(B, 1, Z, Y, X)`` volumes, differentiable.

    A uniform ``win³`` window (valid part) and each target's own range as the data range:
    scikit-image's defaults.
    """
    import torch.nn.functional as F

    p, t = pred.float(), target.float()
    rng = (
        t.amax(dim=(1, 2, 3, 4), keepdim=True) - t.amin(dim=(1, 2, 3, 4), keepdim=True)
    ).clamp_min(1e-6)
    c1, c2 = (0.01 * rng) ** 2, (0.03 * rng) ** 2
    w = min(win, *p.shape[-3:])

    def mean(u):
        return F.avg_pool3d(u, w, stride=1)

    mp, mt = mean(p), mean(t)
    n = w**3
    cov = n / max(n - 1, 1)  # sample (co)variances, as scikit-image
    vp = (mean(p * p) - mp * mp) * cov
    vt = (mean(t * t) - mt * mt) * cov
    vpt = (mean(p * t) - mp * mt) * cov
    s = ((2 * mp * mt + c1) * (2 * vpt + c2)) / ((mp**2 + mt**2 + c1) * (vp + vt + c2))
    return s.mean()


def neurodecon_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha: float = 0.0,
    kind: str = "mae",
    fourier_weight: float = 0.0,
    ssim_weight: float = 0.0,
) -> torch.Tensor:
    """Return ``MAE(pred, target) + α · mean ‖H(pred)‖_F`` and the optional terms.

    ``kind="mse"`` uses the squared error; ``ssim_weight · (1 − SSIM)`` and
    ``fourier_weight ·`` :func:`fourier_loss` are added when their weights are set.
    """
    pred = pred.float()
    target = target.float()
    diff = pred - target
    loss = diff.abs().mean() if kind == "mae" else (diff**2).mean()
    if alpha:
        loss = loss + alpha * hessian_frobenius(pred).mean()
    if fourier_weight:
        loss = loss + fourier_weight * fourier_loss(pred, target)
    if ssim_weight:
        loss = loss + ssim_weight * (1.0 - ssim3d(pred, target))
    return loss


def training_loss(
    lc: Any,
    pred: torch.Tensor,
    target: torch.Tensor,
    inp: torch.Tensor,
    extras: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Return the loss ``lc`` (a ``LossConfig``) asks for.

    ``mae``/``mse``: :func:`neurodecon_loss` with the Hessian, Fourier and SSIM weights;
    ``rln``: :func:`~neurodecon.learn.rln_loss` (``extras["intermediate"]`` from
    ``RLN.forward_train``); ``debcr``: :func:`~neurodecon.learn.debcr_loss` over the network's
    scales (``extras`` from ``DeBCR.forward_train``, the full scale alone without). The optional
    terms of ``lc`` are added to the papers' losses when their weights are set.
    """
    kind = lc.kind.value
    if kind in ("mae", "mse"):
        return neurodecon_loss(
            pred,
            target,
            alpha=lc.hessian_alpha,
            kind=kind,
            fourier_weight=lc.fourier_weight,
            ssim_weight=lc.ssim_weight,
        )
    if kind == "rln":
        loss = rln_loss(pred, target, inp, (extras or {})["intermediate"])
    else:
        loss = debcr_loss(pred, target, extras)
    pred = pred.float()
    if lc.hessian_alpha:
        loss = loss + lc.hessian_alpha * hessian_frobenius(pred).mean()
    if lc.fourier_weight:
        loss = loss + lc.fourier_weight * fourier_loss(pred, target.float())
    if lc.ssim_weight:
        loss = loss + lc.ssim_weight * (1.0 - ssim3d(pred, target.float()))
    return loss
