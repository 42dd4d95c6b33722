"""Public read/write entry points: format dispatch, validation, output policy, atomic writes."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import user_error
from ._image import DEFAULT_VOXEL_SIZE_UM, Image

__all__ = ["read", "write", "check_image", "format_of"]

log = logging.getLogger("neurodecon")

_TIFF = (".tif", ".tiff")
_OME_TIFF = (".ome.tif", ".ome.tiff")


def format_of(path: str | os.PathLike) -> str:
    """Format name from a path: ``ome-tiff``, ``tiff``, ``ome-zarr``, ``npy`` or ``series``."""
    p = str(path).lower().rstrip("/\\")
    if p.endswith(_OME_TIFF):
        return "ome-tiff"
    if p.endswith(_TIFF):
        return "tiff"
    if p.endswith((".zarr", ".ome.zarr")):
        return "ome-zarr"
    if p.endswith(".npy"):
        return "npy"
    if any(ch in p for ch in "*?[") or Path(path).is_dir():
        return "series"
    return "unknown"


def read(path: str | os.PathLike, *, voxel_size_um: Sequence[float] | None = None,
         check: bool = True) -> Image:
    """Read an image file into an :class:`Image`.

    Parameters
    ----------
    path : path-like
        TIFF / OME-TIFF, OME-Zarr directory, ``.npy``, or a folder/glob of single-plane TIFFs
        (read as a z-series).
    voxel_size_um : 3 floats, optional
        Override ``(z, y, x)`` in µm. Without it the file's metadata is used; when that is missing
        a warning names the assumed value.
    check : bool
        Reject NaN/Inf, empty and constant images with a one-line :class:`NeuroDeconError`.
    """
    fmt = format_of(path)
    p = Path(path)
    if fmt != "series" and not p.exists():
        raise user_error("file not found", path=path, fix="check the path and spelling")
    try:
        image = _dispatch_read(p, fmt)
    except PermissionError:
        raise user_error("permission denied", path=path,
                         fix="make the file readable (chmod) or copy it somewhere you can read") from None
    if voxel_size_um is not None:
        image.voxel_size_um = _valid_voxel_size(voxel_size_um, path)
        image.voxel_size_assumed = False
    elif image.voxel_size_assumed:
        found = image.metadata.get("voxel_size_from_file", [None] * 3)
        filled = tuple(f if f else d for f, d in zip(found, DEFAULT_VOXEL_SIZE_UM, strict=True))
        image.voxel_size_um = filled
        msg = (f"{path}: no voxel size in the metadata for some axes; assuming (z, y, x) = "
               f"{tuple(round(v, 6) for v in filled)} µm. Pass --voxel-size Z Y X to set it.")
        log.warning(msg)
        image.metadata.setdefault("warnings", []).append(msg)
    if check:
        check_image(image, path)
    return image


def _dispatch_read(p: Path, fmt: str) -> Image:
    if fmt in ("tiff", "ome-tiff"):
        from ._tiff import read_tiff

        return _guard(read_tiff, p)
    if fmt == "npy":
        try:
            data = np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise user_error(f"not a readable .npy array ({exc})", path=p,
                             fix="save it with numpy.save") from None
        axes = "ZYX"[-data.ndim:] if data.ndim <= 3 else "CZYX"[-data.ndim:]
        return Image(data=data, axes=axes, metadata={"reader": "npy", "source": str(p)},
                     voxel_size_assumed=True)
    if fmt == "ome-zarr":
        from ._zarr import read_ome_zarr

        return read_ome_zarr(p)
    if fmt == "series":
        from ._series import read_series

        return read_series(p)
    raise user_error("unrecognised file type", path=p,
                     fix="use .tif/.tiff, .ome.tif, .ome.zarr, .npy or a folder of TIFF planes")


def _guard(reader, p: Path) -> Image:
    """Turn library exceptions for broken files into one-line user errors."""
    try:
        return reader(p)
    except (PermissionError, FileNotFoundError):
        raise
    except ValueError as exc:
        text = str(exc)
        if "imagecodecs" in text or "compression" in text.lower():
            raise user_error(f"cannot decode the compression ({text})", path=p,
                             fix="install imagecodecs (pip install imagecodecs) or re-save uncompressed") from None
        raise user_error(f"not a readable TIFF ({text})", path=p,
                         fix="check that the file is a complete TIFF image") from None
    except Exception as exc:  # tifffile raises TiffFileError(Exception) for non-TIFF bytes
        if type(exc).__name__ in ("TiffFileError", "struct.error", "error", "IndexError", "KeyError"):
            raise user_error(f"not a readable TIFF ({type(exc).__name__}: {exc})", path=p,
                             fix="check that the file is a complete TIFF image") from None
        raise


def _valid_voxel_size(values: Sequence[float], path: Any = None) -> tuple[float, float, float]:
    vals = tuple(float(v) for v in values)
    if len(vals) != 3 or not all(np.isfinite(v) and v > 0 for v in vals):
        raise user_error(f"invalid voxel size {values!r}", path=path,
                         fix="give three positive numbers Z Y X in µm")
    return vals  # type: ignore[return-value]


def check_image(image: Image, path: Any = None, *, min_ndim: int = 2) -> None:
    """Reject images no algorithm can use: empty, wrong dimensionality, NaN/Inf, constant."""
    data = image.data
    if data.size == 0:
        raise user_error("the image is empty (a dimension has size 0)", path=path,
                         fix="check the export settings of the microscope software")
    if data.ndim < min_ndim:
        raise user_error(f"expected an image with at least {min_ndim} dimensions, got {data.ndim}",
                         path=path, fix="give a 3D stack (Z, Y, X)")
    if not (np.issubdtype(data.dtype, np.number) or data.dtype == bool):
        raise user_error(f"unsupported pixel type {data.dtype}", path=path,
                         fix="save the image with an integer or floating-point pixel type")
    if np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.complexfloating):
        bad = ~np.isfinite(data)
        if bad.any():
            raise user_error(f"contains {int(bad.sum())} NaN/Inf values", path=path,
                             fix="replace them (e.g. with the background value) before processing")
    if data.min() == data.max():
        raise user_error(f"the image is constant (every voxel is {data.flat[0]})", path=path,
                         fix="check that this is the right file and channel")


def write(path: str | os.PathLike, image: Image | np.ndarray, *, dtype: str = "float32",
          overwrite: bool = False, inputs: Sequence[str | os.PathLike] = (),
          provenance: dict[str, Any] | None = None,
          voxel_size_um: Sequence[float] | None = None) -> Path:
    """Write an image with the output policy every command shares.

    * ``dtype="float32"`` (default) stores values as they are; ``dtype="uint16"`` scales linearly
      to ``0..65535`` and records ``scale``/``offset`` so that ``value = stored * scale + offset``.
    * voxel size and provenance (package version, command line, parameters) go into the file;
    * the file is written to a temporary name and renamed (atomic);
    * an input is never overwritten; an existing output only with ``overwrite=True``.
    """
    out = Path(path)
    if isinstance(image, np.ndarray):
        image = Image(data=image, axes="ZYX"[-image.ndim:] if image.ndim <= 3 else "CZYX"[-image.ndim:],
                      voxel_size_um=voxel_size_um or DEFAULT_VOXEL_SIZE_UM)
    elif voxel_size_um is not None:
        image = image.with_data(image.data, voxel_size_um=tuple(voxel_size_um))
    _check_output_path(out, inputs, overwrite)
    data, scaling = _apply_dtype(image.data, dtype, out)
    extra = {
        "version": __version__,
        "command": " ".join(sys.argv) if sys.argv else "",
        "voxel_size_um": list(image.voxel_size_um),
        **({"scaling": scaling} if scaling else {}),
        **(provenance or {}),
    }
    to_write = image.with_data(data)
    fmt = format_of(out)
    if fmt == "unknown" or fmt == "series":
        raise user_error("unrecognised output type", path=out,
                         fix="end the output name with .tif, .ome.tif, .ome.zarr or .npy")
    _atomic(out, lambda tmp: _dispatch_write(tmp, to_write, fmt, extra), overwrite)
    return out


def _check_output_path(out: Path, inputs: Sequence[Any], overwrite: bool) -> None:
    resolved = out.resolve()
    for inp in inputs:
        if inp is not None and Path(inp).resolve() == resolved:
            raise user_error("refusing to overwrite an input file", path=out,
                             fix="choose a different output name")
    if out.exists() and not overwrite:
        raise user_error("output already exists", path=out,
                         fix="choose another name or pass --overwrite")
    parent = resolved.parent
    if not parent.exists():
        raise user_error("output folder does not exist", path=out, fix=f"create {parent} first")
    if not os.access(parent, os.W_OK):
        raise user_error("permission denied for the output folder", path=out,
                         fix="choose a folder you can write to")


def _apply_dtype(data: np.ndarray, dtype: str, out: Path) -> tuple[np.ndarray, dict | None]:
    if dtype in ("float32", "float"):
        arr = np.asarray(data, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise RuntimeError(f"{out}: refusing to write NaN/Inf values (this is a bug)")
        return arr, None
    if dtype == "uint16":
        arr = np.asarray(data, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise RuntimeError(f"{out}: refusing to write NaN/Inf values (this is a bug)")
        lo, hi = float(arr.min()), float(arr.max())
        scale = (hi - lo) / 65535.0 if hi > lo else 1.0
        stored = np.rint((arr - lo) / scale).astype(np.uint16)
        return stored, {"dtype": "uint16", "scale": scale, "offset": lo,
                        "meaning": "value = stored * scale + offset"}
    raise user_error(f"unsupported output dtype {dtype!r}", path=out, fix="use float32 or uint16")


def _dispatch_write(tmp: Path, image: Image, fmt: str, extra: dict) -> None:
    if fmt in ("tiff", "ome-tiff"):
        from ._tiff import write_tiff

        write_tiff(tmp, image, ome=(fmt == "ome-tiff"), extra=extra)
    elif fmt == "npy":
        with open(tmp, "wb") as fh:
            np.save(fh, image.data, allow_pickle=False)
    elif fmt == "ome-zarr":
        from ._zarr import write_ome_zarr

        write_ome_zarr(tmp, image, extra=extra)


def _atomic(out: Path, writer, overwrite: bool) -> None:
    """Write to a temporary sibling, then rename over ``out``."""
    import shutil

    suffix = "".join(out.suffixes) or ".tmp"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=f".partial{suffix}", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        writer(tmp)
        if out.exists() and overwrite:
            if out.is_dir():
                shutil.rmtree(out)
            else:
                out.unlink()
        os.replace(tmp, out)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise
