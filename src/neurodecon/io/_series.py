"""A folder or glob of single-plane TIFFs read as one z-stack (z-series)."""

from __future__ import annotations

import glob as _glob
import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import user_error
from ._image import Image, voxel_size_3
from ._rgb import pick_data_channel
from ._units import canonical_axes, unit_to_um

__all__ = ["read_series", "series_files", "natural_key"]

log = logging.getLogger("neurodecon")

_TIFF_SUFFIXES = (".tif", ".tiff")


def natural_key(path: Path) -> list:
    """Sort key that orders ``z2`` before ``z10`` (numbers compared as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _pattern(path: Path) -> str:
    return re.sub(r"\d+", "#", path.name.lower())


def series_files(path: str | Path) -> list[Path]:
    """Return the TIFF planes of a folder (not its sub-folders) or glob, in natural order."""
    text = str(path)
    if any(ch in text for ch in "*?["):
        files = [Path(f) for f in _glob.glob(text) if Path(f).is_file()]
        if not files:
            raise user_error(
                "no files match this pattern",
                path=path,
                fix="check the folder and the pattern (e.g. 'stack/*.tif')",
            )
    else:
        folder = Path(path)
        if not folder.is_dir():
            raise user_error("file not found", path=path, fix="check the path and spelling")
        files = [
            p
            for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in _TIFF_SUFFIXES and not p.name.startswith(".")
        ]
        if not files:
            raise user_error(
                "no TIFF files in this folder",
                path=path,
                fix="give a folder of single-plane .tif files, or a glob such as 'dir/*.tif'",
            )
        patterns = sorted({_pattern(p) for p in files})
        if len(patterns) > 1:
            raise user_error(
                f"the folder holds TIFFs named in {len(patterns)} different patterns "
                f"({', '.join(patterns[:3])})",
                path=path,
                fix="give a glob that selects one series, e.g. 'dir/name_z*.tif'",
            )
    return sorted(files, key=natural_key)


def _read_plane(path: Path) -> tuple[np.ndarray, str, bool]:
    import tifffile

    from ._tiff import guard_tiff, tifffile_messages

    def _read(p: Path):
        with tifffile_messages() as notes, tifffile.TiffFile(p) as tif:
            series = tif.series[0]
            rgb = tif.pages.first.photometric == tifffile.PHOTOMETRIC.RGB
            data = series.asarray()
        if any("invalid page offset" in n or "invalid value offset" in n for n in notes):
            raise user_error(
                "the file is damaged or truncated",
                path=p,
                fix="copy it again from the source; only part of it could be read",
            )
        return data, series.axes.upper(), rgb

    data, axes, rgb = guard_tiff(_read, path)
    if set(axes) - set("YXS") or data.ndim > 3:
        raise user_error(
            f"is a stack of shape {data.shape} (axes {axes}), not a single plane",
            path=path,
            fix="read that file on its own, or remove it from the series",
        )
    return data, axes, rgb


def read_series(path: str | Path) -> Image:
    """Read a z-series: one 2D (or RGB) TIFF per plane, sorted by the number in the name.

    Planes must share shape and pixel type. RGB planes where only one channel holds data are
    reduced to that channel (recorded in ``metadata["channel_picked"]``). The x/y voxel size comes
    from the first plane's TIFF metadata; z from an ImageJ ``spacing`` or from a Leica LAS export
    (``MetaData/*.xml`` beside the planes) when present, else it is reported as unknown.
    """
    files = series_files(path)
    first, axes, rgb = _read_plane(files[0])
    stack = np.empty((len(files), *first.shape), dtype=first.dtype)
    stack[0] = first
    for i, f in enumerate(files[1:], start=1):
        plane, _, _ = _read_plane(f)
        if plane.shape != first.shape or plane.dtype != first.dtype:
            raise user_error(
                f"plane {i} has shape {plane.shape} {plane.dtype}, but {files[0].name} "
                f"has {first.shape} {first.dtype}",
                path=f,
                fix="all planes of a z-series must have the same size and pixel type",
            )
        stack[i] = plane
    meta: dict[str, Any] = {
        "reader": "series",
        "source": str(path),
        "format": "tiff-series",
        "n_files": len(files),
        "first_file": files[0].name,
        "last_file": files[-1].name,
        "series_files": [str(f) for f in files],
    }
    data, out_axes = canonical_axes(stack, "Z" + axes)
    if rgb and "C" in out_axes:
        data, out_axes = pick_data_channel(data, out_axes, path, meta)
    sizes, source = _series_voxel_size(files, data.shape[-3:])
    meta["voxel_size_from_file"] = sizes
    meta["voxel_size_source"] = source
    return Image(
        data=data,
        axes=out_axes,
        metadata=meta,
        voxel_size_um=voxel_size_3(s or 1.0 for s in sizes),
        voxel_size_assumed=any(s is None for s in sizes),
    )


def _series_voxel_size(files: list[Path], shape: tuple[int, ...]) -> tuple[list, str]:
    import tifffile

    from ._tiff import tiff_voxel_size

    with tifffile.TiffFile(files[0]) as tif:
        sizes, source, _ = tiff_voxel_size(tif)
    source = f"{source} of {files[0].name}"
    leica = _leica_voxel_size(files, shape)
    if leica is not None:
        xml_sizes, xml_name = leica
        sizes = [x if x is not None else s for x, s in zip(xml_sizes, sizes, strict=True)]
        source = f"Leica LAS metadata {xml_name}"
    return sizes, source


def _leica_voxel_size(files: list[Path], shape: tuple[int, ...]) -> tuple[list, str] | None:
    """Voxel size from a Leica LAS ``MetaData/<series>.xml`` (pixel size = Length / (N - 1))."""
    folder = files[0].parent
    stem = files[0].name.lower()
    for xml in sorted([*folder.glob("*.xml"), *folder.glob("MetaData/*.xml")]):
        name = xml.stem.lower()
        if name.endswith("_properties") or not stem.startswith(name):
            continue
        sizes = _parse_leica_dimensions(xml, shape)
        if sizes is not None:
            return sizes, xml.name
    return None


def _parse_leica_dimensions(xml: Path, shape: tuple[int, ...]) -> list | None:
    try:
        root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError):
        return None
    axis_of = {"1": 2, "X": 2, "2": 1, "Y": 1, "3": 0, "Z": 0}
    sizes: list = [None, None, None]
    for dim in root.iter("DimensionDescription"):
        i = axis_of.get(str(dim.get("DimID", "")).upper())
        try:
            n, length = int(dim.get("NumberOfElements", 0)), float(dim.get("Length", "nan"))
        except ValueError:
            continue
        scale = unit_to_um(dim.get("Unit"))
        if i is None or scale is None or n < 2 or not np.isfinite(length) or length <= 0:
            continue
        if n != shape[i]:
            log.info(
                f"{xml}: its {'ZYX'[i]} size {n} differs from the images ({shape[i]}); ignored"
            )
            return None
        sizes[i] = length * scale / (n - 1)
    return sizes if any(s is not None for s in sizes) else None
