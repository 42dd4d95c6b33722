"""The one ``deconvolve`` entry point: a PSF selects a classical method, a model the network."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .classical import DeconvolutionResult

__all__ = ["deconvolve"]


def deconvolve(
    image: np.ndarray,
    psf: np.ndarray | None = None,
    *,
    method: str = "rl",
    model: Any = None,
    **options: Any,
) -> np.ndarray | DeconvolutionResult:
    """Deconvolve a ``(Z, Y, X)`` (or ``(C, Z, Y, X)``) array.

    Parameters
    ----------
    image : ndarray
        The blurred stack.
    psf : ndarray, optional
        PSF for classical methods (centre at ``n // 2`` on each axis, normalised internally). A
        measured PSF with a camera offset or noise far from the bead is cleaned first (one info
        line; see :func:`neurodecon.psf.prepare_psf`).
    method : str
        Classical method name (see :func:`neurodecon.classical.deconvolve`), ignored with ``model``.
    model : str, path or loaded model, optional
        A trained NeuroDecon model directory (or the object from :func:`neurodecon.load_model`).
    **options
        Passed to the classical method or to :func:`neurodecon.learn.predict`.

    Returns
    -------
    ndarray or DeconvolutionResult
        The result array; for a classical method given ``return_result=True``, a
        :class:`neurodecon.classical.DeconvolutionResult` (the array with the iterations,
        background and boundary actually used).
    """
    if model is not None:
        from .learn import load_model, predict

        if not hasattr(model, "predict_config"):
            model = load_model(model)
        return predict(model, image, **options)
    if psf is None:
        from .errors import user_error

        raise user_error("classical deconvolution needs a PSF", fix="pass psf=... or model=...")
    from .classical import deconvolve as classical_deconvolve

    psf = _checked_psf(psf, np.ndim(image))
    return classical_deconvolve(image, psf, method=method, **options)


def _checked_psf(psf: Any, image_ndim: int) -> Any:
    """Apply the measured-PSF checks (offset, noise, several beads) to one 3-D PSF array.

    Per-channel PSFs (a list, or ``(C, z, y, x)`` for a ``(C, Z, Y, X)`` image) go to the engine
    as they are; so do kernels of other dimensionality.
    """
    from .psf import check_measured_psf

    if isinstance(psf, (list, tuple)) or np.ndim(psf) != 3 or image_ndim == 3 + 1 == np.ndim(psf):
        return psf
    arr = np.asarray(psf)
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        return psf  # the engine names the problem
    return check_measured_psf(arr.astype(np.float64), background="auto", path=None)
