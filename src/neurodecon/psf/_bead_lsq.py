"""Weighted least squares for the joint bead model (:class:`._bead_joint.JointLevel`).

The far tails of a widefield PSF against the flat background are the slow direction of this
problem: Richardson–Lucy's multiplicative steps need thousands of iterations there, conjugate
gradients tens. Used by the coarse pass of :mod:`._bead_solve`.
"""

from __future__ import annotations

import numpy as np

from ._bead_joint import JointLevel, Tick

__all__ = ["solve_least_squares", "solve_amplitudes"]


def solve_least_squares(
    level: JointLevel,
    theta,
    amplitudes: np.ndarray,
    background: float,
    iterations: int,
    *,
    restart_every: int = 10,
    shrink: float = 1.0,
    tick: Tick | None = None,
):
    """Non-negative weighted least squares for ``(h, b)``: preconditioned CG, active set.

    Weights ``1 / μ`` with ``μ`` the model at the start (Poisson variance). CG reaches the
    smooth, slow directions (far tails against the flat background) in tens of iterations
    where RL's multiplicative steps need thousands. Every ``restart_every`` iterations the
    estimate is clipped at 0 and the cells held at 0 by a positive gradient leave the free
    set (projected CG with restarts): unconstrained least squares lets far planes swing by
    the size of the whole PSF in directions the data hardly see (a pedestal in one plane
    against the background and the next planes). Jacobi preconditioner: the diagonal of
    the normal matrix (voxel cross terms neglected).

    ``shrink`` κ adds ``κ Σ σ_c⁻¹ θ_c`` over the tail cells (rings; σ_c their standard error
    from the diagonal): each tail cell is soft-thresholded by about κ standard errors, and
    in the directions the data do not see (a flat pedestal in far planes against the
    background) the fit keeps the tails small and puts the level into the background.
    """
    t = level.torch
    o_hat = level.object(amplitudes)
    good = level.observed(amplitudes)
    mu = level.irfft(o_hat * level.rfft(level.to_grid(theta))) + background
    if level.fixed is not None:
        mu = mu + level.fixed
    wgt = level.w / t.clamp(mu, min=1.0)
    target = level.y - (level.fixed if level.fixed is not None else 0.0)

    def normal(x_cells, xb):
        r = wgt * (level.irfft(o_hat * level.rfft(level.to_grid(x_cells))) + xb)
        return level.to_cells(level.irfft(t.conj(o_hat) * level.rfft(r))), float(r.sum())

    o2 = t.zeros(int(np.prod(level.grid)), device=level.dev)
    for (flat, vals), a in zip(level.beads, amplitudes, strict=True):
        o2.index_add_(0, flat, (vals * float(a)) ** 2)
    diag = level.to_cells(level.irfft(t.conj(level.rfft(o2.reshape(level.grid))) * level.rfft(wgt)))
    pre_all = t.where(good & (diag > 0), 1.0 / t.clamp(diag, min=1e-30), 0.0)
    pre_b = 1.0 / float(wgt.sum())
    rhs = level.to_cells(level.irfft(t.conj(o_hat) * level.rfft(wgt * target)))
    tails = t.as_tensor(level.cells.counts > 1, device=level.dev)
    rhs = rhs - t.where(tails & good, shrink * t.sqrt(t.clamp(diag, min=0)), 0.0)
    rhs_b = float((wgt * target).sum())
    x = t.clamp(t.where(good, theta, 0.0), min=0)
    xb = float(background)
    done = 0
    while done < iterations:
        nx, nb = normal(x, xb)
        grad = nx - rhs  # gradient of ½ xᵀNx − rhsᵀx
        free = good & ~((x <= 0) & (grad > 0))
        pre = t.where(free, pre_all, 0.0)
        r, rb = t.where(free, -grad, 0.0), rhs_b - nb
        z, zb = pre * r, pre_b * rb
        p, pb = z.clone(), zb
        rz = float((r * z).sum()) + rb * zb
        for _ in range(min(restart_every, iterations - done)):
            if rz <= 0:
                break
            ap, apb = normal(p, pb)
            ap = t.where(free, ap, 0.0)
            step = rz / (float((p * ap).sum()) + pb * apb)
            x, xb = x + step * p, xb + step * pb
            r, rb = r - step * ap, rb - step * apb
            z, zb = pre * r, pre_b * rb
            rz_new = float((r * z).sum()) + rb * zb
            p, pb = z + (rz_new / rz) * p, zb + (rz_new / rz) * pb
            rz = rz_new
            done += 1
            if tick is not None:
                tick(done, iterations)
        else:
            x = t.clamp(x, min=0)
            continue
        x = t.clamp(x, min=0)
        break
    return x, xb


def solve_amplitudes(level, theta, amplitudes: np.ndarray, background: float, iterations: int = 8):
    """Weighted least squares for the bead amplitudes (``h``, ``b`` fixed), by CG.

    The model is linear in the amplitudes: ``μ = b + Σ a_i (s_i ⊛ h)``; weights ``1/μ``.
    """
    t = level.torch
    amps = np.asarray(amplitudes, np.float64).copy()
    h_hat = level.rfft(level.to_grid(t.clamp(theta, min=0)))
    mu = level.irfft(level.object(amps) * h_hat) + background
    if level.fixed is not None:
        mu = mu + level.fixed
    wgt = level.w / t.clamp(mu, min=1.0)
    target = level.y - background - (level.fixed if level.fixed is not None else 0.0)

    def adjoint(r):
        corr = level.irfft(level.rfft(r) * t.conj(h_hat)).reshape(-1)
        return np.array([float((corr[f] * v).sum()) for f, v in level.beads])

    def normal(p):
        return adjoint(wgt * level.irfft(level.object(p) * h_hat))

    r = adjoint(wgt * target) - normal(amps)
    p = r.copy()
    rr = float(r @ r)
    for _ in range(min(iterations, len(amps))):
        if rr <= 0:
            break
        ap = normal(p)
        step = rr / float(p @ ap)
        amps, r = amps + step * p, r - step * ap
        rr_new = float(r @ r)
        p, rr = r + (rr_new / rr) * p, rr_new
    return np.clip(amps, 1e-12 * max(float(amps.max()), 1e-30), None)
