"""Images larger than memory: OME-Zarr and TIFF opened as Dask arrays, voxel size kept.

:func:`open_lazy` reads only the metadata; the pixels stay on disk until a block of the Dask
array is computed. OME-Zarr levels are read with ``dask.array.from_zarr``; a TIFF's first
series through tifffile's Zarr view of its pages (``aszarr``), so a plane-by-plane TIFF costs one
page per read. Other formats (``.npy``, z-series folders) are read whole and wrapped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import user_error
from ._image import voxel_size_3
from ._units import canonical_axes

__all__ = ["LazyImage", "open_lazy"]


@dataclass
class LazyImage:
    """A stack on disk: ``data`` a Dask array with axes ``axes`` (T, C first; Z, Y, X last)."""

    data: Any
    axes: str
    voxel_size_um: tuple[float, float, float]
    metadata: dict[str, Any] = field(default_factory=dict)
    voxel_size_assumed: bool = False
    closers: list[Any] = field(default_factory=list, repr=False)

    def close(self) -> None:
        """Close the files kept open for reading (a TIFF's page store)."""
        while self.closers:
            self.closers.pop().close()

    def __enter__(self) -> LazyImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def shape(self) -> tuple[int, ...]:
        """Return the array's shape."""
        return tuple(int(n) for n in self.data.shape)

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """Return ``(Z, Y, X)``."""
        z, y, x = self.shape[-3:]
        return (z, y, x)

    @property
    def nbytes_float32(self) -> int:
        """Return the size of the stack in float32 (what computing on it whole would hold)."""
        return int(np.prod(self.shape)) * 4

    def block(self, index: tuple[slice, ...]) -> np.ndarray:
        """Read ``data[index]`` into memory as float32."""
        return np.asarray(self.data[index].compute(), dtype=np.float32)


def open_lazy(path: str | os.PathLike, *, voxel_size_um: Any = None) -> LazyImage:
    """Open ``path`` without reading its pixels (OME-Zarr, TIFF/OME-TIFF; others read whole).

    ``voxel_size_um`` overrides the file's (z, y, x); a stack with fewer than three spatial axes
    is refused with one line.
    """
    from ._api import _valid_voxel_size, format_of, read

    p = Path(path)
    if not p.exists():
        raise user_error("file not found", path=p, fix="check the path and spelling")
    fmt = format_of(p)
    if fmt == "ome-zarr":
        lazy = _open_zarr(p)
    elif fmt in ("tiff", "ome-tiff") and p.is_file():
        lazy = _open_tiff(p)
    else:
        import dask.array as da

        img = read(p)
        lazy = LazyImage(da.from_array(img.data), img.axes, img.voxel_size_um, img.metadata)
    if not lazy.axes.endswith("ZYX"):
        raise user_error(
            f"a blocked run needs a 3D stack (Z, Y, X last), got axes {lazy.axes}",
            path=p,
            fix="check the file's axes (neurodecon info FILE)",
        )
    if voxel_size_um is not None:
        lazy.voxel_size_um = _valid_voxel_size(voxel_size_um, p)
        lazy.voxel_size_assumed = False
    return lazy


def _open_zarr(p: Path) -> LazyImage:
    import dask.array as da

    from ._zarr import ngff_level0

    array, axes, sizes, meta = ngff_level0(p)
    data, axes = canonical_axes(da.from_zarr(array), axes)
    return LazyImage(
        data,
        axes,
        voxel_size_3(s or 1.0 for s in sizes),
        {**meta, "lazy": True},
        voxel_size_assumed=any(s is None for s in sizes),
    )


def _open_tiff(p: Path) -> LazyImage:
    import dask.array as da
    import tifffile
    import zarr

    from ._tiff import tiff_voxel_size

    with tifffile.TiffFile(p) as tif:
        series = tif.series[0]
        axes = series.axes
        sizes, source, provenance = tiff_voxel_size(tif)
        fmt = "ome-tiff" if tif.is_ome else "imagej-tiff" if tif.is_imagej else "tiff"
    if "S" in axes:  # checked before the store is opened
        raise user_error(
            "an RGB TIFF cannot be processed in blocks",
            path=p,
            fix="convert one channel first (neurodecon convert), or deconvolve it whole",
        )
    store = tifffile.imread(p, aszarr=True)  # a Zarr view of the pages; opened per read
    data, axes = canonical_axes(da.from_zarr(zarr.open(store, mode="r")), axes)
    meta: dict[str, Any] = {
        "reader": "tiff",
        "source": str(p),
        "format": fmt,
        "voxel_size_source": source,
        "voxel_size_from_file": sizes,
        "lazy": True,
    }
    if provenance is not None:
        meta["provenance"] = provenance
    return LazyImage(
        data,
        axes,
        voxel_size_3(s or 1.0 for s in sizes),
        meta,
        voxel_size_assumed=any(s is None for s in sizes),
        closers=[store],
    )
