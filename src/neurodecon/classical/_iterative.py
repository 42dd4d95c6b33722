"""Iterative methods on the shared :class:`~._operator.FFTOperator`.

Every method works in place on ``x`` (the object estimate on the padded grid) and calls
``hooks.prediction(k, model)`` with the model ``H x_k + b`` on the observed region (before it is
used) and ``hooks.step(k, x)`` after ``k`` iterations; ``step`` returning ``False`` stops early.

Notation: ``y`` observed data, ``b`` background (a scalar, explicit in the model, never in the
result), ``m`` the observed-region mask, ``w = 1/(Hᵀm)`` the Bertero–Boccacci weights (``None``
when the whole grid is observed, where ``Hᵀm = 1``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch

from ..progress import ProgressFn, report
from ._methods import ITERATIVE_METHODS
from ._operator import FFTOperator

__all__ = [
    "Hooks",
    "RunHooks",
    "run_method",
    "richardson_lucy",
    "rl_accelerated",
    "rl_tv",
    "landweber",
    "tikhonov_miller",
    "laplacian_power",
]

#: Floor of the model ``Hx + b`` in a ratio (float32-safe, far below any real intensity).
TINY = 1e-12


class Hooks(Protocol):
    """What an iterative method calls during its run (see the module docstring)."""

    def prediction(self, k: int, model: torch.Tensor) -> None:
        """See the model ``H x_k + b`` on the observed region (read only; do not keep it)."""
        ...

    def step(self, k: int, x: torch.Tensor) -> bool:
        """Follow iteration ``k`` (estimate ``x``); return ``False`` to stop the run."""
        ...


#: Callback signature: ``callback(iteration, estimate)``; returning ``False`` stops early.
Callback = Callable[[int, np.ndarray], "bool | None"]


class RunHooks:
    """Progress and user callback of one run; counts the iterations done."""

    def __init__(
        self,
        op: FFTOperator,
        total: int,
        progress: ProgressFn | None,
        callback: Callback | None,
        message: str,
        scale: float = 1.0,
    ):
        self.op, self.total, self.progress, self.callback = op, total, progress, callback
        self.message, self.scale = message, scale
        self.done = 0

    def prediction(self, k: int, model: torch.Tensor) -> None:
        return None

    def step(self, k: int, x: torch.Tensor) -> bool:
        self.done = k
        report(self.progress, k, self.total, self.message)
        if self.callback is not None:
            estimate = self.op.crop(x).detach().to("cpu", copy=True).numpy() * self.scale
            if self.callback(k, estimate) is False:
                return False
        return True


def run_method(
    method: str,
    op: FFTOperator,
    y: torch.Tensor,
    b: float,
    x: torch.Tensor,
    iterations: int,
    hooks: Hooks,
    lam: float,
    alphas: list[float] | None = None,
) -> None:
    """Run ``iterations`` of the iterative ``method`` on ``x`` in place.

    ``lam``: its weight; ``alphas``: rl-accel's extrapolation factors to replay or record (see
    :func:`rl_accelerated`).
    """
    if method not in ITERATIVE_METHODS:
        raise ValueError(f"{method!r} is not an iterative method")
    if method == "rl":
        richardson_lucy(op, y, b, x, iterations, hooks)
    elif method == "rl-accel":
        rl_accelerated(op, y, b, x, iterations, hooks, alphas)
    elif method == "rltv":
        rl_tv(op, y, b, x, iterations, hooks, lam=lam)
    elif method in ("landweber", "landweber+"):
        landweber(op, y, b, x, iterations, hooks, positive=method.endswith("+"))
    else:  # tm, ictm
        tikhonov_miller(op, y, b, x, iterations, hooks, lam=lam, positive=method == "ictm")


def _rl_correction(
    op: FFTOperator, x: torch.Tensor, y: torch.Tensor, b: float, hooks: Hooks, k: int
) -> torch.Tensor:
    """``op.tmp = w · Hᵀ(m · y / (Hx + b))``, the multiplicative Richardson–Lucy factor."""
    t = op.forward(x, op.tmp)
    v = op.observed(t)
    if b:
        v.add_(b)
    hooks.prediction(k, v)
    if b <= 1e-3:  # with a background Hx + b > 0 already (Hx ≥ −roundoff, far below 1e-3)
        v.clamp_(min=TINY)
    torch.div(y, v, out=v)
    op.zero_unobserved_(t)
    op.adjoint(t, t)
    t.clamp_(min=0.0)  # FFT round-off dust; x must stay ≥ 0 or y / Hx blows up later
    if op.weights is not None:
        t.mul_(op.weights)
    return t


def richardson_lucy(
    op: FFTOperator, y: torch.Tensor, b: float, x: torch.Tensor, iterations: int, hooks: Hooks
) -> torch.Tensor:
    """Richardson–Lucy with Bertero–Boccacci weights: ``x ← x · w · Hᵀ(m y / (Hx + b))``."""
    for k in range(iterations):
        x.mul_(_rl_correction(op, x, y, b, hooks, k))
        if hooks.step(k + 1, x) is False:
            break
    return x


def rl_accelerated(
    op: FFTOperator,
    y: torch.Tensor,
    b: float,
    x: torch.Tensor,
    iterations: int,
    hooks: Hooks,
    alphas: list[float] | None = None,
) -> torch.Tensor:
    """Richardson–Lucy with Biggs–Andrews vector extrapolation (order 1).

    ``v_k = x_k + α_k (x_k − x_{k−1})`` (clipped at 0), ``x_{k+1} = RL(v_k)``,
    ``g_k = x_{k+1} − v_k`` and ``α_{k+1} = <g_k, g_{k−1}> / <g_{k−1}, g_{k−1}>`` clipped to
    ``[0, ALPHA_MAX]``. Buffers: the current and previous estimates and the last step ``g``.
    ``alphas``: factors ``α_1, α_2, …`` to use instead of computing them (``α`` sums over the
    whole grid, so blocks of a volume replay the volume's to extrapolate alike); an empty list
    is filled with the factors computed.
    """
    replay = list(alphas) if alphas else None
    alpha_max = 0.98
    prev = x.clone()  # x_{k-1}
    g = torch.zeros_like(x)  # g_{k-1}
    g_norm = 0.0
    alpha = 0.0
    cur = x
    for k in range(iterations):
        # prev <- v_k = (1 + α) x_k − α x_{k−1}, clipped at 0
        if alpha > 0:
            prev.mul_(-alpha).add_(cur, alpha=1.0 + alpha).clamp_(min=0.0)
        else:
            prev.copy_(cur)
        t = _rl_correction(op, prev, y, b, hooks, k)
        # t <- g_k = v_k (c − 1);  prev <- x_{k+1} = v_k + g_k = v_k c  (≥ 0)
        t.sub_(1.0).mul_(prev)
        prev.add_(t)
        flat = t.view(-1)
        dot = float(torch.dot(flat, g.view(-1))) if g_norm > 0 else 0.0
        alpha = min(max(dot / g_norm, 0.0), alpha_max) if g_norm > 0 else 0.0
        if replay is not None and k < len(replay):
            alpha = replay[k]
        elif alphas is not None and replay is None:
            alphas.append(alpha)
        g_norm = float(torch.dot(flat, flat))
        g, op.tmp = t, g  # keep g_k; the old g buffer becomes the operator's scratch
        cur, prev = prev, cur
        if hooks.step(k + 1, cur) is False:
            break
    if cur is not x:
        x.copy_(cur)
    return x


def _tv_denominator(
    x: torch.Tensor,
    lam: float,
    eps: float,
    out: torch.Tensor,
    norm: torch.Tensor,
    scratch: torch.Tensor,
) -> torch.Tensor:
    """``out = 1 − λ div(∇x / |∇x|)`` with forward differences (zero flux at the grid's end)."""
    norm.fill_(eps * eps)
    for axis in range(x.ndim):
        n = x.shape[axis]
        s = scratch.narrow(axis, 0, n - 1)
        torch.sub(x.narrow(axis, 1, n - 1), x.narrow(axis, 0, n - 1), out=s)
        norm.narrow(axis, 0, n - 1).addcmul_(s, s)
    norm.sqrt_()
    out.zero_()
    for axis in range(x.ndim):
        n = x.shape[axis]
        scratch.zero_()
        s = scratch.narrow(axis, 0, n - 1)
        torch.sub(x.narrow(axis, 1, n - 1), x.narrow(axis, 0, n - 1), out=s)
        scratch.div_(norm)
        # backward difference of the unit gradient: div_i = u_i − u_{i−1}
        out.add_(scratch)
        out.narrow(axis, 1, n - 1).sub_(scratch.narrow(axis, 0, n - 1))
    out.mul_(-lam).add_(1.0)
    return out


def rl_tv(
    op: FFTOperator,
    y: torch.Tensor,
    b: float,
    x: torch.Tensor,
    iterations: int,
    hooks: Hooks,
    lam: float,
) -> torch.Tensor:
    """Richardson–Lucy with total-variation regularisation (Dey et al. 2006).

    ``x ← x · w · Hᵀ(m y / (Hx + b)) / (1 − λ div(∇x/|∇x|))``; the denominator is kept above 0.1
    so that a too large ``λ`` damps the update instead of flipping its sign.
    """
    denom = torch.empty_like(x)
    norm = torch.empty_like(x)
    scratch = torch.view_as_real(op.spec).reshape(-1)[: x.numel()].view(x.shape)
    eps = 1e-3 * float(x.max().clamp(min=1e-12))
    for k in range(iterations):
        _tv_denominator(x, lam, eps, denom, norm, scratch).clamp_(min=0.1)
        t = _rl_correction(op, x, y, b, hooks, k)
        x.mul_(t).div_(denom)
        if hooks.step(k + 1, x) is False:
            break
    return x


def laplacian_power(op: FFTOperator) -> torch.Tensor:
    """``|L̂(ω)|²`` of the discrete Laplacian (6-neighbour in 3D) on the operator's rfft grid."""
    shape = op.shape
    total: torch.Tensor | None = None
    for axis, n in enumerate(shape):
        freqs = (
            torch.fft.rfftfreq(n, device=op.device)
            if axis == len(shape) - 1
            else torch.fft.fftfreq(n, device=op.device)
        )
        term = 2.0 * torch.cos(2 * torch.pi * freqs) - 2.0
        view = [1] * len(shape)
        view[axis] = -1
        term = term.view(view)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("the operator has no axes")
    return (total * total).to(torch.float32)


def landweber(
    op: FFTOperator,
    y: torch.Tensor,
    b: float,
    x: torch.Tensor,
    iterations: int,
    hooks: Hooks,
    *,
    positive: bool,
    gamma: float = 1.8,
) -> torch.Tensor:
    """Landweber (``positive=False``) and projected non-negative Landweber (LW+).

    ``x ← P(x + γ D Hᵀ m (y − b − Hx))`` with ``D = w`` (the diagonal preconditioner that makes
    the masked problem converge for ``γ < 2``; ``D = 1`` without a mask).
    """
    return tikhonov_miller(op, y, b, x, iterations, hooks, lam=0.0, positive=positive, gamma=gamma)


def tikhonov_miller(
    op: FFTOperator,
    y: torch.Tensor,
    b: float,
    x: torch.Tensor,
    iterations: int,
    hooks: Hooks,
    *,
    lam: float,
    positive: bool,
    gamma: float = 1.8,
) -> torch.Tensor:
    """Tikhonov–Miller (TM) and iterative constrained TM (ICTM, ``positive=True``).

    Gradient steps on ``‖m(Hx + b − y)‖² + λ‖Lx‖²``:
    ``x ← P(x + γ D (Hᵀ m (y − b − Hx) − λ LᵀL x))`` with the Jacobi-type preconditioner
    ``D = 1 / (Hᵀm + 144 λ)`` (144 bounds the row sums of ``LᵀL``), so ``γ < 2`` converges.
    """
    if lam > 0:
        lap = laplacian_power(op).to(torch.complex64)
        spec_x = torch.empty_like(op.spec)
    if op.weights is not None:
        pre = op.weights
        if lam > 0:
            # 1 / (1/w + 144 λ) = w / (1 + 144 λ w), and 0 where w = 0 (invisible voxels)
            pre = pre / (pre * (144.0 * lam) + 1.0)
        step = gamma
    else:
        pre = None
        step = gamma / (1.0 + 144.0 * lam)
    t = op.tmp
    for k in range(iterations):
        if lam > 0:
            torch.fft.rfftn(x, dim=op.dims, out=spec_x)
            torch.mul(spec_x, op.otf, out=op.spec)
            torch.fft.irfftn(op.spec, s=op.shape, dim=op.dims, out=t)
            spec_x.mul_(lap)
        else:
            op.forward(x, t)
        v = op.observed(t)
        if b:
            v.add_(b)
        hooks.prediction(k, v)
        torch.sub(y, v, out=v)
        op.zero_unobserved_(t)
        if lam > 0:
            torch.fft.rfftn(t, dim=op.dims, out=op.spec)
            op.spec.conj_physical_().mul_(op.otf).conj_physical_()
            op.spec.sub_(spec_x, alpha=lam)
            torch.fft.irfftn(op.spec, s=op.shape, dim=op.dims, out=t)
        else:
            op.adjoint(t, t)
        if pre is not None:
            t.mul_(pre)
        x.add_(t, alpha=step)
        if positive:
            x.clamp_(min=0.0)
        if hooks.step(k + 1, x) is False:
            break
    return x
