"""Public read/write entry points: format dispatch, validation, output policy, atomic writes."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import user_error
from ._image import DEFAULT_VOXEL_SIZE_UM, Image, unlabelled_image, voxel_size_3
from ._units import default_axes

__all__ = ["read", "check_image", "format_of"]

log = logging.getLogger("neurodecon")

_TIFF = (".tif", ".tiff")
_OME_TIFF = (".ome.tif", ".ome.tiff")
_FIX_FORMATS = "use .tif/.tiff, .ome.tif, .ome.zarr, .npy or a folder of TIFF planes"


def format_of(path: str | os.PathLike) -> str:
    """Return the format name of ``path``.

    One of ``ome-tiff``, ``tiff``, ``ome-zarr``, ``npy``, ``series`` (a folder or a glob of
    TIFF planes) or ``unknown``; decided from the name alone, except for folders.

    Examples
    --------
    >>> from neurodecon.io import format_of
    >>> format_of("cells.ome.tif"), format_of("planes/*.tif"), format_of("stack.npy")
    ('ome-tiff', 'series', 'npy')
    """
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
        Reject NaN/Inf and empty images with a one-line :class:`NeuroDeconError`. A constant
        image is read like any other (commands that compute refuse it with
        ``check_image(image, path)``).
    unscale : bool
        For files written with ``dtype="uint16"`` (scaling recorded in the metadata), return
        float32 values ``stored * scale + offset`` instead of the stored integers.

    Returns
    -------
    Image
        Data with the spatial axes last (``Z, Y, X``, after any ``T``/``C``), the voxel size,
        and metadata naming the reader, the source and where the voxel size came from.
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
        check_image(image, path, allow_constant=True)
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
    filled = voxel_size_3(f if f else d for f, d in zip(found, DEFAULT_VOXEL_SIZE_UM, strict=True))
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
        from ._tiff import guard_tiff, read_tiff

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
    return unlabelled_image(data, reader="npy", source=str(p), fmt="npy")


def _valid_voxel_size(values: Sequence[float], path: Any = None) -> tuple[float, float, float]:
    vals = tuple(float(v) for v in values)
    if len(vals) != 3 or not all(np.isfinite(v) and v > 0 for v in vals):
        raise user_error(
            f"invalid voxel size {values!r}",
            path=path,
            fix="give three positive numbers Z Y X in µm",
        )
    return vals


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

    Parameters
    ----------
    image : Image
        The image to check (its ``data`` and ``axes``).
    path : path-like, optional
        The file named in the message.
    min_ndim, ndim : int
        Least and (optionally) exact number of dimensions of ``image.data``.
    allow_constant : bool
        Accept an image whose voxels all have one value.

    Raises
    ------
    NeuroDeconError
        On the first check that fails.
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
    if not (np.issubdtype(data.dtype, np.number) or data.dtype == bool) or np.iscomplexobj(data):
        raise user_error(
            f"unsupported pixel type {data.dtype}",
            path=path,
            fix="save the image with a real integer or floating-point pixel type",
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
