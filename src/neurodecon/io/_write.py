"""Writing with the output policy every command shares.

Pixel type, provenance in the file, atomic rename, no overwriting (of an input never, of an
existing output only when asked).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import WriteDeniedError, os_error, user_error
from ._api import format_of
from ._image import DEFAULT_VOXEL_SIZE_UM, Image, voxel_size_3
from ._provenance import clean_stale_partials, current_command, partial_prefix
from ._units import default_axes

__all__ = ["write", "check_output_path"]

log = logging.getLogger("neurodecon")


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
    * voxel size and provenance (package version, the command as ``neurodecon ...`` with the
      paths as given, parameters) go into the file (not for ``.npy``, which has no metadata);
    * the file is written to a temporary name and renamed (atomic); a failed or interrupted write
      leaves nothing behind, temporary files of killed earlier runs are removed, and a full disk
      or a folder that cannot be written is one line (exit codes 4 and 5 on the command line);
    * an input is never overwritten; an existing output only with ``overwrite=True``.

    Parameters
    ----------
    path : path-like
        Output file: ``.tif``, ``.ome.tif``, ``.ome.zarr`` or ``.npy``.
    image : Image or ndarray
        What to write. An array gets the default axes for its dimensions (``ZYX``, ``CZYX``,
        ``TCZYX``) and ``voxel_size_um`` (else 1 µm).
    dtype : {"float32", "uint16", "keep"}
        Stored pixel type, as above.
    overwrite : bool
        Replace an existing output.
    inputs : sequence of path-like
        The files the command read; writing over one of them is refused.
    provenance : dict, optional
        More provenance (e.g. the parameters), stored beside the version and command line.
    voxel_size_um : 3 floats, optional
        ``(z, y, x)`` in µm; replaces the Image's.

    Returns
    -------
    Path
        The file written.
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
        image = Image(
            data=image,
            axes=axes,
            voxel_size_um=voxel_size_3(voxel_size_um or DEFAULT_VOXEL_SIZE_UM),
        )
    elif voxel_size_um is not None:
        image = image.with_data(image.data, voxel_size_um=tuple(voxel_size_um))
    fmt = format_of(out)
    if fmt in ("unknown", "series"):
        raise user_error(
            "unrecognised output type",
            path=out,
            fix="end the output name with .tif, .ome.tif, .ome.zarr or .npy",
        )
    check_output_path(out, inputs, overwrite)
    clean_stale_partials(out)
    data, scaling = _apply_dtype(image.data, dtype, out)
    if dtype == "keep" and isinstance(image.metadata.get("scaling"), dict):
        # a faithful copy keeps the meaning of the stored values
        scaling = image.metadata["scaling"]
    extra = {
        "software": "neurodecon",
        "version": __version__,
        "command": current_command(),
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


def check_output_path(
    out: str | os.PathLike, inputs: Sequence[Any] = (), overwrite: bool = False
) -> None:
    """Refuse an output before any work: an input, an existing file, a missing or unwritable folder.

    Raises
    ------
    NeuroDeconError
        One line naming ``out``; :class:`~neurodecon.errors.WriteDeniedError` (exit code 5) for
        a folder that cannot be written (no permission, read-only file system).
    """
    out = Path(out)
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
        read_only = bool(os.statvfs(parent).f_flag & os.ST_RDONLY) if hasattr(os, "statvfs") else 0
        raise user_error(
            "the output folder is on a read-only file system"
            if read_only
            else "permission denied for the output folder",
            path=out,
            fix="choose a folder you can write to",
            kind=WriteDeniedError,
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
        imin, imax = (int(data.min()), int(data.max())) if data.size else (0, 0)
        if imin >= 0 and imax <= 65535:
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


def write_lazy(
    path: str | Path,
    image: Any,
    *,
    dtype: str = "keep",
    overwrite: bool = False,
    inputs: Sequence[str | os.PathLike] = (),
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Stream a :class:`~neurodecon.io.LazyImage` into an OME-Zarr, chunk by chunk.

    The volume is never in memory: Dask copies it in chunks of whole planes (about 8 MB), then
    a multiscale pyramid is added; written to a temporary sibling and renamed, like :func:`write`.
    ``dtype`` is ``"keep"`` or ``"float32"``.
    """
    from ._zarr import _chunks, add_pyramid, create_ome_zarr

    out = Path(path)
    if format_of(out) != "ome-zarr" or dtype not in ("keep", "float32"):
        raise user_error("streaming writes OME-Zarr in its own or float32 type", path=out)
    check_output_path(out, inputs, overwrite)
    clean_stale_partials(out)
    data = image.data if dtype == "keep" else image.data.astype(np.float32)
    extra = {
        "software": "neurodecon",
        "version": __version__,
        "command": current_command(),
        "voxel_size_um": list(image.voxel_size_um),
        "axes": image.axes,
        "shape": list(data.shape),
        "dtype": str(data.dtype),
        **(provenance or {}),
    }

    def writer(tmp: Path) -> None:
        import dask.array as da

        arr = create_ome_zarr(
            tmp,
            shape=data.shape,
            chunks=_chunks(data),
            axes=image.axes,
            voxel_size_um=image.voxel_size_um,
            dtype=data.dtype,
            extra=extra,
        )
        da.store(data.rechunk(arr.chunks), arr, lock=False)
        add_pyramid(tmp)

    _atomic(out, writer, overwrite)
    return out


def write_json(path: str | Path, obj: Any, *, overwrite: bool = False) -> Path:
    """Write ``obj`` as indented JSON, atomically (temporary sibling, then rename).

    Refuses an existing file unless ``overwrite``.
    """
    import json

    from ..jsonutil import json_default

    out = Path(path)
    if out.exists() and not overwrite:
        raise user_error("output exists", path=out, fix="pass --overwrite or choose another name")
    text = json.dumps(obj, indent=2, default=json_default) + "\n"

    def writer(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    _atomic(out, writer, overwrite)
    return out


def _atomic(out: Path, writer: Callable[[Path], None], overwrite: bool) -> None:
    """Write to a temporary sibling, then rename over ``out``; clean up on any failure."""
    import shutil

    suffix = "".join(out.suffixes) or ".tmp"
    tmp: Path | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=partial_prefix(out), suffix=f".partial{suffix}", dir=out.parent
        )
        os.close(fd)
        tmp = Path(tmp_name)
        tmp.unlink()
        writer(tmp)
        if out.exists() and overwrite:
            if out.is_dir():
                shutil.rmtree(out)
            else:
                out.unlink()
        os.replace(tmp, out)
    except BaseException as exc:
        if tmp is not None and tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp is not None and tmp.exists():
            tmp.unlink()
        fault = os_error(exc, out) if isinstance(exc, OSError) else None
        if fault is not None:
            raise fault from None
        raise
