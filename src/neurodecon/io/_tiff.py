"""TIFF reading and writing (ImageJ hyperstacks and OME-TIFF) via tifffile, keeping voxel sizes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ._image import Image

__all__ = ["read_tiff", "write_tiff"]

_UNIT_TO_UM = {
    "um": 1.0, "µm": 1.0, "\\u00B5m": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
    "nm": 1e-3, "nanometer": 1e-3, "mm": 1e3, "millimeter": 1e3, "cm": 1e4, "m": 1e6,
}


def _unit_scale(unit: str | None) -> float | None:
    if unit is None:
        return 1.0
    return _UNIT_TO_UM.get(str(unit).strip().lower().replace("\u00b5", "µ"), None)


def _ome_voxel_size(tif) -> tuple[list[float | None], str | None]:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(tif.ome_metadata)
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return [None, None, None], None
    sizes: list[float | None] = []
    for ax in "ZYX":
        val = pixels.get(f"PhysicalSize{ax}")
        unit = pixels.get(f"PhysicalSize{ax}Unit", "µm")
        scale = _unit_scale(unit)
        sizes.append(float(val) * scale if (val is not None and scale is not None) else None)
    return sizes, pixels.get("DimensionOrder")


def _resolution_um(page, key: str) -> float | None:
    tag = page.tags.get(key)
    if tag is None:
        return None
    num, den = tag.value
    if num == 0:
        return None
    ppu = num / den  # pixels per unit
    unit_tag = page.tags.get("ResolutionUnit")
    unit = int(unit_tag.value) if unit_tag is not None else 2
    return (1.0 / ppu), unit


def _imagej_voxel_size(tif) -> list[float | None]:
    ij = tif.imagej_metadata or {}
    page = tif.pages.first
    unit = ij.get("unit", None)
    scale = _unit_scale(unit) if unit is not None else None
    sizes: list[float | None] = [None, None, None]
    if "spacing" in ij and scale is not None:
        sizes[0] = float(ij["spacing"]) * scale
    for i, key in ((1, "YResolution"), (2, "XResolution")):
        res = _resolution_um(page, key)
        if res is None or scale is None:
            continue
        value, _ = res
        # ImageJ writes 1 pixel/unit when uncalibrated; unit "pixel" has no scale -> stays None
        sizes[i] = float(value) * scale
    return sizes


def read_tiff(path: Path, *, key: int | None = None) -> Image:
    """Read a TIFF into an :class:`Image` (axes from the file's series, voxel size from metadata)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        data = series.asarray() if key is None else tif.asarray(key=key)
        axes = series.axes.upper() if key is None else "YX"
        meta: dict[str, Any] = {"reader": "tiff", "source": str(path)}
        sizes: list[float | None] = [None, None, None]
        if tif.is_ome and tif.ome_metadata:
            sizes, _ = _ome_voxel_size(tif)
            meta["format"] = "ome-tiff"
        elif tif.is_imagej:
            sizes = _imagej_voxel_size(tif)
            meta["format"] = "imagej-tiff"
            ij = tif.imagej_metadata or {}
            if "neurodecon" in ij:
                meta["provenance"] = _maybe_json(ij["neurodecon"])
        else:
            meta["format"] = "tiff"
        desc = tif.pages.first.description
        if desc and desc.startswith("{") and "neurodecon" in desc:
            parsed = _maybe_json(desc)
            if isinstance(parsed, dict):
                meta["provenance"] = parsed.get("neurodecon", parsed)
    axes = axes.replace("Q", "Z") if axes.count("Q") == 1 and "Z" not in axes else axes
    meta["voxel_size_from_file"] = sizes
    return Image(data=data, axes=axes, metadata=meta, voxel_size_um=tuple(s or 1.0 for s in sizes),
                 voxel_size_assumed=any(s is None for s in sizes))


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def write_tiff(path: Path, image: Image, *, ome: bool, extra: dict[str, Any]) -> None:
    """Write ``image`` as OME-TIFF (``ome=True``) or an ImageJ hyperstack, voxel size included."""
    import tifffile

    vz, vy, vx = image.voxel_size_um
    data = image.data
    if ome:
        md = {
            "axes": image.axes,
            "PhysicalSizeX": vx, "PhysicalSizeXUnit": "µm",
            "PhysicalSizeY": vy, "PhysicalSizeYUnit": "µm",
            "PhysicalSizeZ": vz, "PhysicalSizeZUnit": "µm",
        }
        if extra:
            md["Description"] = json.dumps({"neurodecon": extra})
        tifffile.imwrite(path, data, ome=True, metadata=md, photometric="minisblack")
    else:
        if data.dtype == np.float64:
            data = data.astype(np.float32)
        md = {"spacing": vz, "unit": "um", "axes": image.axes}
        if extra:
            md["neurodecon"] = json.dumps(extra)
        tifffile.imwrite(path, data, imagej=True, resolution=(1.0 / vx, 1.0 / vy), metadata=md,
                         photometric="minisblack")
