"""How much memory one deconvolution needs, known before anything is allocated.

The estimate counts the float32 volumes on the padded FFT grid (OTF, spectrum scratch, real
scratch, Bertero–Boccacci weights, the estimate and each method's own buffers) and the copies of
the image on the host. It is what :class:`~neurodecon.classical.Deconvolver` checks against the
available memory, and what code splitting a volume into blocks can use to choose their size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._methods import DIRECT_METHODS
from ._operator import plan_geometry

__all__ = ["deconvolution_bytes"]

#: Padded-grid float32 volumes a method keeps besides the operator's and the estimate.
_METHOD_VOLUMES = {
    "rl": 0,
    "rl-accel": 2,
    "rltv": 3,
    "landweber": 1,
    "landweber+": 1,
    "tm": 3,
    "ictm": 3,
}
#: Extra volumes of ``iterations="auto"`` (thinned halves of the data, their models, and the
#: half-data estimate kept for the warm start).
_AUTO_VOLUMES = 7


def deconvolution_bytes(
    image_shape: Sequence[int],
    psf_shape: Sequence[int],
    *,
    method: str = "rl",
    boundary: str = "unknown",
    auto: bool = False,
) -> int:
    """Estimate the peak memory (bytes) of deconvolving one frame.

    Parameters
    ----------
    image_shape, psf_shape : tuple of int
        Shapes of the frame and of the (trimmed) PSF.
    method : str
        One of :data:`~neurodecon.classical.METHODS`.
    boundary : {"unknown", "reflect", "periodic"}
        The boundary model (it sets the padded grid).
    auto : bool
        ``iterations="auto"`` (cross-validation keeps more buffers).

    Returns
    -------
    int
        Bytes: padded-grid buffers (on the compute device) plus host copies of the frame.

    Examples
    --------
    >>> n = deconvolution_bytes((64, 256, 256), (31, 25, 25), method="rl")
    >>> round(n / 1e6)
    273
    """
    grid = "reflect" if (method in DIRECT_METHODS and boundary == "unknown") else boundary
    geometry = plan_geometry(tuple(image_shape), tuple(psf_shape), grid)
    padded = 4.0 * float(np.prod([float(n) for n in geometry.padded_shape]))
    image = 4.0 * float(np.prod([float(n) for n in image_shape]))
    # OTF (half spectrum, complex) + spectrum scratch + real scratch + estimate + FFT workspace
    volumes = 5 + (1 if geometry.masked else 0)
    volumes += 3 if method in DIRECT_METHODS else _METHOD_VOLUMES.get(method, 2)
    volumes += _AUTO_VOLUMES if auto and method not in DIRECT_METHODS else 0
    # the data on the grid, the float32 input copy, the result and its host copy
    return int(volumes * padded + padded + 3 * image)
