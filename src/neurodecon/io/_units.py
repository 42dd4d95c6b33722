"""Length units and axis-order helpers shared by the TIFF, OME-Zarr and z-series readers."""

from __future__ import annotations

import numpy as np

__all__ = ["unit_to_um", "canonical_axes", "default_axes", "AXIS_ORDER"]

#: Canonical axis order of :class:`~neurodecon.io.Image` data: optional T, C, then Z, Y, X.
AXIS_ORDER = "TCZYX"

_UNIT_TO_UM = {
    "um": 1.0,
    "µm": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "micrometers": 1.0,
    "micrometres": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "nanometre": 1e-3,
    "nanometers": 1e-3,
    "pm": 1e-6,
    "picometer": 1e-6,
    "å": 1e-4,
    "angstrom": 1e-4,
    "ångström": 1e-4,
    "mm": 1e3,
    "millimeter": 1e3,
    "millimetre": 1e3,
    "cm": 1e4,
    "centimeter": 1e4,
    "centimetre": 1e4,
    "m": 1e6,
    "meter": 1e6,
    "metre": 1e6,
    "in": 25400.0,
    "inch": 25400.0,
}


def unit_to_um(unit: str | None) -> float | None:
    r"""Return micrometres per ``unit`` (``"nm"`` → 1e-3), or None for ``pixel``/unknown units.

    Accepts the micro sign (U+00B5), the Greek mu (U+03BC), ImageJ's escaped ``\u00B5m``,
    and the OME-NGFF / OME-XML spellings (``micrometer``, ``nanometer``, ...).
    """
    if unit is None:
        return None
    text = str(unit).strip().lower()
    text = text.replace("\\u00b5", "µ").replace("\\u03bc", "µ").replace("\u03bc", "µ")
    return _UNIT_TO_UM.get(text)


def default_axes(ndim: int) -> str | None:
    """Return the axis letters of a bare array (``X``, ``YX``, ... ``TCZYX``); None above 5D."""
    if ndim < 1 or ndim > 5:
        return None
    return AXIS_ORDER[-ndim:] if ndim >= 2 else "X"


def canonical_axes(data: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Reorder ``data`` so that non-spatial axes come first (T, C, others) and Z, Y, X last.

    ``I``/``Q`` (an unnamed stack axis, as tifffile reports plain multi-page TIFFs) becomes ``Z``
    when there is no ``Z``; a sample axis ``S`` (RGB) is treated as a channel axis ``C`` when
    there is no ``C``.

    Parameters
    ----------
    data : ndarray
        Any number of dimensions, one letter of ``axes`` each.
    axes : str
        Axis letters of ``data`` as the file reports them (case ignored).

    Returns
    -------
    data, axes : ndarray, str
        The data with its axes reordered (no copy) and its axis letters, e.g. ``"CZYX"``.

    Examples
    --------
    >>> import numpy as np
    >>> from neurodecon.io import canonical_axes
    >>> data, axes = canonical_axes(np.zeros((5, 4, 3, 2)), "ZCYX")
    >>> data.shape, axes
    ((4, 5, 3, 2), 'CZYX')
    """
    axes = axes.upper()
    for generic in ("I", "Q"):
        if axes.count(generic) == 1 and "Z" not in axes:
            axes = axes.replace(generic, "Z")
    if "S" in axes and "C" not in axes:
        axes = axes.replace("S", "C")
    spatial = [a for a in "ZYX" if a in axes]
    rank = {a: i for i, a in enumerate("TC")}
    others = sorted(
        (a for a in axes if a not in "ZYX"), key=lambda a: (rank.get(a, 2), axes.index(a))
    )
    order = others + spatial
    perm = [axes.index(a) for a in order]
    if perm != list(range(len(axes))):
        data = np.transpose(data, perm)
    return data, "".join(order)
