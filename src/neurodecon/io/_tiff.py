"""TIFF reading and writing via tifffile, keeping voxel sizes.

Handles ImageJ hyperstacks, OME-TIFF and plain TIFF. Voxel-size rules when reading (first match
per axis wins):

1. OME-TIFF: ``Pixels/@PhysicalSize{X,Y,Z}`` with ``PhysicalSize*Unit`` (default µm; nm, mm, ...
   converted).
2. ImageJ TIFF: ``X/YResolution`` tags (pixels per ``unit``), ``spacing`` for z, the ``unit``
   (also ``yunit``/``zunit``) from the ImageJ description; ``pixel`` or no unit = uncalibrated.
3. Plain TIFF: ``X/YResolution`` with ``ResolutionUnit`` centimetre, or inch when the value is not a
   screen/print resolution (≤ 1200 dpi = pixels ≥ 21 µm are taken as a display DPI, e.g. the
   72 dpi that many programs write, and ignored).
4. For files written by NeuroDecon: the ``voxel_size_um`` stored in its provenance record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import user_error
from ._image import Image, voxel_size_3
from ._rgb import pick_data_channel
from ._tiff_axes import series_data
from ._units import canonical_axes, unit_to_um

__all__ = ["read_tiff", "write_tiff", "tiff_voxel_size", "guard_tiff", "tifffile_messages"]

log = logging.getLogger("neurodecon")

#: Pixel types an ImageJ hyperstack can hold; others are written as plain TIFF with JSON metadata.
IMAGEJ_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
_MAX_DISPLAY_DPI = 1200.0

Sizes = list  # [z, y, x] in µm, None where unknown


def _ome_pixels(tif) -> tuple[Any, Any]:
    root = ET.fromstring(tif.ome_metadata)
    image = next((el for el in root.iter() if el.tag.endswith("}Image") or el.tag == "Image"), None)
    pixels = next(
        (el for el in root.iter() if el.tag.endswith("}Pixels") or el.tag == "Pixels"), None
    )
    return image, pixels


def _ome_voxel_size(pixels) -> Sizes:
    sizes: Sizes = [None, None, None]
    if pixels is None:
        return sizes
    for i, ax in enumerate("ZYX"):
        val = pixels.get(f"PhysicalSize{ax}")
        scale = unit_to_um(pixels.get(f"PhysicalSize{ax}Unit", "µm"))
        if val is not None and scale is not None and float(val) > 0:
            sizes[i] = float(val) * scale
    return sizes


def _ome_provenance(image_el) -> Any:
    if image_el is None:
        return None
    desc = next((el for el in image_el if el.tag.endswith("Description")), None)
    if desc is None or not desc.text:
        return None
    parsed = _maybe_json(desc.text)
    if isinstance(parsed, dict):
        return parsed.get("neurodecon", parsed)
    return None


def _pixels_per_unit(page, key: str) -> float | None:
    tag = page.tags.get(key)
    if tag is None:
        return None
    value = tag.value
    num, den = value if isinstance(value, tuple) else (value, 1)
    if not num or not den:
        return None
    return float(num) / float(den)


def _imagej_voxel_size(tif) -> Sizes:
    ij = tif.imagej_metadata or {}
    page = tif.pages.first
    sizes: Sizes = [None, None, None]
    unit = ij.get("unit")
    units = {"x": unit, "y": ij.get("yunit", unit), "z": ij.get("zunit", unit)}
    for i, (key, ax) in ((1, ("YResolution", "y")), (2, ("XResolution", "x"))):
        ppu, scale = _pixels_per_unit(page, key), unit_to_um(units[ax])
        if ppu and scale is not None:
            sizes[i] = scale / ppu
    spacing, zscale = ij.get("spacing"), unit_to_um(units["z"])
    if spacing is not None and zscale is not None and float(spacing) != 0:
        sizes[0] = abs(float(spacing)) * zscale
    return sizes


def _tag_voxel_size(page) -> Sizes:
    """Return x/y from a plain TIFF's resolution tags (cm, or inch unless it is a display DPI)."""
    sizes: Sizes = [None, None, None]
    unit_tag = page.tags.get("ResolutionUnit")
    unit = int(unit_tag.value) if unit_tag is not None else 2  # TIFF default: inch
    for i, key in ((1, "YResolution"), (2, "XResolution")):
        ppu = _pixels_per_unit(page, key)
        if not ppu:
            continue
        if unit == 3:
            sizes[i] = 1e4 / ppu
        elif unit == 2 and ppu > _MAX_DISPLAY_DPI:
            sizes[i] = 25400.0 / ppu
    return sizes


