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
from typing import Any

import numpy as np
from scipy import fft as sfft

from ._bead_cells import Cells
from ._bead_ideal import render_ideal_bead

__all__ = ["JointLevel", "Tick"]

Tick = Callable[[int, int], None]


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
        self.beads = [self._render(c, vox, bead_diameter_um, reach) for c in centres]
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
        for (flat, vals), a in zip(self.beads, amplitudes, strict=True):
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
        """Return the expected stack ``b + Σ a_i s_i ⊛ h (+ fixed)`` on the data's shape, float32.

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

    def _update_amplitudes(self, amps, r_hat, h_hat):
        t = self.torch
        corr_r = self.irfft(r_hat * t.conj(h_hat)).reshape(-1)
        corr_w = self.irfft(self.w_hat * t.conj(h_hat)).reshape(-1)
        out = amps.copy()
        for i, (flat, vals) in enumerate(self.beads):
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
        for (flat, vals), a in zip(self.beads, amplitudes, strict=True):
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
