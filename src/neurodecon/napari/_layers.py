"""Between napari layers and :class:`neurodecon.Image`: voxel size is the layer's ``scale``.

No Qt and no napari imports: layers are used through their attributes (``data``, ``scale``,
``name``), so these helpers work for any object that has them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import user_error
from ..io import Image

__all__ = ["voxel_size_of", "image_of", "volume_of", "image_layer_data"]


def voxel_size_of(layer: Any) -> tuple[float, float, float]:
    """Return the layer's voxel size ``(z, y, x)`` in µm: the last three values of its scale."""
    scale = [float(s) for s in np.asarray(layer.scale).ravel()]
    if len(scale) < 3:
        raise user_error(
            f"layer {layer.name!r} has {len(scale)} dimensions; NeuroDecon needs a 3-D stack",
            fix="open a z-stack (Z, Y, X)",
        )
    return (scale[-3], scale[-2], scale[-1])


def image_of(layer: Any) -> Image:
    """Return the layer's data and voxel size as an :class:`~neurodecon.Image` (axes ``…ZYX``).

    Raises
    ------
    NeuroDeconError
        The layer has fewer than 3 or more than 5 dimensions, or is RGB.
    """
    if getattr(layer, "rgb", False):
        raise user_error(
            f"layer {layer.name!r} is an RGB image",
            fix="use a single-channel z-stack (split the channels first)",
        )
    data = np.asarray(layer.data)
    if not 3 <= data.ndim <= 5:
        raise user_error(
            f"layer {layer.name!r} has {data.ndim} dimensions; NeuroDecon needs a 3-D stack",
            fix="open a z-stack (Z, Y, X), optionally with channels in front",
        )
    axes = {3: "ZYX", 4: "CZYX", 5: "TCZYX"}[data.ndim]
    return Image(data, voxel_size_um=voxel_size_of(layer), axes=axes)


def volume_of(layer: Any) -> Image:
    """Like :func:`image_of`, for jobs that take exactly one ``(Z, Y, X)`` volume."""
    img = image_of(layer)
    if img.data.ndim != 3:
        raise user_error(
            f"layer {layer.name!r} has shape {img.data.shape}; this job needs one (Z, Y, X) stack",
            fix="pick a single channel and time point (e.g. with a layer slice)",
        )
    return img


def image_layer_data(
    image: Image, name: str, **kwargs: Any
) -> tuple[np.ndarray, dict[str, Any], str]:
    """Return napari ``LayerData`` for ``image``: scale from its voxel size (1 on other axes).

    A ``C`` axis becomes napari's ``channel_axis`` (one layer per channel).
    """
    data = image.data
    scale = [1.0] * (data.ndim - 3) + [float(v) for v in image.voxel_size_um]
    meta: dict[str, Any] = {"name": name, "scale": scale, **kwargs}
    if "C" in image.axes and data.ndim == len(image.axes):
        c = image.axes.index("C")
        meta["channel_axis"] = c
        meta["scale"] = scale[:c] + scale[c + 1 :]
    return data, meta, "image"
