"""Random placement shared by the phantom families: counts, points, directions, size ranges."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "MAX_OBJECTS",
    "volume_um3",
    "count",
    "uniform_points",
    "directions",
    "size_range",
    "perturb",
]

#: Most objects one family draws in one volume.
MAX_OBJECTS = 50_000


def volume_um3(shape, vox) -> float:
    """Return the volume of a ``shape`` grid of ``vox`` voxels in µm³."""
    return float(np.prod(np.asarray(shape, dtype=np.float64) * np.asarray(vox, dtype=np.float64)))


def count(expected: float, rng: np.random.Generator) -> int:
    """Return a Poisson number of objects with mean ``expected`` (at most :data:`MAX_OBJECTS`)."""
    return int(min(rng.poisson(max(expected, 0.0)), MAX_OBJECTS))


def uniform_points(n: int, shape, vox, rng) -> np.ndarray:
    """Return ``n`` uniformly random points (µm) in the volume, as an ``(n, 3)`` array."""
    ext = np.asarray(shape, dtype=np.float64) * np.asarray(vox, dtype=np.float64)
    return rng.uniform(0.0, 1.0, size=(n, 3)) * ext - 0.5 * np.asarray(vox)


def directions(n: int, rng) -> np.ndarray:
    """Return ``n`` isotropic unit vectors ``(z, y, x)``, as an ``(n, 3)`` array."""
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    sin_t = np.sqrt(1.0 - cos_t**2)
    return np.stack([cos_t, sin_t * np.sin(phi), sin_t * np.cos(phi)], axis=1)


def size_range(value, u: float, default: tuple[float, float]) -> tuple[float, float]:
    """Return ``(lo, hi)`` in µm: ``value`` (a number or a pair, µm), else ``default × u``."""
    if value is None:
        return default[0] * u, default[1] * u
    if isinstance(value, (int, float, np.number)):
        return float(value), float(value)
    lo, hi = (float(v) for v in value)
    return lo, hi


def perturb(d: Sequence[float], g: Sequence[float], scale: float) -> list[float]:
    """Return the unit vector along ``d + scale · g_⊥``, as plain floats.

    ``g_⊥`` is the part of ``g`` orthogonal to ``d``.
    """
    dot = d[0] * g[0] + d[1] * g[1] + d[2] * g[2]
    v = [d[i] + scale * (g[i] - dot * d[i]) for i in range(3)]
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) or 1.0
    return [c / n for c in v]
