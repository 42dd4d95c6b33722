"""The axes of a TIFF series, also where tifffile can only guess them.

tifffile names the axes of ImageJ, OME and plain multi-page TIFFs well. For a "shaped" TIFF that
tifffile wrote without an ``axes`` entry (``tifffile.imwrite(path, array)``) it guesses, and the
guess can repeat a letter (``XYX`` for a 1×1×1 array, ``QQQYX`` for a 5-D one) or swap length-1
axes (``YQX`` for 8×1×1). Such files get the order NeuroDecon gives any bare array of that many
dimensions (``ZYX``, ``CZYX``, ``TCZYX``, as for ``.npy``), keeping an RGB sample axis; anything
still ambiguous is a one-line error.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from ..errors import user_error
from ._units import default_axes

__all__ = ["series_axes", "series_data"]

log = logging.getLogger("neurodecon")

_GENERIC = "IQ"


def _shaped_description(tif: Any) -> dict[str, Any] | None:
    if not getattr(tif, "is_shaped", False):
        return None
    desc = tif.pages.first.description or ""
    try:
        parsed = json.loads(desc) if desc.lstrip().startswith("{") else {}
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _shaped_without_axes(tif: Any) -> bool:
    parsed = _shaped_description(tif)
    return parsed is not None and "axes" not in parsed


def _shaped_pages(tif: Any, path: Any) -> tuple[np.ndarray, str] | None:
    """Read a shaped TIFF page by page when tifffile cannot build its series (e.g. 1×1×1×1×1)."""
    parsed = _shaped_description(tif)
    shape = parsed.get("shape") if parsed else None
    if not isinstance(shape, list) or not all(isinstance(n, int) and n > 0 for n in shape):
        return None
    planes = np.stack([page.asarray() for page in tif.pages])
    if planes.size != int(np.prod(shape)):
        return None
    axes = parsed.get("axes") if parsed else None
    if not (isinstance(axes, str) and len(axes) == len(shape)):
        axes = default_axes(len(shape))
    if axes is None:
        return None
    return planes.reshape(shape), axes.upper()


def series_data(tif: Any, path: Any) -> tuple[np.ndarray, str, bool, list[tuple[int, ...]]]:
    """Return the first series' data, its axes, whether it is RGB, and the other series' shapes.

    Raises
    ------
    NeuroDeconError
        When the axes cannot be told (see :func:`series_axes`).
    """
    import tifffile

    try:
        series = tif.series[0]
        data = series.asarray()
    except (IndexError, ValueError):  # tifffile's series detection fails on some shaped files
        fallback = _shaped_pages(tif, path)
        if fallback is None:
            raise
        return fallback[0], fallback[1], False, []
    rgb = tif.pages.first.photometric == tifffile.PHOTOMETRIC.RGB and "S" in series.axes.upper()
    others = [tuple(s.shape) for s in tif.series[1:]]
    return data, series_axes(tif, series, path, rgb=rgb), rgb, others


def _bare_axes(axes: str, ndim: int, rgb: bool) -> str | None:
    """Axes for a shaped TIFF without axis names: the bare-array order, an RGB ``S`` kept."""
    if not (rgb and axes.count("S") == 1):
        return default_axes(ndim)
    rest = ndim - 1
    if rest > 4:
        return None
    letters = list("TZYX"[-rest:]) if rest else []
    return "".join("S" if a == "S" else letters.pop(0) for a in axes)


def _rename_generic(axes: str) -> str:
    """Name repeated generic stack axes (``I``, ``Q``) Z, C, T from the right, as free."""
    if len(set(axes)) == len(axes):
        return axes
    free = [a for a in "ZCT" if a not in axes]
    out = list(axes)
    for i in range(len(out) - 1, -1, -1):
        if out[i] in _GENERIC and free:
            out[i] = free.pop(0)
    return "".join(out)


def series_axes(tif: Any, series: Any, path: Any, *, rgb: bool) -> str:
    """Return the upper-case axis letters of ``series``, one per dimension, none repeated.

    Parameters
    ----------
    tif : tifffile.TiffFile
        The open file.
    series : tifffile.TiffPageSeries
        The series being read.
    path : path-like
        Named in messages.
    rgb : bool
        The pages are RGB (a sample axis ``S`` is real).

    Raises
    ------
    NeuroDeconError
        When no axis order can be given to the data (more than 5 unnamed axes, say).
    """
    axes, shape = str(series.axes).upper(), tuple(series.shape)
    if _shaped_without_axes(tif):
        bare = _bare_axes(axes, len(shape), rgb)
        if bare is not None:
            if bare != axes and len(shape) > 3:
                log.info(f"{path}: no axis names in the file; read as {bare} (shape {shape})")
            return bare
    else:
        axes = _rename_generic(axes)
        if len(axes) == len(shape) and len(set(axes)) == len(axes):
            return axes
    raise user_error(
        f"cannot tell the axes of this {len(shape)}-D TIFF (shape {shape}, tifffile guesses "
        f"{str(series.axes)!r})",
        path=path,
        fix="save it with axis names (OME-TIFF or ImageJ hyperstack, at most T, C, Z, Y, X), "
        "or as .npy in the order T, C, Z, Y, X",
    )
