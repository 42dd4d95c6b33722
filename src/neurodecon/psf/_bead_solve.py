"""Coarse-to-fine driver of the joint bead model (:mod:`._bead_joint`): cone, size, assembly.

1. **Coarse pass** on the whole stack, laterally binned (field ≤ 64 px, at most 2 FWHM per bin),
   PSF box as large as the stack allows (``2·N − 3`` voxels per axis: every bead-to-voxel offset
   the data contain), tails as rings. Weighted least squares by conjugate gradients for the PSF
   and the background, alternated with the bead amplitudes: the far tails against the flat
   background are the slow direction of this problem, which CG reaches in tens of iterations
   (Richardson–Lucy needs thousands). Negative values are clipped at the end.
2. **Light cone.** ``tan θ = NA / √(n² − NA²)`` (× 1.1) when the optics are known, else
   NA/n = 0.95 (any objective): the PSF is zero outside it, which separates a flat pedestal from
   the background.
3. **Size from the physics.** A plane is measured when its flux, summed outwards from the axis,
   rises above 3 standard errors at some radius (Poisson Fisher information of the fit). The
   measured planes, contiguous around focus, and the cone's radius in the outermost of them give
   the measured box.
   Then every tail cell (ring) below ``tail_significance`` (1) standard error is set to zero: a
   non-negative fit keeps the positive half of the noise of every ring that holds no light, and
   summed over thousands of rings that is a pedestal under the PSF (on the demo's dense confocal
   beads it held a third of the flux and cost RL 1.1 dB; measured in BENCHMARKS.md).
4. **Fine pass** at full resolution, Richardson–Lucy, on an inner box (the measured planes up to
   half the stack, a quarter of the field laterally) and on a lateral window of the stack when it
   is large, with the light of everything else (tails, beads outside the window) fixed from the
   coarse pass; the coarse tails are kept beyond the inner box. Its tail cells below
   ``tail_significance`` standard errors are zeroed as well.
5. The voxel box of the rendered beads is put back into the PSF, and (optionally) frequencies
   where the PSF's power does not stand above the fit's noise are zeroed
   (:func:`._bead_align.spectral_filter`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..progress import ProgressFn, report
from ._bead_cells import bin_volume, cone_support, polar_cells, upsample_box
from ._bead_joint import JointLevel
from ._bead_lsq import solve_amplitudes, solve_least_squares
from ._bead_size import measured_half, plane_sigma, post_filter, swells

__all__ = ["JointResult", "solve_joint", "GENERIC_TAN_THETA", "tan_theta_of"]

#: Cone used when the optics are unknown: NA/n = 0.95 (any objective), tan θ ≈ 3.0.
GENERIC_TAN_THETA = 0.95 / np.sqrt(1 - 0.95**2)


def tan_theta_of(na: float, immersion_index: float) -> float:
    """``tan θ`` of the aperture half-angle, ``sin θ = NA / n``."""
    s = min(float(na) / float(immersion_index), 0.999)
    return s / np.sqrt(1 - s * s)


@dataclass
class JointResult:
    """PSF and fitted model of :func:`solve_joint` (arrays at the stack's sampling)."""

    psf: np.ndarray  # centred box, the measured extent, float64, sum 1
    amplitudes: np.ndarray  # flux of each bead (in units of psf.sum() == 1)
    background: float
    flux_per_plane: np.ndarray  # (psf.shape[0],) flux of each plane of psf
    flux_sigma: np.ndarray  # approximate standard error of flux_per_plane
    model: np.ndarray  # re-synthesised stack b + Σ a_i s_i ⊛ h on ``window``, float32
    window: tuple[slice, slice, slice]
    tan_theta: float
    info: dict[str, Any] = field(default_factory=dict)


_DEFAULTS: dict[str, Any] = {
    "coarse_passes": 3,
    "coarse_iterations": 20,
    "fine_iterations": 25,
    "sectors": 1,
    "shrink": 0.5,
    "fine_voxels": 2_500_000,
    "flux_significance": 3.0,
    "cone_margin": 1.1,
    "tail_significance": 1.0,
    "voxel_box": True,
    "spectral_filter": False,
}


def solve_joint(
    volume: np.ndarray,
    weights: np.ndarray,
    centres: np.ndarray,
    amplitudes: np.ndarray,
    *,
    voxel_size_um: Sequence[float],
    bead_diameter_um: float,
    fwhm_vox: Sequence[float],
    tan_theta: float | None = None,
    device: Any = "cpu",
    progress: ProgressFn | None = None,
    **options: Any,
) -> JointResult:
    """Estimate the PSF jointly from every bead of a stack (see the module docstring).

    Parameters
    ----------
    volume, weights : (Z, Y, X) ndarray
        Raw stack (float32) and per-voxel weights (1 observed, 0 left out).
    centres : (N, 3) ndarray
        Sub-voxel bead centres, every bead in the stack (also those whose data are left out).
    amplitudes : (N,) ndarray
        Starting bead brightness (any common scale).
    voxel_size_um, bead_diameter_um
        Sampling and bead size.
    fwhm_vox : 3 floats
        Rough FWHM (z, y, x) in voxels (sets the core of voxel-wise cells and the binning).
    tan_theta : float, optional
        Cone of light ``tan θ`` from the optics; NA/n = 0.95 when None.
    device : torch.device or str
    progress : callable, optional
    **options
        See ``_DEFAULTS``: ``coarse_passes``, ``coarse_iterations``, ``fine_iterations``,
        ``sectors``, ``fine_voxels`` (data budget of the fine pass), ``flux_significance``,
        ``cone_margin``, ``tail_significance``, ``voxel_box``, ``spectral_filter``.
    """
    opt = {**_DEFAULTS, **options}
    vox = np.asarray(voxel_size_um, float)
    fwhm = np.asarray(fwhm_vox, float)
    t0 = time.perf_counter()
    factor = _coarse_factor(volume.shape, fwhm)
    core = (int(np.ceil(1.5 * fwhm[0])), float(np.ceil(3.0 * max(fwhm[1], fwhm[2]))))
    r0_um = 2.0 * core[1] * min(vox[1:])
    n_coarse = opt["coarse_passes"] * opt["coarse_iterations"]
    ticker = _Ticker(progress, 2 * n_coarse + opt["fine_iterations"])
    cone = GENERIC_TAN_THETA if tan_theta is None else float(tan_theta) * opt["cone_margin"]
    coarse = _Coarse(volume, weights, centres, vox, bead_diameter_um, factor, core, opt)
    b0 = _initial_background(volume, weights)
    theta, amps, b = coarse.fit(amplitudes, b0, cone, r0_um, ticker, shrink=0.0)
    shrink = 0.0
    if opt["shrink"] > 0 and swells(coarse.level.box(theta).sum(axis=(1, 2)), coarse.core[0]):
        shrink = float(opt["shrink"])
        theta, amps, b = coarse.fit(amplitudes, b0, cone, r0_um, ticker, shrink=shrink)
    level = coarse.level
    sig_cells = level.cell_sigma(amps, theta, b)
    theta_all, theta = theta, _significant_tails(level, theta, sig_cells, opt["tail_significance"])
    h_coarse = level.box(theta)
    measured = measured_half(level, theta_all, sig_cells, factor, cone, r0_um, vox, opt, shrink)
    window = _fine_window(volume.shape, centres, weights, int(opt["fine_voxels"]))
    fine = _Fine(volume, weights, centres, vox, bead_diameter_um, core, cone, r0_um, opt, window)
    psf, model, b, sig, noise = fine.fit(h_coarse, coarse, amps, b, measured, ticker, device)
    coarse_sig = plane_sigma(level, sig_cells)
    sig = np.where(np.isfinite(sig), sig, _centred(coarse_sig, len(sig)) / factor[0] ** 0.5)
    psf = post_filter(psf, opt["voxel_box"], noise if opt["spectral_filter"] else 0.0)
    total = psf.sum()
    info = {
        "coarse_binning": list(factor),
        "core_half_vox": [core[0], core[1]],
        "cone_tan_theta": round(float(cone), 4),
        "cone_from_optics": tan_theta is not None,
        "cone_r0_um": round(float(r0_um), 4),
        "tail_shrink": shrink,
        "background": float(b),
        "measured_half_vox": list(measured),
        "fine_half_vox": list(fine.half),
        "fine_window_zyx": [[s.start, s.stop] for s in window],
        "noise_power": float(noise),
        "grid_fine": list(fine.grid),
        "grid_coarse": list(level.grid),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return JointResult(
        psf=psf / total,
        amplitudes=amps * total,
        background=float(b),
        flux_per_plane=psf.sum(axis=(1, 2)) / total,
        flux_sigma=sig / total,
        model=model,
        window=window,
        tan_theta=float(cone),
        info=info,
    )


# ----------------------------------------------------------------------------- pieces
class _Ticker:
    def __init__(self, progress: ProgressFn | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self, it: int, n: int) -> None:
        self.done += 1
        if it == n or self.done % 10 == 0:
            report(self.progress, self.done, self.total, "joint PSF estimation")


def _coarse_factor(shape: Sequence[int], fwhm: np.ndarray) -> tuple[int, int, int]:
    """Lateral binning: coarse field ≤ 64 px, bins at most 2 FWHM wide; axial 2 beyond 96."""
    lat = int(np.ceil(max(shape[1], shape[2]) / 64))
    lat = int(max(1, min(lat, np.floor(2 * max(fwhm[1], fwhm[2])))))
    axial = 2 if shape[0] > 96 else 1
    return (axial, lat, lat)


def _initial_background(volume: np.ndarray, weights: np.ndarray) -> float:
    vals = volume[weights > 0]
    step = max(1, vals.size // 1_000_000)
    return float(np.percentile(vals[::step], 2.0))


class _Coarse:
    """The coarse pass: binned data, the largest box, rings outside the core."""

    def __init__(self, volume, weights, centres, vox, diameter, factor, core, opt) -> None:
        f = np.asarray(factor)
        self.factor, self.opt, self.diameter = tuple(factor), opt, diameter
        self.data = bin_volume(volume, self.factor).astype(np.float32)
        self.weights = bin_volume(weights, self.factor, how="min").astype(np.float32)
        self.centres = (np.asarray(centres, float) + 0.5) / f - 0.5
        self.vox = vox * f
        self.half = tuple(max(1, n - 2) for n in self.data.shape)
        self.core = (core[0] // factor[0], max(1.0, core[1] / factor[1]))
        self.level: JointLevel

    def fit(self, amps, b, tan_theta, r0_um, ticker, *, shrink: float):
        """Alternate weighted least squares for ``(h, b)`` (CG) and for the amplitudes."""
        import torch

        support = cone_support(self.half, self.vox, tan_theta, r0_um)
        cells = polar_cells(self.half, self.vox, self.core, sectors=1, support=support)
        level = JointLevel(
            self.data, self.weights, self.centres, self.vox, self.diameter, self.half, cells
        )
        self.level = level
        theta = torch.zeros(cells.n, dtype=torch.float64)
        b = b * float(np.prod(self.factor))
        amps = np.asarray(amps, np.float64)
        for _ in range(self.opt["coarse_passes"]):
            theta, b = solve_least_squares(
                level,
                theta,
                amps,
                b,
                self.opt["coarse_iterations"],
                shrink=shrink,
                tick=ticker,
            )
            amps = solve_amplitudes(level, theta, amps, b)
            s = float((torch.clamp(theta, min=0) * level.counts).sum())
            theta, amps = theta / s, amps * s
        return torch.clamp(theta, min=0), amps, b / float(np.prod(self.factor))


def _fine_window(shape, centres, weights, budget: int) -> tuple[slice, slice, slice]:
    """Return the whole stack, or the lateral window (all planes) holding the most used beads."""
    nz, ny, nx = shape
    if nz * ny * nx <= budget:
        return (slice(0, nz), slice(0, ny), slice(0, nx))
    side = int(np.sqrt(budget / nz))
    wy, wx = min(ny, side), min(nx, side)
    counts = np.zeros((ny, nx))
    for z, y, x in centres:
        iz, iy, ix = (
            int(np.clip(round(v), 0, n - 1)) for v, n in zip((z, y, x), shape, strict=True)
        )
        counts[iy, ix] += float(weights[iz, iy, ix] > 0)
    summed = ndi.uniform_filter(counts, size=(wy, wx), mode="constant")
    cy, cx = np.unravel_index(int(np.argmax(summed)), summed.shape)
    y0 = int(np.clip(cy - wy // 2, 0, ny - wy))
    x0 = int(np.clip(cx - wx // 2, 0, nx - wx))
    return (slice(0, nz), slice(y0, y0 + wy), slice(x0, x0 + wx))


class _Fine:
    """Full-resolution RL on the inner box and the fine window, everything else fixed."""

    def __init__(self, volume, weights, centres, vox, diameter, core, cone, r0, opt, window):
        self.volume, self.weights, self.centres = volume, weights, np.asarray(centres, float)
        self.vox, self.diameter, self.core, self.cone, self.r0 = vox, diameter, core, cone, r0
        self.opt, self.window = opt, window
        self.grid: tuple[int, ...] = ()
        self.half: tuple[int, int, int] = (0, 0, 0)

    def fit(self, h_coarse, coarse, amps, b, measured, ticker, device):
        import torch

        win = self.window
        shape = tuple(s.stop - s.start for s in win)
        origin = np.array([s.start for s in win], float)
        lat_cap = [max(int(2 * self.core[1]), -(-n // 4)) for n in shape[1:]]
        self.half = half = (
            int(min(measured[0], max(1, (shape[0] - 1) // 2))),
            int(min(measured[1], lat_cap[0])),
            int(min(measured[2], lat_cap[1])),
        )
        local = self.centres - origin
        inside = np.all((local >= -0.5) & (local <= np.array(shape) - 0.5), axis=1)
        fixed = _fixed_light(h_coarse, coarse, amps, half, ~inside, win)
        cells = polar_cells(
            half,
            self.vox,
            self.core,
            sectors=self.opt["sectors"],
            support=cone_support(half, self.vox, self.cone, self.r0),
        )
        level = JointLevel(
            self.volume[win],
            self.weights[win],
            local[inside],
            self.vox,
            self.diameter,
            half,
            cells,
            fixed=fixed,
            device=device,
        )
        self.grid = level.grid
        full = upsample_box(h_coarse, coarse.factor, measured)
        start = level.cells_from_box(_centre_crop(full, half))
        start = torch.clamp(start, min=0) + 1e-6 * float(start.max())
        theta, _, b = level.run(
            start,
            amps[inside],
            b,
            self.opt["fine_iterations"],
            update_background=False,
            tick=ticker,
        )
        sig_cells = level.cell_sigma(amps[inside], theta, b)
        theta = _significant_tails(level, theta, sig_cells, self.opt["tail_significance"])
        sl = tuple(slice(m - h, m + h + 1) for m, h in zip(measured, half, strict=True))
        full[sl] = level.box(theta)
        sigma = np.full(full.shape[0], np.nan)
        sigma[sl[0]] = plane_sigma(level, sig_cells)
        model = level.model(theta, amps[inside], b)
        return full, model, b, sigma, _core_noise_power(level, sig_cells)


def _significant_tails(level: JointLevel, theta, sig_cells, k: float):
    """Zero the tail cells (rings) whose value is below ``k`` standard errors."""
    import torch

    if k <= 0:
        return theta
    tails = torch.as_tensor(level.cells.counts > 1, device=theta.device)
    return torch.where(tails & (theta < k * sig_cells), 0.0, theta)


def _core_noise_power(level: JointLevel, sig_cells) -> float:
    """``Σ σ²`` over the voxel-wise (core) cells: the white-noise power of the PSF estimate."""
    s = sig_cells.cpu().numpy()
    single = (level.cells.counts == 1) & np.isfinite(s)
    return float(np.sum(s[single] ** 2))


def _centre_crop(a: np.ndarray, half: Sequence[int]) -> np.ndarray:
    c = [n // 2 for n in a.shape]
    return a[tuple(slice(ci - h, ci + h + 1) for ci, h in zip(c, half, strict=True))].copy()


def _centred(values: np.ndarray, n: int) -> np.ndarray:
    """``values`` (odd length, centred) cut or padded (nan) to length ``n`` around the centre."""
    out = np.full(n, np.nan)
    c, h = len(values) // 2, n // 2
    lo, hi = max(0, c - h), min(len(values), c - h + n)
    out[lo - (c - h) : hi - (c - h)] = values[lo:hi]
    return out


def _fixed_light(h_coarse, coarse, amps, half, outside, window) -> np.ndarray:
    """Return the coarse light the fine pass does not fit, upsampled to the window's voxels.

    That is the PSF outside the inner box for every bead, and all of it for beads outside the
    window.
    """
    f = coarse.factor
    hc = [n // 2 for n in h_coarse.shape]
    z, y, x = (np.abs(np.arange(n) - c) for n, c in zip(h_coarse.shape, hc, strict=True))
    inner = (
        (z[:, None, None] * f[0] <= half[0])
        & (y[None, :, None] * f[1] <= half[1])
        & (x[None, None, :] * f[2] <= half[2])
    )
    level = coarse.level
    mu = level.model(None, amps, 0.0, box=np.where(inner, 0.0, h_coarse))
    if outside.any():
        mu = mu + level.model(
            None, np.where(outside, amps, 0.0), 0.0, box=np.where(inner, h_coarse, 0.0)
        )
    coords = np.meshgrid(
        *[(np.arange(s.start, s.stop) - (k - 1) / 2) / k for s, k in zip(window, f, strict=True)],
        indexing="ij",
        sparse=True,
    )
    up = ndi.map_coordinates(mu, np.broadcast_arrays(*coords), order=1, mode="nearest")
    return (up / float(np.prod(f))).astype(np.float32)
