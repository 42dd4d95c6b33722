"""Our own scalar widefield PSF: the Born–Wolf diffraction integral evaluated numerically.

The amplitude at lateral distance ``r`` and defocus ``z`` from the focus of an aberration-free
objective (numerical aperture ``NA``, immersion index ``n``, vacuum wavelength ``λ``, wave number
``k = 2π/λ``) is the Hankel-type integral over the normalised pupil radius ``ρ ∈ [0, 1]``::

    E(r, z) = ∫₀¹ J₀(k · NA · r · ρ) · exp(i · k · z · √(n² − NA² ρ²)) · P(ρ) · ρ dρ

and the intensity PSF is ``|E|²`` (Born & Wolf, *Principles of Optics*, §8.8; the defocus phase is
kept non-paraxial, ``k z n cos θ``, so that the axial extent stays right at high NA). The pupil
``P(ρ) = exp(2πi · A · (6ρ⁴ − 6ρ² + 1))`` carries primary spherical aberration of ``A`` waves
(the Zernike polynomial Z₄⁰ with its balancing defocus; ``A = 0``: aberration-free).

The integral is a matrix product: ``J₀`` is tabulated once on a fine radial grid × Gauss–Legendre
nodes in ρ, the phase on nodes × planes. The lateral pixels integrate the intensity over their
area (``oversample`` × ``oversample`` sub-samples per pixel); the planes are point samples of the
focus position.
"""

from __future__ import annotations

import numpy as np
from scipy.special import j0

__all__ = ["born_wolf_psf", "radial_profile"]


def _nodes(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    return 0.5 * (x + 1.0), 0.5 * w  # nodes and weights on [0, 1]


def radial_profile(
    r_um: np.ndarray,
    z_um: np.ndarray,
    *,
    na: float,
    wavelength_um: float,
    immersion_index: float,
    spherical_waves: float = 0.0,
) -> np.ndarray:
    """Compute ``|E(r, z)|²`` on radii ``r_um`` (R,) and defocus ``z_um`` (Z,), shape (Z, R)."""
    k = 2.0 * np.pi / wavelength_um
    r_um = np.asarray(r_um, dtype=np.float64)
    z_um = np.asarray(z_um, dtype=np.float64)
    n = immersion_index
    phase_span = k * float(np.max(np.abs(z_um), initial=0.0)) * (n - np.sqrt(n * n - na * na))
    bessel_span = k * na * float(np.max(r_um, initial=0.0))
    n_nodes = int(48 + 1.2 * (phase_span + bessel_span) + 40 * abs(spherical_waves))
    rho, w = _nodes(n_nodes)
    pupil = np.exp(2j * np.pi * spherical_waves * (6 * rho**4 - 6 * rho**2 + 1))
    bessel = j0(np.outer(r_um, k * na * rho)) * (w * rho * pupil)  # (R, N)
    cos_term = np.sqrt(n * n - (na * rho) ** 2)  # n cos θ
    phase = np.exp(1j * k * np.outer(cos_term, z_um))  # (N, Z)
    amp = bessel @ phase  # (R, Z)
    return (np.abs(amp) ** 2).T


def born_wolf_psf(
    shape: tuple[int, int, int],
    voxel_size_um: tuple[float, float, float],
    *,
    na: float,
    wavelength_um: float,
    immersion_index: float,
    spherical_waves: float = 0.0,
    oversample: int = 3,
) -> np.ndarray:
    """Compute the widefield intensity PSF on ``shape`` centred at ``n // 2`` (float64, not unit).

    ``spherical_waves`` is the primary spherical aberration in waves (see the module docstring).
    """
    nz, ny, nx = shape
    dz, dy, dx = voxel_size_um
    z = (np.arange(nz) - nz // 2) * dz
    y = (np.arange(ny) - ny // 2) * dy
    x = (np.arange(nx) - nx // 2) * dx
    sub = (np.arange(oversample) - (oversample - 1) / 2) / oversample
    r_max = float(np.hypot(np.abs(y).max() + dy, np.abs(x).max() + dx))
    dr = min(dy, dx) / (4 * oversample)
    r_grid = np.arange(0.0, r_max + 2 * dr, dr)
    prof = radial_profile(
        r_grid,
        z,
        na=na,
        wavelength_um=wavelength_um,
        immersion_index=immersion_index,
        spherical_waves=spherical_waves,
    )  # (Z, R)
    # pixel-area integration as one sparse (pixels × radii) matrix of interpolation weights
    from scipy import sparse

    rows, cols, vals = [], [], []
    pix = np.arange(ny * nx)
    for sy in sub:
        for sx in sub:
            rr = np.hypot((y + sy * dy)[:, None], (x + sx * dx)[None, :]).ravel()
            idx = rr / dr
            i0 = np.minimum(idx.astype(np.int64), r_grid.size - 2)
            f = idx - i0
            rows += [pix, pix]
            cols += [i0, i0 + 1]
            vals += [1.0 - f, f]
    weights = sparse.csr_matrix(
        (np.concatenate(vals) / oversample**2, (np.concatenate(rows), np.concatenate(cols))),
        shape=(ny * nx, r_grid.size),
    )
    return np.asarray(weights @ prof.T).T.reshape(nz, ny, nx)
