"""What the global decisions of a blocked run see of one 3D frame: all of it, always.

A frame that fits (``EXACT_BYTES``, a quarter of the memory) is read whole, and the decisions
equal a whole-volume run's. A larger frame is read once, tile by tile with a halo, never whole:

- its mean and the mean of its non-negative part are summed exactly (the flat start's level);
- the maps of the background estimate (:func:`neurodecon.metrics.background_maps`: the
  smoothed frame and the high-pass noise) are computed per tile — they are local, so with a
  halo of the smoothing's reach every voxel's value equals the whole frame's — and kept, with
  the raw values, on a uniform lattice of about ``SAMPLES`` voxels spread through the frame;
- the background (:func:`neurodecon.metrics.background_from_maps`) and a network's
  normalisation percentiles come from that lattice: the whole frame's statistics up to the
  sampling, where crops (the previous rule) missed the dark regions of a dense sample.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._tasks import read_region

__all__ = ["FrameSummary", "frame_summary", "EXACT_BYTES", "SAMPLES"]

log = logging.getLogger("neurodecon")

#: Frames up to this float32 size are read whole for the global decisions (exact).
EXACT_BYTES = 1 << 30
#: Voxels kept from a larger frame (a uniform lattice through it) for its statistics.
SAMPLES = 1 << 23
#: A larger frame is read in tiles of at most this many bytes of core (float32), and at most a
#: sixteenth of the memory available (the region with its halo, two maps and the filters' work).
TILE_BYTES = 1 << 29
#: The background estimate's smoothing (voxels) and the halo it needs (the Gaussian's reach).
SIGMA = 2.0
HALO = int(4.0 * SIGMA + 0.5)


@dataclass
class FrameSummary:
    """One frame as the global decisions see it.

    Attributes
    ----------
    volume : ndarray or None
        The whole frame (when it was read whole), else None.
    values : ndarray
        The frame's voxels (flattened view) or the lattice sample of them, float32.
    mean, positive_mean : float
        Exact means of the frame and of ``max(frame, 0)``.
    exact : bool
        True when the frame was read whole.
    """

    volume: np.ndarray | None
    values: np.ndarray
    mean: float
    positive_mean: float
    exact: bool
    smooth: np.ndarray | None = None
    noise: np.ndarray | None = None

    def background(self, requested: float | str) -> float:
        """Return ``requested`` as a number; ``"auto"`` is estimated on the whole frame."""
        if not isinstance(requested, str):
            return float(requested)
        from ..metrics import background_from_maps, estimate_background

        if self.volume is not None:
            value = float(estimate_background(self.volume, sigma=SIGMA))
        else:
            assert self.smooth is not None and self.noise is not None
            value = float(background_from_maps(self.smooth, self.noise, sigma=SIGMA, ndim=3))
        how = "" if self.exact else f", from {self.values.size:,} voxels spread through it"
        log.info(f"background=auto: {value:.4g} (decided once for the whole volume{how})")
        return value

    def flat_level(self, background: float, method: str) -> float:
        """Return the flat start's level: the frame's mean above the background.

        As the whole-volume run computes it: negative data count as 0 for the Poisson methods.
        """
        from ..classical import POISSON_METHODS

        if method in POISSON_METHODS:
            return max(self.positive_mean - max(background, 0.0), 0.0)
        return max(self.mean - background, 0.0)

    def describe(self) -> str:
        """How the decisions were made, for the run's record."""
        if self.exact:
            return "whole volume"
        return f"whole volume, one streaming pass ({self.values.size} voxels sampled)"


def exact_budget() -> float:
    """Bytes (float32) up to which a frame is read whole."""
    from ..memory import available_bytes

    return min(EXACT_BYTES, 0.25 * (available_bytes() or EXACT_BYTES * 4))


def frame_summary(
    source: Any,
    shape: tuple[int, ...],
    frame: tuple[int, ...] | None = None,
    *,
    background_maps: bool = True,
) -> FrameSummary:
    """Return the :class:`FrameSummary` of one 3D frame (the first by default).

    ``background_maps``: also map the background estimate (needed for ``background="auto"``).
    """
    lead: tuple[Any, ...] = tuple(frame) if frame is not None else tuple(0 for _ in shape[:-3])
    nz, ny, nx = (int(n) for n in shape[-3:])
    spatial = (nz, ny, nx)
    if math.prod(spatial) * 4 <= exact_budget():
        vol = read_region(source, (*lead, slice(None), slice(None), slice(None))).reshape(spatial)
        return FrameSummary(
            volume=vol,
            values=vol.reshape(-1),
            mean=float(vol.mean(dtype=np.float64)),
            positive_mean=float(np.clip(vol, 0, None).mean(dtype=np.float64)),
            exact=True,
        )
    return _stream(source, lead, spatial, background_maps)


