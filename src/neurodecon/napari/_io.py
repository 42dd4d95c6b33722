"""Reader and writer contributions: :func:`neurodecon.read` and :func:`neurodecon.write`.

The voxel size in the file becomes the layer's ``scale`` (µm), and the layer's scale is written
back as the file's voxel size. No Qt imports.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..io import Image, format_of, read, write
from ._layers import image_layer_data

__all__ = ["get_reader", "read_layers", "write_image"]

LayerData = tuple[Any, dict[str, Any], str]


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """Return :func:`read_layers` if NeuroDecon reads ``path`` (one path), else ``None``."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    fmt = format_of(path)
    if fmt in ("tiff", "ome-tiff", "ome-zarr", "npy"):
        return read_layers
    folder = Path(path)
    if fmt == "series" and folder.is_dir() and any(_is_tiff(p) for p in folder.iterdir()):
        return read_layers  # a folder of single-plane TIFFs: one z-stack
    return None


def _is_tiff(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".tif", ".tiff")


def read_layers(path: str | list[str]) -> list[LayerData]:
    """Read one stack with :func:`neurodecon.read`; its voxel size becomes the layer's scale."""
    if isinstance(path, list):
        path = path[0]
    image = read(path)
    name = Path(str(path).rstrip("/\\")).name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".zarr", ".npy"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    metadata = {"neurodecon": {"source": str(path), "axes": image.axes}}
    return [image_layer_data(image, name, metadata=metadata)]


def write_image(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write one image layer with :func:`neurodecon.write`; its scale becomes the voxel size.

    The pixel type is kept (``dtype="keep"``); napari's save dialog has already asked before
    replacing an existing file.
    """
    arr = np.asarray(data)
    if arr.ndim < 3:
        from ..errors import user_error

        raise user_error(
            f"the layer has {arr.ndim} dimensions; NeuroDecon writes 3-D stacks",
            path=path,
            fix="save a z-stack, or use napari's built-in writer for 2-D images",
        )
    scale = [float(s) for s in meta.get("scale") or [1.0] * arr.ndim]
    axes = {3: "ZYX", 4: "CZYX", 5: "TCZYX"}.get(arr.ndim)
    if axes is None:
        from ..errors import user_error

        raise user_error(
            f"the layer has {arr.ndim} dimensions", path=path, fix="save a 3-5-D stack"
        )
    image = Image(arr, voxel_size_um=(scale[-3], scale[-2], scale[-1]), axes=axes)
    out = write(os.fspath(path), image, dtype="keep", overwrite=True)
    return [str(out)]
