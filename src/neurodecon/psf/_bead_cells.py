"""How the PSF box of the joint bead model is parametrised: cells, light cone, binning.

``h`` is constant on cells: single voxels in the core (near focus, where every detail is
measured), and per plane 1-voxel-wide rings, optionally split into angular sectors, outside it
(where one voxel alone is far below the noise: radially averaged tails are the regularisation).
The support is a centred box intersected with the light cone ``r ≤ r0 + |z| tan θ``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

__all__ = ["Cells", "polar_cells", "cone_support", "bin_volume", "upsample_box"]


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
