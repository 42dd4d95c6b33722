"""The image record passed between readers, algorithms and writers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["Image", "DEFAULT_VOXEL_SIZE_UM"]

#: Voxel size assumed (with a warning) when neither metadata nor the user gives one.
DEFAULT_VOXEL_SIZE_UM: tuple[float, float, float] = (1.0, 1.0, 1.0)


def voxel_size_3(values: Iterable[float]) -> tuple[float, float, float]:
    """Return ``values`` as a ``(z, y, x)`` tuple of three floats.

    Raises
    ------
    ValueError
        When there are not exactly three values.
    """
    vals = tuple(float(v) for v in values)
    if len(vals) != 3:
        raise ValueError("voxel_size_um must have 3 values (z, y, x)")
    return vals


@dataclass
class Image:
    """An n-D microscopy image with its physical voxel size.

    Attributes
    ----------
    data : ndarray
        Pixel values. Spatial axes last, in ``Z, Y, X`` order; optional leading ``C``/``T`` axes.
    voxel_size_um : tuple of 3 floats
        Voxel size ``(z, y, x)`` in micrometres.
    axes : str
        Axis letters of ``data``, e.g. ``"ZYX"``, ``"CZYX"``, ``"TCZYX"``.
    metadata : dict
        Source metadata (reader, file, notes) and provenance; JSON-serialisable values only.
    voxel_size_assumed : bool
        True when the voxel size was not found in the metadata nor given by the user.
    """

    data: np.ndarray
    voxel_size_um: tuple[float, float, float] = DEFAULT_VOXEL_SIZE_UM
    axes: str = "ZYX"
    metadata: dict[str, Any] = field(default_factory=dict)
    voxel_size_assumed: bool = False

    def __post_init__(self) -> None:
        self.voxel_size_um = voxel_size_3(self.voxel_size_um)
        if self.data.ndim != len(self.axes):
            raise ValueError(f"data has {self.data.ndim} dimensions but axes is {self.axes!r}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of :attr:`data`, all axes."""
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        """Pixel type of :attr:`data`."""
        return self.data.dtype

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """Shape ``(Z, Y, X)`` of the last three axes of :attr:`data`."""
        return tuple(self.data.shape[-3:])

    def with_data(self, data: np.ndarray, **changes: Any) -> Image:
        """Return a copy with new pixel data (same voxel size, axes and metadata unless changed).

        ``metadata`` is a shallow copy, so adding or replacing keys of the copy leaves ``self``
        alone; ``changes`` replace other fields, e.g. ``voxel_size_um=(z, y, x)``.
        """
        return replace(self, data=data, metadata=dict(self.metadata), **changes)


def unlabelled_image(data: np.ndarray, *, reader: str, source: str, fmt: str) -> Image:
    """Build an :class:`Image` from a file without axes or voxel size (``.npy``, bare zarr).

    Axes follow the default order for the number of dimensions (``default_axes``); the voxel size
    is marked as assumed so that :func:`neurodecon.io.read` warns and names the assumption.
    """
    from ._units import default_axes

    return Image(
        data=data,
        axes=default_axes(data.ndim) or "",
        voxel_size_assumed=True,
        metadata={
            "reader": reader,
            "source": source,
            "format": fmt,
            "voxel_size_from_file": [None, None, None],
        },
    )
