"""The ideal bead i*: a sphere rendered with partial-volume anti-aliasing (paper §4.1.3)."""

from __future__ import annotations

import numpy as np

from ..errors import user_error

__all__ = ["render_ideal_bead"]


def render_ideal_bead(
    shape: tuple[int, int, int],
    voxel_size_um: tuple[float, float, float],
    diameter_um: float,
    *,
    center: tuple[float, float, float] | None = None,
    supersample: int | None = None,
) -> np.ndarray:
    """Sphere of ``diameter_um`` rendered on a (Z, Y, X) grid with partial-volume anti-aliasing.

    Each voxel holds the fraction of its volume inside the sphere, estimated with ``s`` sub-samples
    per axis (default: enough for ≥ 16 sub-samples across the diameter, 4..32). The sphere is
    centred at ``center`` (voxel coordinates, default ``n//2``). Returns float32, sum 1; a sphere
    smaller than one sub-sample becomes a single voxel.
    """
    vox = np.asarray(voxel_size_um, float)
    if diameter_um <= 0 or np.any(vox <= 0):
        raise user_error(
            f"invalid bead diameter {diameter_um} µm or voxel size {tuple(vox)}",
            fix="give positive values",
        )
    c = np.array(shape) // 2 if center is None else np.asarray(center, float)
    radius = diameter_um / 2
    out = np.zeros(shape, np.float64)
    lo = np.maximum(np.floor(c - radius / vox - 1).astype(int), 0)
    hi = np.minimum(np.ceil(c + radius / vox + 2).astype(int), shape)
    if np.any(hi <= lo):
        raise user_error("the bead lies outside the array", fix="give a larger shape")
    s = supersample or np.clip(np.ceil(16 * vox / diameter_um), 4, 32).astype(int)
    s = np.broadcast_to(np.asarray(s, int), (3,))
    axes = []
    for ax in range(3):
        sub = (np.arange(s[ax]) + 0.5) / s[ax] - 0.5
        coords = (np.arange(lo[ax], hi[ax])[:, None] + sub[None, :] - c[ax]) * vox[ax]
        axes.append(coords.ravel() ** 2)
    zz, yy, xx = axes
    box = np.empty((hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]), np.float64)
    yx = yy[:, None] + xx[None, :]
    for i in range(box.shape[0]):
        inside = (zz[i * s[0] : (i + 1) * s[0], None, None] + yx[None]) <= radius**2
        blocks = inside.reshape(s[0], box.shape[1], s[1], box.shape[2], s[2])
        box[i] = blocks.mean(axis=(0, 2, 4))
    out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = box
    if out.sum() <= 0:
        out[tuple(np.clip(np.round(c).astype(int), 0, np.array(shape) - 1))] = 1.0
    return (out / out.sum()).astype(np.float32)