def tiff_voxel_size(tif) -> tuple[Sizes, str, Any]:
    """``([z, y, x] µm or None, description of the source, neurodecon provenance or None)``."""
    provenance = None
    if tif.is_ome and tif.ome_metadata:
        image_el, pixels = _ome_pixels(tif)
        sizes, source = _ome_voxel_size(pixels), "OME-XML PhysicalSize"
        provenance = _ome_provenance(image_el)
    elif tif.is_imagej:
        sizes, source = _imagej_voxel_size(tif), "ImageJ calibration (resolution, spacing, unit)"
        if sizes[1] is None and sizes[2] is None:  # no ImageJ unit: the TIFF tags may say
            tags = _tag_voxel_size(tif.pages.first)
            if tags[1] is not None:
                sizes[1:], source = tags[1:], f"{source} + TIFF resolution tags"
        ij = tif.imagej_metadata or {}
        if "neurodecon" in ij:
            provenance = _maybe_json(ij["neurodecon"])
    else:
        sizes, source = _tag_voxel_size(tif.pages.first), "TIFF resolution tags"
    if provenance is None:
        provenance = _shaped_provenance(tif)
    if isinstance(provenance, dict) and any(s is None for s in sizes):
        stored = provenance.get("voxel_size_um")
        if isinstance(stored, (list, tuple)) and len(stored) == 3:
            filled = [s if s is not None else float(v) for s, v in zip(sizes, stored, strict=True)]
            if filled != sizes:
                sizes, source = filled, f"{source} + NeuroDecon metadata"
    return sizes, source, provenance


def _shaped_provenance(tif) -> Any:
    desc = tif.pages.first.description
    if desc and desc.lstrip().startswith("{") and "neurodecon" in desc:
        parsed = _maybe_json(desc)
        if isinstance(parsed, dict):
            return _maybe_json(parsed.get("neurodecon", parsed))
    return None


def _compression_name(p: Path) -> str:
    try:
        import tifffile

        with tifffile.TiffFile(p) as tif:
            return str(getattr(tif.pages.first.compression, "name", tif.pages.first.compression))
    except Exception:  # best effort, only for the message
        return "unknown"


def guard_tiff(reader: Callable[[Path], Any], p: Path) -> Any:
    """Run ``reader(p)``; turn tifffile/imagecodecs failures into one-line user errors.

    Failures on broken, truncated or oddly compressed files become :class:`NeuroDeconError`
    naming the file and the fix; a missing file, a permission error and unrelated exceptions
    pass through unchanged.
    """
    import tifffile

    try:
        return reader(p)
    except (PermissionError, FileNotFoundError):
        raise
    except tifffile.TiffFileError as exc:
        raise user_error(
            f"not a TIFF image ({exc})",
            path=p,
            fix="check that this is the right file and that it was copied completely",
        ) from None
    except ValueError as exc:
        text = str(exc)
        if "imagecodecs" in text:
            raise user_error(
                f"cannot decode the {_compression_name(p)} compression: the "
                "imagecodecs package is missing",
                path=p,
                fix="pip install imagecodecs, or re-save the file uncompressed",
            ) from None
        if "COMPRESSION" in text:
            raise user_error(
                f"unsupported TIFF compression ({text})",
                path=p,
                fix="re-save the file uncompressed or with LZW/Deflate (e.g. in Fiji: "
                "File > Save As > Tiff)",
            ) from None
        raise user_error(
            f"not a readable TIFF ({text})",
            path=p,
            fix="check that the file is a complete TIFF image",
        ) from None
    except Exception as exc:
        if type(exc).__module__.split(".")[0] == "imagecodecs":
            raise user_error(
                f"the {_compression_name(p)}-compressed data cannot be decoded "
                f"({type(exc).__name__}: {exc})",
                path=p,
                fix="the file is damaged or uses a codec variant imagecodecs cannot read; "
                "re-export it uncompressed",
            ) from None
        if (
            isinstance(exc, (OSError, EOFError, IndexError, KeyError))
            or type(exc).__name__ == "error"
        ):
            raise user_error(
                f"not a readable TIFF ({type(exc).__name__}: {exc})",
                path=p,
                fix="check that the file is a complete TIFF image",
            ) from None
        raise


@contextlib.contextmanager
def tifffile_messages() -> Iterator[list[str]]:
    """Collect what tifffile logs (damaged-file notices) instead of letting it print raw lines."""
    records: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger, handler = logging.getLogger("tifffile"), _Collect(level=logging.WARNING)
    old_propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate


