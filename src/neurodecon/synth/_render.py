"""Drawing primitives in physical units: capsules (tube pieces), spheres, ellipsoids, random fields.

All positions are in µm with voxel ``i`` of an axis centred at ``i · voxel_size``. Objects are
drawn inside their bounding box only and combined with the volume by maximum, so a volume stays
in ``[0, 1]`` when intensities do.
"""

from __future__ import annotations

import numpy as np

__all__ = ["draw_capsules", "draw_spheres", "draw_ellipsoids", "random_field", "soft_level_set"]


def _box(vol_shape, vox, lo_um, hi_um):
    lo = [max(int(np.floor(lo_um[i] / vox[i])), 0) for i in range(3)]
    hi = [min(int(np.ceil(hi_um[i] / vox[i])) + 1, vol_shape[i]) for i in range(3)]
    if any(h <= low for low, h in zip(lo, hi, strict=True)):
        return None
    axes = [np.arange(lo[i], hi[i], dtype=np.float32) * np.float32(vox[i]) for i in range(3)]
    return tuple(slice(lo[i], hi[i]) for i in range(3)), axes


def draw_capsules(
    vol: np.ndarray, vox, starts, ends, radii, intensities, *, edge_um: float
) -> None:
    """Draw segments of radius ``r`` (µm) with a linear soft edge ``edge_um`` wide.

    Tubes thinner than half the edge are drawn at that radius with the intensity scaled by the
    cross-section ratio, so that thin tubes keep their flux per unit length.
    """
    w = float(edge_um)
    for a, b, r, val in zip(starts, ends, radii, intensities, strict=True):
        r_draw = max(float(r), w / 2)
        val = float(val) * (float(r) / r_draw) ** 2
        reach = r_draw + w
        got = _box(vol.shape, vox, np.minimum(a, b) - reach, np.maximum(a, b) + reach)
        if got is None:
            continue
        sl, (z, y, x) = got
        ab = (b - a).astype(np.float32)
        ll = float(ab @ ab)
        pz, py, px = z[:, None, None] - a[0], y[None, :, None] - a[1], x[None, None, :] - a[2]
        if ll > 0:
            t = np.clip((pz * ab[0] + py * ab[1] + px * ab[2]) / ll, 0.0, 1.0)
            d2 = (pz - t * ab[0]) ** 2 + (py - t * ab[1]) ** 2 + (px - t * ab[2]) ** 2
        else:
            d2 = pz**2 + py**2 + px**2
        value = val * np.clip(0.5 + (r_draw - np.sqrt(d2)) / w, 0.0, 1.0)
        np.maximum(vol[sl], value, out=vol[sl])


def draw_spheres(vol: np.ndarray, vox, centres, radii, intensities, *, oversample: int = 3) -> None:
    """Draw solid spheres with partial-volume edges (``oversample``³ sub-samples per voxel)."""
    sub = ((np.arange(oversample) + 0.5) / oversample - 0.5).astype(np.float32)
    for c, r, val in zip(centres, radii, intensities, strict=True):
        got = _box(vol.shape, vox, c - r - np.asarray(vox), c + r + np.asarray(vox))
        if got is None:
            continue
        sl, (z, y, x) = got
        dz = (z[:, None] + sub[None, :] * vox[0] - c[0]).ravel() ** 2
        dy = (y[:, None] + sub[None, :] * vox[1] - c[1]).ravel() ** 2
        dx = (x[:, None] + sub[None, :] * vox[2] - c[2]).ravel() ** 2
        inside = (dz[:, None, None] + dy[None, :, None] + dx[None, None, :]) <= r * r
        k = oversample
        frac = inside.reshape(z.size, k, y.size, k, x.size, k).mean(
            axis=(1, 3, 5), dtype=np.float32
        )
        np.maximum(vol[sl], float(val) * frac, out=vol[sl])


def draw_ellipsoids(vol: np.ndarray, vox, centres, radii, intensities) -> None:
    """Binary axis-aligned ellipsoids, ``Σ ((x − c)/r)² ≤ 1`` (the NeuroDecon paper's §4.1.1)."""
    for c, r, val in zip(centres, radii, intensities, strict=True):
        got = _box(vol.shape, vox, c - r, c + r)
        if got is None:
            continue
        sl, (z, y, x) = got
        q = (
            (((z - c[0]) / r[0]) ** 2)[:, None, None]
            + (((y - c[1]) / r[1]) ** 2)[None, :, None]
            + (((x - c[2]) / r[2]) ** 2)[None, None, :]
        )
        np.maximum(vol[sl], np.where(q <= 1.0, np.float32(val), np.float32(0)), out=vol[sl])


def random_field(shape, vox, corr_um: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field (zero mean, unit std, float32) with Gaussian correlation ``corr_um``.

    White noise filtered in Fourier space by ``exp(−2π² σ² |k|²)``, σ = ``corr_um`` in µm; the
    field is periodic over the volume.
    """
    from scipy import fft

    noise = rng.standard_normal(shape, dtype=np.float32)
    spec = fft.rfftn(noise, workers=1)
    kz = fft.fftfreq(shape[0], vox[0]).astype(np.float32)[:, None, None]
    ky = fft.fftfreq(shape[1], vox[1]).astype(np.float32)[None, :, None]
    kx = fft.rfftfreq(shape[2], vox[2]).astype(np.float32)[None, None, :]
    s2 = np.float32(2 * np.pi**2 * corr_um**2)
    spec *= np.exp(-s2 * kz**2) * np.exp(-s2 * ky**2) * np.exp(-s2 * kx**2)
    field = fft.irfftn(spec, s=shape, workers=1).astype(np.float32)
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def soft_level_set(field: np.ndarray, vox, level: float) -> np.ndarray:
    """Signed distance (µm, positive inside ``field > level``) to the level set, to first order."""
    grads = np.gradient(field, *[float(v) for v in vox])
    norm = np.sqrt(sum(g * g for g in grads)) + np.float32(1e-6)
    return ((field - np.float32(level)) / norm).astype(np.float32)
