"""Blocks of a volume: cores that tile it, read with a halo, sized to fit memory."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import user_error

__all__ = ["Block", "BlockPlan", "plan_blocks", "psf_half_support", "default_halo", "fit_block"]

#: Flux of the PSF inside the box whose half-widths make the support (see psf_half_support).
SUPPORT_ENERGY = 0.999
#: Halo of the iterative methods, in PSF half-supports (measured: BENCHMARKS.md, bench_blocked).
ITERATIVE_HALO_FACTOR = 2.0
#: Halo of the closed-form filters: their inverse reaches as far (Tikhonov on a widefield PSF:
#: 0.12 relative L2 at factor 1, 7e-3 at 2; bench_blocked.py methods).
DIRECT_HALO_FACTOR = 2.0
#: Voxels added to every halo (PetaKit5D adds 5 to half the support).
HALO_MARGIN = 4
#: The default core of a block: large laterally (few tasks; dask's overhead per task stays small).
DEFAULT_CORE = (96, 512, 512)


@dataclass(frozen=True)
class Block:
    """One block: ``core`` (what it writes) inside ``read`` (what it reads), in array indices."""

    index: tuple[int, ...]
    core: tuple[slice, ...]
    read: tuple[slice, ...]

    @property
    def crop(self) -> tuple[slice, ...]:
        """The core's position inside the read region (spatial axes only)."""
        return tuple(
            slice(c.start - r.start, c.stop - r.start)
            for c, r in zip(self.core[-3:], self.read[-3:], strict=True)
        )

    @property
    def name(self) -> str:
        """A file-safe id, e.g. ``b0_2_1_3``."""
        return "b" + "_".join(str(i) for i in self.index)


@dataclass(frozen=True)
class BlockPlan:
    """The blocks of an array of ``shape``: spatial cores of ``core``, halo ``halo`` (z, y, x)."""

    shape: tuple[int, ...]
    core: tuple[int, int, int]
    halo: tuple[int, int, int]
    blocks: tuple[Block, ...]

    @property
    def chunks(self) -> tuple[int, ...]:
        """Chunks of the output array: one per block core (leading axes one at a time)."""
        lead = (1,) * (len(self.shape) - 3)
        return lead + tuple(min(c, n) for c, n in zip(self.core, self.shape[-3:], strict=True))

    @property
    def read_shape(self) -> tuple[int, int, int]:
        """The largest region a block reads (core plus halo on both sides, clipped)."""
        z, y, x = (
            min(c + 2 * h, n) for c, h, n in zip(self.core, self.halo, self.shape[-3:], strict=True)
        )
        return (z, y, x)


def psf_half_support(psf: np.ndarray, energy: float = SUPPORT_ENERGY) -> tuple[int, int, int]:
    """Return per-axis half-widths (voxels) of the centred box holding ``energy`` of the flux.

    Each axis's marginal profile is grown symmetrically from the PSF's centre (index ``n // 2``)
    until the fraction ``energy ** (1/3)`` of its flux is inside, so the box holds ``energy``
    of a separable PSF.
    """
    p = np.clip(np.asarray(psf, np.float64), 0, None)
    total = p.sum()
    if p.ndim != 3 or total <= 0:
        raise user_error(f"a PSF must be a non-zero 3D array, got shape {p.shape}")
    target = energy ** (1.0 / 3.0)
    halves = []
    for axis in range(3):
        prof = p.sum(axis=tuple(a for a in range(3) if a != axis)) / total
        c = p.shape[axis] // 2
        h = 0
        while prof[max(c - h, 0) : c + h + 1].sum() < target and h < p.shape[axis]:
            h += 1
        halves.append(h)
    z, y, x = halves
    return (z, y, x)


def default_halo(psf: np.ndarray, *, iterative: bool) -> tuple[int, int, int]:
    """Return the halo of a method, in voxels (z, y, x).

    The PSF's half-support (× ``ITERATIVE_HALO_FACTOR`` for iterative methods, whose result at a
    voxel depends on data farther away, × ``DIRECT_HALO_FACTOR`` for the closed-form filters,
    whose inverse reaches beyond the PSF) plus ``HALO_MARGIN``.
    """
    factor = ITERATIVE_HALO_FACTOR if iterative else DIRECT_HALO_FACTOR
    z, y, x = (int(math.ceil(factor * h)) + HALO_MARGIN for h in psf_half_support(psf))
    return (z, y, x)


def plan_blocks(shape: Sequence[int], *, core: Sequence[int], halo: Sequence[int]) -> BlockPlan:
    """Tile an array of ``shape`` (``(..., Z, Y, X)``) with blocks.

    Leading axes (time, channel) get one block per index; the spatial axes cores of ``core``
    (the last ones smaller), each read with ``halo`` voxels more on each side where the volume
    continues (clipped at its real edges, where the method's own boundary model applies).
    """
    shape = tuple(int(n) for n in shape)
    spatial = shape[-3:]
    core3 = tuple(max(1, min(int(c), n)) for c, n in zip(core, spatial, strict=True))
    halo3 = tuple(max(0, int(h)) for h in halo)
    per_axis: list[list[tuple[int, slice, slice]]] = [
        [(i, slice(i, i + 1), slice(i, i + 1)) for i in range(n)] for n in shape[:-3]
    ]
    for n, c, h in zip(spatial, core3, halo3, strict=True):
        starts = range(0, n, c)
        per_axis.append(
            [
                (k, slice(s, min(s + c, n)), slice(max(s - h, 0), min(s + c + h, n)))
                for k, s in enumerate(starts)
            ]
        )
    blocks = tuple(
        Block(
            index=tuple(a[0] for a in combo),
            core=tuple(a[1] for a in combo),
            read=tuple(a[2] for a in combo),
        )
        for combo in itertools.product(*per_axis)
    )
    z, y, x = core3
    hz, hy, hx = halo3
    return BlockPlan(shape, (z, y, x), (hz, hy, hx), blocks)


def fit_block(
    spatial_shape: Sequence[int],
    halo: Sequence[int],
    bytes_of: object,
    budget: float,
    *,
    start: Sequence[int] = DEFAULT_CORE,
) -> tuple[int, int, int]:
    """Return the largest core (from ``start``, halved axis by axis) whose block fits ``budget``.

    ``bytes_of(read_shape)`` predicts the peak memory of processing a region of that shape.
    """
    core = [min(int(c), int(n)) for c, n in zip(start, spatial_shape, strict=True)]

    def need(c: list[int]) -> float:
        read = [min(k + 2 * h, n) for k, h, n in zip(c, halo, spatial_shape, strict=True)]
        return float(bytes_of(tuple(read)))  # type: ignore[operator]

    while need(core) > budget:
        axis = int(np.argmax([c / max(h, 1) for c, h in zip(core, halo, strict=True)]))
        if core[axis] <= max(8, halo[axis]):
            raise user_error(
                "not even a small block fits in the memory available "
                f"({need(core) / 1e9:.2f} GB needed for a {tuple(core)} core)",
                fix="free memory, use fewer workers, or a smaller PSF",
            )
        core[axis] = max(8, core[axis] // 2)
    z, y, x = core
    return (z, y, x)