def read_tiff(path: Path) -> Image:
    """Read a TIFF into an :class:`Image` (axes from the file's series, voxel size from metadata).

    A truncated file (tifffile reports invalid page or value offsets) is refused rather than read
    partially. Only the first image series is read; others are named in a warning.
    """
    import tifffile

    with tifffile_messages() as notes, tifffile.TiffFile(path) as tif:
        data, axes, rgb, others = series_data(tif, path)
        page = tif.pages.first
        sizes, source, provenance = tiff_voxel_size(tif)
        fmt = "ome-tiff" if tif.is_ome else "imagej-tiff" if tif.is_imagej else "tiff"
        compression = str(getattr(page.compression, "name", page.compression)).lower()
    damaged = [n for n in notes if "invalid page offset" in n or "invalid value offset" in n]
    if damaged:
        raise user_error(
            f"the file is damaged or truncated ({damaged[0]})",
            path=path,
            fix="copy it again from the source; only part of it could be read",
        )
    warnings = [f"{path}: tifffile: {n}" for n in notes]
    if others:
        warnings.append(
            f"{path}: the file holds {len(others) + 1} image series; read the first "
            f"{tuple(data.shape)} and ignored {', '.join(map(str, others))}"
        )
    for w in warnings:
        log.warning(w)
    meta: dict[str, Any] = {
        "reader": "tiff",
        "source": str(path),
        "format": fmt,
        "compression": compression,
        "voxel_size_source": source,
    }
    if warnings:
        meta["warnings"] = warnings
    if provenance is not None:
        meta["provenance"] = provenance
        if isinstance(provenance, dict) and "scaling" in provenance:
            meta["scaling"] = provenance["scaling"]
    data, axes = canonical_axes(data, axes)
    if rgb:
        data, axes = pick_data_channel(data, axes, path, meta)
    meta["voxel_size_from_file"] = sizes
    return Image(
        data=data,
        axes=axes,
        metadata=meta,
        voxel_size_um=voxel_size_3(s or 1.0 for s in sizes),
        voxel_size_assumed=any(s is None for s in sizes),
    )


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _imagej_order(data: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Transpose canonical ``TCZYX`` data into the ``TZCYX`` order ImageJ hyperstacks need."""
    target = "".join(a for a in "TZCYX" if a in axes)
    if sorted(target) != sorted(axes):
        raise ValueError(f"axes {axes!r} cannot be stored in an ImageJ TIFF")
    return np.transpose(data, [axes.index(a) for a in target]), target


def write_tiff(path: Path, image: Image, *, ome: bool, extra: dict[str, Any]) -> None:
    """Write ``image`` as OME-TIFF (``ome=True``), an ImageJ hyperstack, or a plain TIFF.

    Pixel types ImageJ cannot hold (int32, float64, ...) go to a plain TIFF whose resolution tags
    (centimetre) carry x/y and whose JSON description carries z and the provenance, so they
    round-trip without loss.
    """
    import tifffile

    vz, vy, vx = image.voxel_size_um
    data, axes = image.data, image.axes
    if ome:
        md = {
            "axes": axes,
            "PhysicalSizeX": vx,
            "PhysicalSizeXUnit": "µm",
            "PhysicalSizeY": vy,
            "PhysicalSizeYUnit": "µm",
            "PhysicalSizeZ": vz,
            "PhysicalSizeZUnit": "µm",
        }
        if extra:
            md["Description"] = json.dumps({"neurodecon": extra})
        tifffile.imwrite(path, data, ome=True, metadata=md, photometric="minisblack")
    elif data.dtype in IMAGEJ_DTYPES and set(axes) <= set("TZCYX"):
        data, ij_axes = _imagej_order(data, axes)
        md = {"spacing": vz, "unit": "um", "axes": ij_axes}
        if extra:
            md["neurodecon"] = json.dumps(extra)
        tifffile.imwrite(
            path,
            data,
            imagej=True,
            resolution=(1.0 / vx, 1.0 / vy),
            metadata=md,
            photometric="minisblack",
        )
    else:
        md = {"axes": axes, "neurodecon": {**extra, "voxel_size_um": [vz, vy, vx]}}
        tifffile.imwrite(
            path,
            data,
            resolution=(1e4 / vx, 1e4 / vy),
            resolutionunit="CENTIMETER",
            metadata=md,
            photometric="minisblack",
        )