def _stream(
    source: Any, lead: tuple[Any, ...], spatial: tuple[int, int, int], maps: bool
) -> FrameSummary:
    from ..metrics import background_maps

    t0 = time.perf_counter()
    strides = lattice_strides(spatial, SAMPLES)
    total = positive = 0.0
    values, smooth, noise = [], [], []
    tiles = list(_tiles(spatial))
    log.info(
        f"global decisions: one pass over the whole {'×'.join(map(str, spatial))} frame "
        f"({len(tiles)} tiles), every {'×'.join(map(str, strides))}th voxel kept"
    )
    for core, read in tiles:
        region = read_region(source, (*lead, *read)).reshape([s.stop - s.start for s in read])
        inner = tuple(
            slice(c.start - r.start, c.stop - r.start) for c, r in zip(core, read, strict=True)
        )
        block = region[inner]
        total += float(block.sum(dtype=np.float64))
        positive += float(np.clip(block, 0, None).sum(dtype=np.float64))
        pick = _lattice(core, strides)
        values.append(block[pick].ravel())
        if maps:
            s, n = background_maps(region, sigma=SIGMA)
            smooth.append(s[inner][pick].ravel())
            noise.append(n[inner][pick].ravel())
    n_voxels = math.prod(spatial)
    log.info(f"global decisions: frame read in {time.perf_counter() - t0:.1f} s")
    return FrameSummary(
        volume=None,
        values=np.concatenate(values),
        mean=total / n_voxels,
        positive_mean=positive / n_voxels,
        exact=False,
        smooth=np.concatenate(smooth) if maps else None,
        noise=np.concatenate(noise) if maps else None,
    )


def lattice_strides(spatial: tuple[int, ...], samples: int) -> tuple[int, int, int]:
    """Per-axis strides whose lattice keeps about ``samples`` voxels (at least one per axis).

    The strides grow round-robin from x, as evenly as the axes' lengths allow.

    Examples
    --------
    >>> lattice_strides((100, 2048, 2048), 1 << 23)
    (4, 4, 4)
    """
    strides = [1, 1, 1]
    axis = 2
    for _ in range(10_000):
        kept = math.prod(-(-n // s) for n, s in zip(spatial, strides, strict=True))
        if kept <= samples:
            break
        if strides[axis] < spatial[axis]:
            strides[axis] += 1
        axis = (axis - 1) % 3
    return (strides[0], strides[1], strides[2])


def _lattice(core: tuple[slice, ...], strides: tuple[int, int, int]) -> tuple[slice, ...]:
    """Return the lattice's voxels inside ``core`` (global index ≡ 0 mod stride), tile-relative."""
    return tuple(slice((-c.start) % s, None, s) for c, s in zip(core, strides, strict=True))


def _tiles(spatial: tuple[int, int, int]) -> Iterator[tuple[tuple[slice, ...], tuple[slice, ...]]]:
    """Yield ``(core, read)`` slices tiling the frame.

    Cores of at most ``TILE_BYTES`` (and 1/16 of the memory available), read with ``HALO``
    voxels more on every side that has neighbours.
    """
    from ..memory import available_bytes

    nz, ny, nx = spatial
    budget = min(TILE_BYTES, (available_bytes() or 16 * TILE_BYTES) // 16)
    ty, tx = min(ny, 2048), min(nx, 2048)
    tz = int(max(1, min(nz, budget // (4 * ty * tx))))
    for z in range(0, nz, tz):
        for y in range(0, ny, ty):
            for x in range(0, nx, tx):
                core = (slice(z, min(z + tz, nz)), slice(y, min(y + ty, ny)),
                        slice(x, min(x + tx, nx)))  # fmt: skip
                read = tuple(
                    slice(max(c.start - HALO, 0), min(c.stop + HALO, n))
                    for c, n in zip(core, spatial, strict=True)
                )
                yield core, read
