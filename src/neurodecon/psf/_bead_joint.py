"""Joint PSF estimation from a whole bead stack: every bead and every plane in one linear model.

The object is known up to the bead brightness: the detected centres ``c_i`` (sub-voxel) times the
ideal bead ``s`` of the given diameter. The stack is then linear in the PSF ``h``::

    y(x) ≈ b + Σ_i a_i (s(· − c_i) ⊛ h)(x) + t(x)        for every observed voxel x

(``a_i`` bead amplitudes, ``b`` the camera offset plus any flat background, ``t`` a fixed
contribution: the tails of ``h`` outside the box being estimated). ``h``, ``a_i`` and ``b`` are
estimated by Richardson–Lucy (Poisson maximum likelihood, multiplicative updates) with the roles
of object and PSF swapped. Overlapping beads are modelled, not rejected, and every plane of the
stack contributes.

Numerics:

* **No wrap-around.** Everything lives on a zero-padded FFT grid at least ``data + box/2 + bead``
  voxels long per axis, and voxels outside the stack (or masked: saturated, doublets) have weight
  0 — the classical engine's "unknown boundary". Beads at the stack's edges contribute.
* **Beads rendered in real space** (partial-volume spheres at their exact sub-voxel centres), so
  the object is non-negative and RL stays stable; a Fourier phase ramp makes the sub-voxel sphere
  ring (it is not band-limited) and lets the model go negative. The voxel box this adds is taken
  out at the end (multiplication by its transfer function).
* **Cells.** ``h`` is constant on cells: single voxels in the core (near focus), and per plane
  rings (or ring sectors) outside it, where each voxel alone is far below the noise. Radial
  averaging of the far tails is the regularisation; the core keeps every detail.
* **Support.** A centred box intersected with a light cone ``r ≤ r0 + |z| tan θ`` (θ the aperture
  half-angle). Outside the cone the PSF is dark; without it a flat pedestal in ``h`` and the
  background ``b`` cannot be told apart.
* **Coarse to fine.** The slow parts (far tails, background, amplitudes) converge on laterally
  binned data (cheap); the full-resolution pass then refines a smaller box with the tails
  outside it fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi

from ._bead_ideal import render_ideal_bead

__all__ = ["Cells", "JointLevel", "polar_cells", "cone_support", "bin_volume", "upsample_box"]

Tick = Callable[[int, int], None]


@dataclass
class Cells:
    """How the PSF box is split into cells (``labels``: box-shaped ints ``0..n-1``)."""

    labels: np.ndarray
    n: int
    allowed: np.ndarray  # (n,) bool: cell inside the support cone
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.bincount(self.labels.ravel(), minlength=self.n).astype(np.float64)


def _radius_px(half: Sequence[int], vox: Sequence[float]) -> np.ndarray:
    """Lateral radius (in units of the smaller lateral voxel) on the (Y, X) box of ``half``."""
    y = np.arange(-half[1], half[1] + 1) * vox[1]
    x = np.arange(-half[2], half[2] + 1) * vox[2]
    return np.sqrt(y[:, None] ** 2 + x[None, :] ** 2) / min(vox[1], vox[2])


def cone_support(
    half: Sequence[int], vox: Sequence[float], tan_theta: float, r0_um: float
) -> np.ndarray:
    """Boolean box ``(2·half+1)``: lateral radius ≤ ``r0_um + |z|·tan_theta`` (µm)."""
    z = np.abs(np.arange(-half[0], half[0] + 1)) * vox[0]
    r_um = _radius_px(half, vox) * min(vox[1], vox[2])
    return r_um[None] <= (r0_um + z * tan_theta)[:, None, None]


def polar_cells(
    half: Sequence[int],
    vox: Sequence[float],
    core: tuple[int, float],
    *,
    sectors: int = 1,
    support: np.ndarray | None = None,
) -> Cells:
    """Voxel cells for ``|z| ≤ core[0]`` and ``r ≤ core[1]`` (px), polar cells elsewhere.

    Polar cells are 1-voxel-wide rings in each plane, split into ``sectors`` angular sectors
    (1: radially symmetric tails). ``support`` (box bool) marks where the PSF may be non-zero.
    """
    nz = 2 * half[0] + 1
    r = _radius_px(half, vox)
    ring = np.floor(r + 0.5).astype(np.int64)
    if sectors > 1:
        yy = np.arange(-half[1], half[1] + 1)[:, None] * vox[1]
        xx = np.arange(-half[2], half[2] + 1)[None, :] * vox[2]
        ang = (np.arctan2(yy, xx) + np.pi) / (2 * np.pi)
        sec = np.minimum((ang * sectors).astype(np.int64), sectors - 1)
        ring = ring * sectors + np.where(ring <= 2, 0, sec)
    per_plane = int(ring.max()) + 1
    labels = np.arange(nz, dtype=np.int64)[:, None, None] * per_plane + ring[None]
    z = np.abs(np.arange(-half[0], half[0] + 1))
    core_mask = (z[:, None, None] <= core[0]) & (r[None] <= core[1])
    labels[core_mask] = nz * per_plane + np.arange(int(core_mask.sum()))
    uniq, inv = np.unique(labels, return_inverse=True)
    labels = inv.reshape(labels.shape)
    n = len(uniq)
    sup = np.ones(labels.shape, bool) if support is None else support
    allowed = np.bincount(labels.ravel(), weights=sup.ravel(), minlength=n) > 0
    return Cells(labels, n, allowed)


def bin_volume(volume: np.ndarray, factor: Sequence[int], *, how: str = "sum") -> np.ndarray:
    """Sum (or minimum, for masks) over ``factor`` blocks; a remainder at the far end is dropped."""
    f = [int(k) for k in factor]
    d = [n // k * k for n, k in zip(volume.shape, f, strict=True)]
    v = volume[: d[0], : d[1], : d[2]]
    v = v.reshape(d[0] // f[0], f[0], d[1] // f[1], f[1], d[2] // f[2], f[2])
    return v.min(axis=(1, 3, 5)) if how == "min" else v.sum(axis=(1, 3, 5), dtype=np.float64)


def upsample_box(coarse: np.ndarray, factor: Sequence[int], half: Sequence[int]) -> np.ndarray:
    """Per-voxel density on the fine box ``2·half+1`` from a coarse centred box (linear)."""
    hc = [n // 2 for n in coarse.shape]
    coords = np.meshgrid(
        *[
            np.arange(-h, h + 1, dtype=np.float64) / k + c
            for h, k, c in zip(half, factor, hc, strict=True)
        ],
        indexing="ij",
        sparse=True,
    )
    full = np.broadcast_arrays(*coords)
    out = ndi.map_coordinates(coarse.astype(np.float64), full, order=1, mode="constant")
    return np.clip(out, 0, None) / float(np.prod(factor))


class JointLevel:
    """The joint model at one sampling: data, weights, rendered beads, FFT grid, cells.

    Parameters
    ----------
    data, weights : (Z, Y, X) ndarray
        Bead stack and per-voxel weight (1 observed, 0 masked).
    centres : (N, 3) ndarray
        Bead centres (voxels of this sampling); may lie slightly outside the stack.
    voxel_size_um, bead_diameter_um
        Sampling and bead size.
    half : 3 ints
        Half-size of the PSF box being estimated.
    cells : Cells
        Cell layout of that box.
    fixed : (Z, Y, X) ndarray, optional
        Known additive contribution (tails outside the box).
    device : torch.device
    """

    def __init__(
        self,
        data: np.ndarray,
        weights: np.ndarray,
        centres: np.ndarray,
        voxel_size_um: Sequence[float],
        bead_diameter_um: float,
        half: Sequence[int],
        cells: Cells,
        *,
        fixed: np.ndarray | None = None,
        device: Any = "cpu",
    ) -> None:
        import torch

        self.torch, self.dev = torch, device
        self.shape = data.shape
        self.half = tuple(int(h) for h in half)
        vox = np.asarray(voxel_size_um, float)
        reach = np.ceil(bead_diameter_um / 2 / vox).astype(int) + 2
        self.grid = tuple(
            int(sfft.next_fast_len(int(n + h + r + 1), real=True))
            for n, h, r in zip(self.shape, self.half, reach, strict=True)
        )
        self._beads = [self._render(c, vox, bead_diameter_um, reach) for c in centres]
        self._points = np.ravel_multi_index(
            tuple(np.rint(np.asarray(centres, float)).astype(int).T % np.array(self.grid)[:, None]),
            self.grid,
        )
        self.y = self._pad(data)
        self.w = self._pad(weights)
        self.w_hat = torch.fft.rfftn(self.w)
        self.n_obs = float(self.w.sum())
        self.fixed = None if fixed is None else self._pad(fixed)
        box_idx = np.ix_(
            *[np.r_[g - h : g, 0 : h + 1] for g, h in zip(self.grid, self.half, strict=True)]
        )
        flat = np.ravel_multi_index(tuple(np.broadcast_arrays(*box_idx)), self.grid)
        self._box = torch.as_tensor(flat.ravel(), device=device)
        self.cells = cells
        self._lab = torch.as_tensor(cells.labels.ravel(), device=device)
        self.counts = torch.as_tensor(cells.counts, device=device)

    # -- helpers ---------------------------------------------------------------------------
    def _pad(self, a: np.ndarray):
        out = self.torch.zeros(self.grid, device=self.dev)
        out[: self.shape[0], : self.shape[1], : self.shape[2]] = self.torch.as_tensor(
            np.asarray(a, np.float32), device=self.dev
        )
        return out

    def _render(self, centre, vox, diameter, reach):
        base = np.floor(centre).astype(int) - reach
        box = tuple(int(2 * r + 2) for r in reach)
        local = render_ideal_bead(box, tuple(vox), diameter, center=tuple(centre - base))
        idx = np.ix_(
            *[np.arange(b, b + n) % g for b, n, g in zip(base, box, self.grid, strict=True)]
        )
        flat = np.ravel_multi_index(tuple(np.broadcast_arrays(*idx)), self.grid).ravel()
        t = self.torch
        return t.as_tensor(flat, device=self.dev), t.as_tensor(local.ravel(), device=self.dev)

    def rfft(self, a):
        """Real FFT on the padded grid."""
        return self.torch.fft.rfftn(a)

    def irfft(self, a):
        """Inverse of :meth:`rfft`."""
        return self.torch.fft.irfftn(a, s=self.grid)

    def object(self, amplitudes: np.ndarray):
        """Spectrum of ``Σ a_i s(· − c_i)`` on the grid."""
        o = self.torch.zeros(int(np.prod(self.grid)), device=self.dev)
        for (flat, vals), a in zip(self._beads, amplitudes, strict=True):
            o.index_add_(0, flat, vals * float(a))
        return self.rfft(o.reshape(self.grid))

    def to_cells(self, grid_array):
        """Sum a grid array over each cell of the box (float64 result)."""
        vals = grid_array.reshape(-1)[self._box]
        out = self.torch.zeros(self.cells.n, dtype=vals.dtype, device=self.dev)
        return out.scatter_add_(0, self._lab, vals).double()

    def to_grid(self, theta):
        """Place the cell values (per voxel) on the wrapped grid (box centre at index 0)."""
        return self.grid_from_box(theta[self._lab])

    def grid_from_box(self, values):
        """Place a flattened box (or a box-shaped ndarray) on the wrapped grid."""
        vals = self.torch.as_tensor(
            np.asarray(values) if isinstance(values, np.ndarray) else values
        )
        g = self.torch.zeros(int(np.prod(self.grid)), device=self.dev)
        g[self._box] = vals.reshape(-1).to(self.dev).float()
        return g.reshape(self.grid)

    def box(self, theta) -> np.ndarray:
        """Cell values as a centred (2·half+1) box, float64."""
        return theta[self._lab].cpu().numpy().reshape(self.cells.labels.shape)

    def cells_from_box(self, box: np.ndarray):
        """Mean of a box array over each cell."""
        vals = self.torch.as_tensor(box.ravel(), device=self.dev, dtype=self.torch.float64)
        s = self.torch.zeros(self.cells.n, dtype=vals.dtype, device=self.dev)
        return s.scatter_add_(0, self._lab, vals) / self.counts

    def model(self, theta, amplitudes, background, *, box: np.ndarray | None = None):
        """Expected stack ``b + Σ a_i s_i ⊛ h (+ fixed)`` on the data's shape, float32.

        ``h`` comes from the cell values ``theta``, or from a box-shaped array ``box``.
        """
        h = self.to_grid(theta) if box is None else self.grid_from_box(box)
        mu = self.irfft(self.object(amplitudes) * self.rfft(h)) + background
        if self.fixed is not None:
            mu = mu + self.fixed
        return mu[: self.shape[0], : self.shape[1], : self.shape[2]].cpu().numpy()

    def observed(self, amplitudes: np.ndarray, fraction: float = 0.02):
        """Cells inside the support that the data see through enough beads.

        Coverage of an offset ``s``: ``Σ_i a_i w(c_i + s)`` with the bead centres rounded (a
        sphere's partial-volume spread would make offsets just past the stack look observed);
        a cell is kept when its mean coverage is at least ``fraction`` of the best one.
        """
        t = self.torch
        pts = t.zeros(int(np.prod(self.grid)), device=self.dev)
        pts.index_add_(
            0,
            t.as_tensor(self._points, device=self.dev),
            t.as_tensor(np.asarray(amplitudes, np.float32), device=self.dev),
        )
        cover = self.to_cells(self.irfft(t.conj(self.rfft(pts.reshape(self.grid))) * self.w_hat))
        mean = cover / self.counts
        allowed = t.as_tensor(self.cells.allowed, device=self.dev)
        self.good = (mean > fraction * float(mean.max())) & allowed
        return self.good

    # -- Richardson-Lucy ---------------------------------------------------------------------
    def run(
        self,
        theta,
        amplitudes: np.ndarray,
        background: float,
        iterations: int,
        *,
        amplitude_every: int = 0,
        accelerate: bool = True,
        update_background: bool = True,
        tick: Tick | None = None,
    ):
        """RL updates of ``h`` (cells), the background and (every k-th) the amplitudes.

        With ``accelerate``, Biggs–Andrews vector extrapolation (order 1) of ``(h, b)``:
        ``v = x_k + α (x_k − x_{k−1})``, ``x_{k+1} = RL(v)``, ``α = <g_k, g_{k−1}> / |g_{k−1}|²``
        with ``g`` the RL steps, clipped to [0, 0.95]; restarted after an amplitude update.
        Returns ``(theta, amplitudes, background)`` in data units (the caller normalises).
        """
        t = self.torch
        amps = np.asarray(amplitudes, np.float64).copy()
        b = float(background)
        o_hat = den = good = None
        prev, prev_b, g_prev, alpha = theta, b, None, 0.0
        w = self.counts.sqrt()
        for it in range(iterations):
            if o_hat is None:
                o_hat = self.object(amps)
                den = self.to_cells(self.irfft(t.conj(o_hat) * self.w_hat))
                good = self.observed(amps) & (den > 0)
                theta = t.where(good, theta, t.zeros_like(theta))
                prev, prev_b, g_prev, alpha = theta, b, None, 0.0
            v = t.clamp(theta + alpha * (theta - prev), min=0) if alpha > 0 else theta
            vb = max(b + alpha * (b - prev_b), 1e-6) if alpha > 0 and update_background else b
            h_hat = self.rfft(self.to_grid(v))
            mu = self.irfft(o_hat * h_hat) + vb
            if self.fixed is not None:
                mu = mu + self.fixed
            ratio = self.w * self.y / t.clamp(mu, min=1e-6)
            r_hat = self.rfft(ratio)
            num = self.to_cells(self.irfft(t.conj(o_hat) * r_hat))
            new = t.where(good, v * t.clamp(num, min=0) / t.where(good, den, 1.0), 0.0)
            new_b = vb * float(ratio.sum()) / self.n_obs if update_background else b
            if accelerate:
                g = (new - v) * w
                if g_prev is not None:
                    gg = float((g_prev * g_prev).sum())
                    alpha = min(max(float((g * g_prev).sum()) / gg, 0.0), 0.95) if gg > 0 else 0.0
                g_prev = g
            prev, prev_b, theta, b = theta, b, new, new_b
            if amplitude_every and it % amplitude_every == amplitude_every - 1:
                amps = self._update_amplitudes(amps, r_hat, h_hat)
                o_hat = None
            if tick is not None:
                tick(it + 1, iterations)
        return theta, amps, b

    def solve_least_squares(
        self,
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
        t = self.torch
        o_hat = self.object(amplitudes)
        good = self.observed(amplitudes)
        mu = self.irfft(o_hat * self.rfft(self.to_grid(theta))) + background
        if self.fixed is not None:
            mu = mu + self.fixed
        wgt = self.w / t.clamp(mu, min=1.0)
        target = self.y - (self.fixed if self.fixed is not None else 0.0)

        def normal(x_cells, xb):
            r = wgt * (self.irfft(o_hat * self.rfft(self.to_grid(x_cells))) + xb)
            return self.to_cells(self.irfft(t.conj(o_hat) * self.rfft(r))), float(r.sum())

        o2 = t.zeros(int(np.prod(self.grid)), device=self.dev)
        for (flat, vals), a in zip(self._beads, amplitudes, strict=True):
            o2.index_add_(0, flat, (vals * float(a)) ** 2)
        diag = self.to_cells(self.irfft(t.conj(self.rfft(o2.reshape(self.grid))) * self.rfft(wgt)))
        pre_all = t.where(good & (diag > 0), 1.0 / t.clamp(diag, min=1e-30), 0.0)
        pre_b = 1.0 / float(wgt.sum())
        rhs = self.to_cells(self.irfft(t.conj(o_hat) * self.rfft(wgt * target)))
        tails = t.as_tensor(self.cells.counts > 1, device=self.dev)
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

    def solve_amplitudes(
        self, theta, amplitudes: np.ndarray, background: float, iterations: int = 8
    ):
        """Weighted least squares for the bead amplitudes (``h``, ``b`` fixed), by CG.

        The model is linear in the amplitudes: ``μ = b + Σ a_i (s_i ⊛ h)``; weights ``1/μ``.
        """
        t = self.torch
        amps = np.asarray(amplitudes, np.float64).copy()
        h_hat = self.rfft(self.to_grid(t.clamp(theta, min=0)))
        mu = self.irfft(self.object(amps) * h_hat) + background
        if self.fixed is not None:
            mu = mu + self.fixed
        wgt = self.w / t.clamp(mu, min=1.0)
        target = self.y - background - (self.fixed if self.fixed is not None else 0.0)

        def adjoint(r):
            corr = self.irfft(self.rfft(r) * t.conj(h_hat)).reshape(-1)
            return np.array([float((corr[f] * v).sum()) for f, v in self._beads])

        def normal(p):
            return adjoint(wgt * self.irfft(self.object(p) * h_hat))

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

    def _update_amplitudes(self, amps, r_hat, h_hat):
        t = self.torch
        corr_r = self.irfft(r_hat * t.conj(h_hat)).reshape(-1)
        corr_w = self.irfft(self.w_hat * t.conj(h_hat)).reshape(-1)
        out = amps.copy()
        for i, (flat, vals) in enumerate(self._beads):
            num = float((corr_r[flat] * vals).sum())
            den = float((corr_w[flat] * vals).sum())
            if den > 0:
                out[i] *= max(num, 0.0) / den
        return out

    def cell_sigma(self, amplitudes, theta, background):
        """Approximate standard error of each cell value (per-voxel density), float64 tensor.

        From the Poisson Fisher information ``Σ_x (∂μ/∂θ)² / μ`` with the cross terms between
        the voxels of a cell neglected; ``inf`` for cells outside the fit.
        """
        t = self.torch
        o2 = t.zeros(int(np.prod(self.grid)), device=self.dev)
        for (flat, vals), a in zip(self._beads, amplitudes, strict=True):
            o2.index_add_(0, flat, (vals * float(a)) ** 2)
        mu = self.irfft(self.object(amplitudes) * self.rfft(self.to_grid(theta))) + background
        if self.fixed is not None:
            mu = mu + self.fixed
        inv = self.w / t.clamp(mu, min=1e-6)
        info = self.to_cells(self.irfft(t.conj(self.rfft(o2.reshape(self.grid))) * self.rfft(inv)))
        good = getattr(self, "good", None)
        ok = (info > 0) if good is None else (info > 0) & good
        return t.where(ok, 1.0 / t.sqrt(t.clamp(info, min=1e-30)), float("inf"))

    def cell_geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """Plane index (0 … 2·half_z) and mean lateral radius (px) of every cell."""
        lab = self.cells.labels
        n = self.cells.n
        cnt = np.maximum(self.cells.counts, 1)
        z = np.broadcast_to(np.arange(lab.shape[0])[:, None, None], lab.shape)
        r = np.broadcast_to(
            np.sqrt(
                (np.arange(lab.shape[1]) - lab.shape[1] // 2)[:, None] ** 2
                + (np.arange(lab.shape[2]) - lab.shape[2] // 2)[None, :] ** 2
            ),
            lab.shape,
        )
        plane = np.bincount(lab.ravel(), weights=z.ravel(), minlength=n) / cnt
        radius = np.bincount(lab.ravel(), weights=r.ravel(), minlength=n) / cnt
        return np.rint(plane).astype(int), radius
