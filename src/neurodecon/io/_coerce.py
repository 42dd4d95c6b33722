"""One way to turn "an image-like input" (path, :class:`Image` or array) into an :class:`Image`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import user_error
from ._image import DEFAULT_VOXEL_SIZE_UM, Image, voxel_size_3

__all__ = ["as_image", "as_volume", "source_of"]

#: What :func:`as_image` accepts: a file path, an :class:`Image` or an array.
ImageLike = Any


def _default_axes(ndim: int) -> str:
    if ndim <= 3:
        return "ZYX"[-ndim:] if ndim else ""
    return "TCZYX"[-ndim:]


def as_image(
    obj: ImageLike,
    *,
    voxel_size_um: Sequence[float] | None = None,
    what: str = "image",
    require_voxel_size: bool = False,
    check: bool = True,
) -> Image:
    """Return an :class:`Image` for a path, an :class:`Image` or an array.

    Parameters
    ----------
    obj : path, Image or ndarray
        A file is read with :func:`neurodecon.io.read`; an Image is used as it is; an array gets
        default axes (``ZYX`` for up to 3 dimensions, ``…CZYX`` above).
    voxel_size_um : (z, y, x), optional
        Overrides the file's or Image's voxel size; required for an array when
        ``require_voxel_size`` is set.
    what : str
        Names the input in error messages ("the image", "the PSF", ...).
    require_voxel_size : bool
        Refuse an array without ``voxel_size_um`` (instead of assuming 1 µm, marked as assumed).
    check : bool
        Reading only: refuse NaN/Inf and empty files (see :func:`neurodecon.io.read`).

    Examples
    --------
    >>> import numpy as np
    >>> from neurodecon.io import as_image
    >>> img = as_image(np.zeros((4, 8, 8), np.float32), voxel_size_um=(0.3, 0.1, 0.1))
    >>> img.axes, img.voxel_size_um, img.voxel_size_assumed
    ('ZYX', (0.3, 0.1, 0.1), False)
    """
    from ._api import read

    if isinstance(obj, (str, os.PathLike)):
        return read(obj, voxel_size_um=voxel_size_um, check=check)
    if isinstance(obj, Image):
        if voxel_size_um is None:
            return obj
        return obj.with_data(obj.data, voxel_size_um=tuple(voxel_size_um), voxel_size_assumed=False)
    arr = np.asarray(obj)
    if voxel_size_um is None and require_voxel_size:
        raise user_error(
            f"{what} is an array without a voxel size", fix="pass voxel_size_um=(z, y, x) in µm"
        )
    return Image(
        data=arr,
        axes=_default_axes(arr.ndim),
        voxel_size_um=(
            voxel_size_3(voxel_size_um) if voxel_size_um is not None else DEFAULT_VOXEL_SIZE_UM
        ),
        voxel_size_assumed=voxel_size_um is None,
    )


def as_volume(image: Image, what: str = "the image", path: Any = None) -> np.ndarray:
    """Return the single ``(Z, Y, X)`` float32 volume of ``image`` (leading singleton axes dropped).

    Raises a one-line error naming ``what`` (and ``path``, default the image's source file) when
    the image holds several channels or time points, or fewer than three spatial axes.
    """
    data = np.asarray(image.data)
    while data.ndim > 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 3:
        raise user_error(
            f"{what} must be one 3D stack (Z, Y, X); got shape {data.shape}",
            path=path if path is not None else source_of(image),
            fix="pick one channel/time point, e.g. with `neurodecon convert`",
        )
    return data.astype(np.float32, copy=False)


def source_of(obj: ImageLike) -> str | None:
    """Return the file an image-like input came from (its path, or an Image's source), if any."""
    if isinstance(obj, (str, os.PathLike)):
        return str(obj)
    if isinstance(obj, Image):
        src = obj.metadata.get("source")
        return str(src) if src else None
    return None
