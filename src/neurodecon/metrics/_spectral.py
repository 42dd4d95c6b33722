"""Shared Fourier plumbing for FSC/FRC and decorrelation: apodisation and radial frequency grids.

Frequencies are *normalised per axis*: along an axis of the array, ``k = 1`` is that axis'
Nyquist frequency ``1 / (2 · voxel)``. A radius ``r = sqrt(Σ k_i²)`` therefore describes an
ellipsoid in physical units whose semi-axes scale with the sampling, and a cut-off ``r_c`` reads as
a resolution ``2 · voxel_i / r_c`` µm along axis ``i``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["apodize", "periodic_component", "prepare", "EDGES", "radius_rfft", "rfft_weights"]

#: Edge treatments accepted by :func:`prepare`.
EDGES = ("periodic", "tukey", "none")

#: Fraction of each axis tapered by the Tukey edge window.
TUKEY_ALPHA = 0.25


@lru_cache(maxsize=32)
def _tukey(n: int, alpha: float) -> np.ndarray:
    from scipy.signal.windows import tukey

    return tukey(n, alpha).astype(np.float32) if n > 2 else np.ones(n, np.float32)


def apodize(x: np.ndarray, axes: tuple[int, ...], alpha: float = TUKEY_ALPHA) -> np.ndarray:
    """Subtract the mean and taper the edges along ``axes`` with a separable Tukey window.

    Removes the cross-shaped spectral leakage from the image borders, which would otherwise
    correlate perfectly between two images and fake resolution at high frequency.
    """
    out = np.asarray(x, dtype=np.float32)
    out = out - np.float32(out.mean(axis=axes, keepdims=True, dtype=np.float64))
    for ax in axes:
        shape = [1] * out.ndim
        shape[ax] = out.shape[ax]
        out = out * _tukey(out.shape[ax], alpha).reshape(shape)
    return out


def radius_rfft(shape: tuple[int, ...]) -> np.ndarray:
    """Per-axis-normalised radius (1 = Nyquist on each axis) on the ``rfftn`` grid of ``shape``."""
    grids = [2.0 * np.fft.fftfreq(n) for n in shape[:-1]] + [2.0 * np.fft.rfftfreq(shape[-1])]
    r2 = np.zeros([len(g) for g in grids], dtype=np.float32)
    for ax, g in enumerate(grids):
        s = [1] * len(grids)
        s[ax] = len(g)
        r2 = r2 + (g.astype(np.float32) ** 2).reshape(s)
    return np.sqrt(r2)


def rfft_weights(shape: tuple[int, ...]) -> np.ndarray:
    """Multiplicity of each ``rfftn`` coefficient in the full spectrum (1 or 2), last axis only."""
    n = shape[-1]
    w = np.full(n // 2 + 1, 2.0, dtype=np.float32)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w


def periodic_component(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Return the periodic part of ``x`` along ``axes`` (Moisan's periodic + smooth decomposition).

    ``x = p + s`` where ``s`` is the smooth image whose discrete Laplacian equals the jumps across
    opposite borders; ``p`` wraps around without discontinuities, so its spectrum has no
    cross-shaped leakage, yet (unlike a window) it is not convolved with anything.
    Reference: L. Moisan, J. Math. Imaging Vis. 39 (2011) 161–179.
    """
    from scipy import fft as sfft

    u = np.asarray(x, dtype=np.float32)
    v = np.zeros_like(u)
    for ax in axes:
        first = np.take(u, [0], axis=ax)
        last = np.take(u, [-1], axis=ax)
        jump = last - first
        idx0 = [slice(None)] * u.ndim
        idx0[ax] = slice(0, 1)
        idx1 = [slice(None)] * u.ndim
        idx1[ax] = slice(-1, None)
        v[tuple(idx0)] += jump
        v[tuple(idx1)] -= jump
    spatial = tuple(u.shape[a] for a in axes)
    denom = np.zeros(
        [u.shape[a] if i < len(axes) - 1 else u.shape[a] // 2 + 1 for i, a in enumerate(axes)],
        dtype=np.float64,
    )
    for i, a in enumerate(axes):
        n = u.shape[a]
        k = np.arange(n // 2 + 1) if i == len(axes) - 1 else np.arange(n)
        shape = [1] * len(axes)
        shape[i] = k.size
        denom = denom + (2.0 * np.cos(2.0 * np.pi * k / n) - 2.0).reshape(shape)
    denom.flat[0] = 1.0
    vh = sfft.rfftn(v, axes=axes, workers=1)
    full = [1] * u.ndim
    for i, a in enumerate(axes):
        full[a] = denom.shape[i]
    sh = vh / denom.reshape(full).astype(np.float32)
    sh[tuple(slice(0, 1) if i in axes else slice(None) for i in range(u.ndim))] = 0
    s = sfft.irfftn(sh, s=spatial, axes=axes, workers=1)
    return (u - s).astype(np.float32)


def prepare(x: np.ndarray, axes: tuple[int, ...], edges: str = "periodic") -> np.ndarray:
    """Mean-free float32 copy with the chosen edge treatment (``periodic``, ``tukey``, ``none``)."""
    if edges == "periodic":
        p = periodic_component(x, axes)
        return p - np.float32(p.mean(axis=axes, keepdims=True, dtype=np.float64))
    if edges == "tukey":
        return apodize(x, axes)
    if edges == "none":
        u = np.asarray(x, dtype=np.float32)
        return u - np.float32(u.mean(axis=axes, keepdims=True, dtype=np.float64))
    from ..errors import user_error

    raise user_error(f"unknown edge treatment {edges!r}", fix=f"use one of {', '.join(EDGES)}")
