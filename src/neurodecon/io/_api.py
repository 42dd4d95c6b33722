"""Public read/write entry points: format dispatch, validation, output policy, atomic writes."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import user_error
from ._image import DEFAULT_VOXEL_SIZE_UM, Image
from ._units import default_axes

__all__ = ["read", "write", "check_image", "format_of", "guard_tiff"]

log = logging.getLogger("neurodecon")

_TIFF = (".tif", ".tiff")
_OME_TIFF = (".ome.tif", ".ome.tiff")
_FIX_FORMATS = "use .tif/.tiff, .ome.tif, .ome.zarr, .npy or a folder of TIFF planes"


def format_of(path: str | os.PathLike) -> str:
    """Format name from a path: ``ome-tiff``, ``tiff``, ``ome-zarr``, ``npy``, ``series`` or ``unknown``."""
    p = str(path).lower().rstrip("/\\")
    if any(ch in p for ch in "*?["):
        return "series"
    if p.endswith(_OME_TIFF):
        return "ome-tiff"
    if p.endswith(_TIFF):
        return "tiff"
    if p.endswith(".zarr"):
        return "ome-zarr"
    if p.endswith(".npy"):
        return "npy"
    if Path(path).is_dir():
        return "series"
    return "unknown"


def read(
    path: str | os.PathLike,
    *,
    voxel_size_um: Sequence[float] | None = None,
    check: bool = True,
    unscale: bool = False,
) -> Image:
    """Read an image file into an :class:`Image`.

    Parameters
    ----------
    path : path-like
        TIFF / OME-TIFF, OME-Zarr folder, ``.npy``, or a folder/glob of single-plane TIFFs
        (read as a z-series, natural order of the numbers in the names).
    voxel_size_um : 3 floats, optional
        Override ``(z, y, x)`` in µm. Without it the file's metadata is used; axes it does not
        give are set to 1 µm with a warning that names the assumption.
    check : bool
        Reject NaN/Inf, empty and constant images with a one-line :class:`NeuroDeconError`.
    unscale : bool
        For files written with ``dtype="uint16"`` (scaling recorded in the metadata), return
        float32 values ``stored * scale + offset`` instead of the stored integers.
    """
    fmt = format_of(path)
    p = Path(path)
    if fmt != "series" and not p.exists():
        raise user_error("file not found", path=path, fix="check the path and spelling")
    try:
        image = _dispatch_read(p, fmt)
    except PermissionError:
        raise user_error(
            "permission denied",
            path=path,
            fix="make the file readable (chmod) or copy it somewhere you can read",
        ) from None
    _restore_recorded_shape(image)
    if voxel_size_um is not None:
        image.voxel_size_um = _valid_voxel_size(voxel_size_um, path)
        image.voxel_size_assumed = False
        image.metadata["voxel_size_source"] = "given by the user"
    elif image.voxel_size_assumed:
        _assume_voxel_size(image, path)
    if unscale and isinstance(image.metadata.get("scaling"), dict):
        s = image.metadata["scaling"]
        data = image.data.astype(np.float32) * np.float32(s["scale"]) + np.float32(s["offset"])
        image = image.with_data(data)
    if check:
        check_image(image, path)
    return image


def _restore_recorded_shape(image: Image) -> None:
    """Put back length-1 axes (e.g. a single z-plane) that a TIFF reader squeezed away.

    Only for files whose NeuroDecon provenance records the written ``shape`` and ``axes``, and only
    when the data differ from that shape by length-1 axes alone.
    """
    prov = image.metadata.get("provenance")
    if not isinstance(prov, dict) or "shape" not in prov or "axes" not in prov:
        return
    shape, axes = tuple(int(s) for s in prov["shape"]), str(prov["axes"])
    if shape == image.data.shape or len(shape) != len(axes):
        return
    if [n for n in shape if n != 1] == [n for n in image.data.shape if n != 1]:
        image.data = image.data.reshape(shape)
        image.axes = axes


def _assume_voxel_size(image: Image, path: Any) -> None:
    found = image.metadata.get("voxel_size_from_file") or [None] * 3
    filled = tuple(f if f else d for f, d in zip(found, DEFAULT_VOXEL_SIZE_UM, strict=True))
    missing = "".join(ax for ax, f in zip("zyx", found, strict=True) if not f)
    image.voxel_size_um = filled
    msg = (
        f"{path}: no voxel size for {'/'.join(missing)} in the metadata; assuming (z, y, x) = "
        f"({', '.join(f'{v:.6g}' for v in filled)}) µm. Pass --voxel-size Z Y X to set it"
    )
    log.warning(msg)
    image.metadata.setdefault("warnings", []).append(msg)
    image.metadata["voxel_size_source"] = (
        image.metadata.get("voxel_size_source", "")
        + f"; assumed {DEFAULT_VOXEL_SIZE_UM[0]:g} µm for {missing}"
    ).lstrip("; ")


def _dispatch_read(p: Path, fmt: str) -> Image:
    if fmt in ("tiff", "ome-tiff"):
        if p.is_dir():
            raise user_error(
                "is a folder, not a TIFF file",
                path=p,
                fix="give the folder without the .tif ending to read it as a z-series",
            )
        from ._tiff import read_tiff

        return guard_tiff(read_tiff, p)
    if fmt == "npy":
        return _read_npy(p)
    if fmt == "ome-zarr":
        from ._zarr import read_ome_zarr

        return read_ome_zarr(p)
    if fmt == "series":
        from ._series import read_series

        return read_series(p)
    raise user_error("unrecognised file type", path=p, fix=_FIX_FORMATS)


def _read_npy(p: Path) -> Image:
    try:
        data = np.load(p, allow_pickle=False)
    except PermissionError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise user_error(
            f"not a readable .npy array ({exc})",
            path=p,
            fix="save it with numpy.save, or give a TIFF",
        ) from None
    axes = default_axes(data.ndim)
    if axes is None:
        raise user_error(
            f"a {data.ndim}D array has no axis order this tool understands (shape {data.shape})",
            path=p,
            fix="save at most 5 axes in the order T, C, Z, Y, X",
        )
    return Image(
        data=data,
        axes=axes,
        voxel_size_assumed=True,
        metadata={
            "reader": "npy",
            "source": str(p),
            "format": "npy",
            "voxel_size_from_file": [None, None, None],
        },
    )


def _compression_name(p: Path) -> str:
    try:
        import tifffile

        with tifffile.TiffFile(p) as tif:
            return str(getattr(tif.pages.first.compression, "name", tif.pages.first.compression))
    except Exception:  # best effort, only for the message
        return "unknown"


def guard_tiff(reader: Callable[[Path], Any], p: Path) -> Any:
    """Run ``reader(p)``; turn tifffile/imagecodecs failures on broken files into one-line user errors."""
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


def _valid_voxel_size(values: Sequence[float], path: Any = None) -> tuple[float, float, float]:
    vals = tuple(float(v) for v in values)
    if len(vals) != 3 or not all(np.isfinite(v) and v > 0 for v in vals):
        raise user_error(
            f"invalid voxel size {values!r}",
            path=path,
            fix="give three positive numbers Z Y X in µm",
        )
    return vals  # type: ignore[return-value]


def check_image(
    image: Image,
    path: Any = None,
    *,
    min_ndim: int = 2,
    ndim: int | None = None,
    allow_constant: bool = False,
) -> None:
    """Reject images no algorithm can use, with a one-line :class:`NeuroDeconError`.

    Checks: not empty, at least ``min_ndim`` dimensions (exactly ``ndim`` when given, e.g. 3
    for a ``(Z, Y, X)`` stack), a numeric pixel type, no NaN/Inf, not constant (unless
    ``allow_constant``).
    """
    data = image.data
    if data.size == 0:
        raise user_error(
            f"the image is empty (shape {data.shape})",
            path=path,
            fix="check the export settings of the microscope software",
        )
    if ndim is not None and data.ndim != ndim:
        raise user_error(
            f"expected a {ndim}D image ({'ZYX'[-ndim:] if ndim <= 3 else 'CZYX'}), got "
            f"{data.ndim}D with axes {image.axes} and shape {data.shape}",
            path=path,
            fix="select one channel/time point first (e.g. in Fiji: Image > Duplicate)"
            if data.ndim > ndim
            else "give a 3D stack (Z, Y, X)",
        )
    if data.ndim < min_ndim:
        raise user_error(
            f"expected an image with at least {min_ndim} dimensions, got {data.ndim} "
            f"(shape {data.shape})",
            path=path,
            fix="give a 3D stack (Z, Y, X)",
        )
    if not (np.issubdtype(data.dtype, np.number) or data.dtype == bool):
        raise user_error(
            f"unsupported pixel type {data.dtype}",
            path=path,
            fix="save the image with an integer or floating-point pixel type",
        )
    if np.issubdtype(data.dtype, np.inexact):
        finite = np.isfinite(data)
        if not finite.all():
            n_nan = int(np.isnan(data).sum())
            raise user_error(
                f"contains {n_nan} NaN and {int(finite.size - finite.sum()) - n_nan} Inf values",
                path=path,
                fix="replace them (e.g. with the background value) before processing",
            )
    if not allow_constant and data.min() == data.max():
        raise user_error(
            f"the image is constant (every voxel is {data.flat[0]})",
            path=path,
            fix="check that this is the right file and channel",
        )


def write(
    path: str | os.PathLike,
    image: Image | np.ndarray,
    *,
    dtype: str = "float32",
    overwrite: bool = False,
    inputs: Sequence[str | os.PathLike] = (),
    provenance: dict[str, Any] | None = None,
    voxel_size_um: Sequence[float] | None = None,
) -> Path:
    """Write an image with the output policy every command shares.

    * ``dtype="float32"`` (default) stores values as float32; ``dtype="uint16"`` stores integer
      data already in ``0..65535`` unchanged and otherwise scales linearly to ``0..65535``; either
      way it records ``scale``/``offset`` so that ``value = stored * scale + offset``
      (``read(..., unscale=True)`` applies it); ``dtype="keep"`` writes the pixel type as it is
      (a faithful copy, used by ``convert``).
    * voxel size and provenance (package version, command line, parameters) go into the file
      (not for ``.npy``, which has no metadata);
    * the file is written to a temporary name and renamed (atomic);
    * an input is never overwritten; an existing output only with ``overwrite=True``.
    """
    out = Path(path)
    if isinstance(image, np.ndarray):
        axes = default_axes(image.ndim)
        if axes is None:
            raise user_error(
                f"cannot write a {image.ndim}D array",
                path=out,
                fix="give at most 5 axes (T, C, Z, Y, X)",
            )
        image = Image(data=image, axes=axes, voxel_size_um=voxel_size_um or DEFAULT_VOXEL_SIZE_UM)
    elif voxel_size_um is not None:
        image = image.with_data(image.data, voxel_size_um=tuple(voxel_size_um))
    fmt = format_of(out)
    if fmt in ("unknown", "series"):
        raise user_error(
            "unrecognised output type",
            path=out,
            fix="end the output name with .tif, .ome.tif, .ome.zarr or .npy",
        )
    _check_output_path(out, inputs, overwrite)
    data, scaling = _apply_dtype(image.data, dtype, out)
    if dtype == "keep" and isinstance(image.metadata.get("scaling"), dict):
        scaling = image.metadata[
            "scaling"
        ]  # a faithful copy keeps the meaning of the stored values
    extra = {
        "software": "neurodecon",
        "version": __version__,
        "command": " ".join(sys.argv) if sys.argv else "",
        "voxel_size_um": list(image.voxel_size_um),
        "axes": image.axes,
        "shape": list(image.data.shape),
        "dtype": str(data.dtype),
        **({"scaling": scaling} if scaling else {}),
        **(provenance or {}),
    }
    if fmt == "npy":
        log.warning(
            f"{out}: .npy keeps no voxel size or provenance; use .ome.tif or .ome.zarr to keep them"
        )
    to_write = image.with_data(data)
    _atomic(out, lambda tmp: _dispatch_write(tmp, to_write, fmt, extra), overwrite)
    return out


def _check_output_path(out: Path, inputs: Sequence[Any], overwrite: bool) -> None:
    resolved = out.resolve()
    for inp in inputs:
        if inp is not None and Path(inp).resolve() == resolved:
            raise user_error(
                "refusing to overwrite an input file",
                path=out,
                fix="choose a different output name",
            )
    if out.exists() and not overwrite:
        raise user_error(
            "output already exists", path=out, fix="choose another name or pass --overwrite"
        )
    parent = resolved.parent
    if not parent.exists():
        raise user_error("output folder does not exist", path=out, fix=f"create {parent} first")
    if not os.access(parent, os.W_OK):
        raise user_error(
            "permission denied for the output folder",
            path=out,
            fix="choose a folder you can write to",
        )


def _apply_dtype(data: np.ndarray, dtype: str, out: Path) -> tuple[np.ndarray, dict | None]:
    if dtype == "keep":
        return (data.astype(np.uint8) if data.dtype == bool else data), None
    if dtype in ("float32", "float"):
        arr = np.asarray(data, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise RuntimeError(f"{out}: refusing to write NaN/Inf values (this is a bug)")
        return arr, None
    if dtype == "uint16":
        return _to_uint16(data, out)
    raise user_error(
        f"unsupported output dtype {dtype!r}", path=out, fix="use float32, uint16 or keep"
    )


def _to_uint16(data: np.ndarray, out: Path) -> tuple[np.ndarray, dict]:
    meaning = "value = stored * scale + offset"
    if data.dtype == bool or np.issubdtype(data.dtype, np.integer):
        lo, hi = (int(data.min()), int(data.max())) if data.size else (0, 0)
        if lo >= 0 and hi <= 65535:
            return data.astype(np.uint16), {
                "dtype": "uint16",
                "scale": 1.0,
                "offset": 0.0,
                "meaning": meaning,
            }
    arr = np.asarray(data, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise RuntimeError(f"{out}: refusing to write NaN/Inf values (this is a bug)")
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    scale = (hi - lo) / 65535.0 if hi > lo else 1.0
    stored = np.rint((arr - lo) / scale).astype(np.uint16)
    return stored, {"dtype": "uint16", "scale": scale, "offset": lo, "meaning": meaning}


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


def _atomic(out: Path, writer: Callable[[Path], None], overwrite: bool) -> None:
    """Write to a temporary sibling, then rename over ``out``."""
    import shutil

    suffix = "".join(out.suffixes) or ".tmp"
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{out.name}.", suffix=f".partial{suffix}", dir=out.parent
    )
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
