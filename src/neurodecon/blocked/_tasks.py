"""What one block does: read its region, run the method, write its core, leave a marker.

Everything here is picklable (paths, arrays, dataclasses) so that a block runs the same in this
process, in a thread, or on a ``dask.distributed`` worker on another machine. Per process and
thread, the source, the output array and the deconvolver of each block shape are opened once.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._plan import Block

__all__ = [
    "ClassicalRunner",
    "BlockTask",
    "run_task",
    "read_region",
    "block_bytes",
    "thread_cache",
    "DONE_DIR",
]

#: Folder (inside the output store) holding one empty file per finished block.
DONE_DIR = ".neurodecon_done"

_local = threading.local()


def thread_cache() -> dict[Any, Any]:
    """Return this thread's cache (sources, outputs, deconvolvers, networks opened once)."""
    if not hasattr(_local, "cache"):
        _local.cache = {}
    cache: dict[Any, Any] = _local.cache
    return cache


#: Deconvolvers (OTF + buffers) kept per thread: one (blocks in a row share their shape; keeping
#: more would multiply the memory a block was sized for).
KEEP_DECONVOLVERS = 1


def _deconvolvers() -> dict[Any, Any]:
    cache = thread_cache()
    found: dict[Any, Any] = cache.setdefault("deconvolvers", {})
    return found


def _keep(key: Any, dec: Any) -> None:
    """Remember ``dec`` as the most recent; forget the least recent beyond the limit."""
    kept = _deconvolvers()
    kept[key] = dec
    while len(kept) > KEEP_DECONVOLVERS:
        kept.pop(next(iter(kept)))


def block_bytes(read_shape: Sequence[int], psf_shape: Sequence[int], method: str) -> int:
    """Predicted peak memory of one block (the deconvolver plus the read region and output)."""
    from ..classical import deconvolution_bytes

    n = int(np.prod(read_shape))
    return int(deconvolution_bytes(tuple(read_shape), tuple(psf_shape), method=method)) + 8 * n


@dataclass
class ClassicalRunner:
    """A classical method with every global decision already made (numbers, not "auto")."""

    psf: np.ndarray
    method: str
    iterations: int
    background: float
    regularization: float | None = None
    boundary: str = "unknown"
    initial: str = "flat"
    background_mode: str = "model"
    flat_level: float | None = None
    device: str = "auto"
    acceleration: tuple[float, ...] | None = None  # rl-accel's factors, decided once
    key: str = field(default="", init=False)

    def __post_init__(self) -> None:
        h = hashlib.sha1(np.ascontiguousarray(self.psf, np.float32).tobytes())
        h.update(repr((self.method, self.regularization, self.boundary, self.device)).encode())
        self.key = h.hexdigest()

    #: Block cores and halos are multiples of this (a network's pooling grid; 1 here).
    multiple = 1

    @property
    def iterative(self) -> bool:
        """Whether the method iterates (its halo grows with the iterations)."""
        from ..classical import ITERATIVE_METHODS

        return self.method in ITERATIVE_METHODS

    def default_halo(self) -> tuple[int, int, int]:
        """Return the halo this method needs (:func:`default_halo` of its PSF)."""
        from ._plan import default_halo

        return default_halo(self.psf, iterative=self.iterative)

    def block_bytes(self, read_shape: tuple[int, ...]) -> int:
        """Predicted peak memory of one block (:func:`block_bytes`)."""
        return block_bytes(read_shape, self.psf.shape, self.method)

    def for_block(self, block: Block) -> ClassicalRunner:
        """Return the runner of one block: this one (decided on the first frame)."""
        return self

    def __call__(self, vol: np.ndarray) -> np.ndarray:
        """Deconvolve one region (float32, same shape)."""
        from ..classical import POISSON_METHODS, Deconvolver

        if self.method in POISSON_METHODS and float(vol.max()) <= max(self.background, 0.0):
            return np.zeros(vol.shape, np.float32)  # nothing above the background here
        k = ("deconvolver", self.key, vol.shape)
        dec = _deconvolvers().pop(k, None)
        if dec is None:  # the OTF and buffers: once per block shape, per thread
            _deconvolvers().clear()  # free the previous shape's buffers first
            dec = Deconvolver(
                self.psf,
                vol.shape,
                method=self.method,
                regularization=self.regularization,
                boundary=self.boundary,
                device=self.device,
            )
        _keep(k, dec)
        dec.acceleration = list(self.acceleration) if self.acceleration else None
        out = dec(
            vol,
            iterations=self.iterations,
            background=self.background,
            initial=self.initial,
            background_mode=self.background_mode,
            flat_level=self.flat_level,
        )
        return np.asarray(out, np.float32)


@dataclass
class BlockTask:
    """One block of a run: the source (a path, or an array in this process), the output store."""

    source: Any
    voxel_size_um: Any
    target: str
    block: Block
    runner: Any


def _source(task: BlockTask) -> Any:
    if not isinstance(task.source, str | Path):
        return task.source
    from ..io import open_lazy

    cache = thread_cache()
    k = ("source", str(task.source))
    if k not in cache:
        cache[k] = open_lazy(task.source, voxel_size_um=task.voxel_size_um)
    return cache[k]


def _target(path: str) -> Any:
    import zarr

    cache = thread_cache()
    k = ("target", path)
    if k not in cache:
        cache[k] = zarr.open_array(str(Path(path) / "0"), mode="r+")
    return cache[k]


def read_region(source: Any, index: tuple[Any, ...]) -> np.ndarray:
    """Read ``source[index]`` as float32 (a LazyImage, a Dask or NumPy array)."""
    if hasattr(source, "block"):
        return source.block(index)
    region = source[index]
    if hasattr(region, "compute"):
        region = region.compute()
    return np.asarray(region, np.float32)


def run_task(task: BlockTask) -> str:
    """Process one block; return its name. Idempotent: a rerun rewrites the same voxels."""
    region = read_region(_source(task), task.block.read)
    vol = region.reshape(region.shape[-3:])
    out = task.runner(vol)[task.block.crop]
    target = _target(task.target)
    target[task.block.core] = out.reshape(tuple(s.stop - s.start for s in task.block.core))
    marker = Path(task.target) / DONE_DIR / task.block.name
    marker.touch()
    return task.block.name
