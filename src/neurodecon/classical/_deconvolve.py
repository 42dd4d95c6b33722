"""The convenience function :func:`deconvolve`: one call for a stack, channels or more axes."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, overload

import numpy as np

from ..errors import user_error
from ..progress import ProgressFn
from ._engine import Callback, Deconvolver
from ._inputs import channel_psfs, check_method
from ._result import DeconvolutionResult, stack_results

__all__ = ["deconvolve"]


@overload
def deconvolve(
    image: Any,
    psf: Any,
    method: str = ...,
    *,
    iterations: int | str = ...,
    regularization: float | None = ...,
    background: float | str = ...,
    boundary: str = ...,
    device: str = ...,
    progress: ProgressFn | None = ...,
    callback: Callback | None = ...,
    initial: str = ...,
    background_mode: str = ...,
    return_result: Literal[False] = ...,
) -> np.ndarray: ...


@overload
def deconvolve(
    image: Any,
    psf: Any,
    method: str = ...,
    *,
    iterations: int | str = ...,
    regularization: float | None = ...,
    background: float | str = ...,
    boundary: str = ...,
    device: str = ...,
    progress: ProgressFn | None = ...,
    callback: Callback | None = ...,
    initial: str = ...,
    background_mode: str = ...,
    return_result: Literal[True],
) -> DeconvolutionResult: ...


def deconvolve(
    image: Any,
    psf: Any,
    method: str = "rl",
    *,
    iterations: int | str = 50,
    regularization: float | None = None,
    background: float | str = 0.0,
    boundary: str = "unknown",
    device: str = "auto",
    progress: ProgressFn | None = None,
    callback: Callback | None = None,
    initial: str = "flat",
    background_mode: str = "model",
    return_result: bool = False,
) -> np.ndarray | DeconvolutionResult:
    """Deconvolve a ``(Z, Y, X)`` stack (or ``(C, Z, Y, X)``, one PSF per channel).

    Parameters
    ----------
    image : (Z, Y, X) or (C, Z, Y, X) array_like
        The blurred stack (any real dtype; computed in float32). 2-D ``(Y, X)`` images work too,
        and so do more leading axes with one 3-D PSF (every 3-D frame in turn).
    psf : (z, y, x) array_like, (C, z, y, x) array_like or list of arrays
        The PSF, centre at index ``n // 2`` on each axis (normalised to sum 1 here); one per
        channel or one shared by all channels.
    method : str
        One of :data:`~neurodecon.classical.METHODS`: ``nif, wiener, tikhonov, rif``
        (closed-form filters), ``landweber, landweber+, tm, ictm`` (least squares),
        ``rl, rltv, rl-accel`` (Poisson).
    iterations : int or "auto"
        Number of iterations of an iterative method (ignored by the closed-form filters);
        ``"auto"`` chooses it by cross-validation on binomially thinned counts
        (:mod:`neurodecon.classical.stopping`).
    regularization : float, optional
        ε (nif), λ (tikhonov, rif, tm, ictm, rltv) or the noise-to-signal multiplier (wiener);
        default :data:`~neurodecon.classical.DEFAULT_REGULARIZATION`.
    background : float or "auto"
        Background / camera offset: part of the forward model ``y = Hx + b``, never in the result.
        ``"auto"`` estimates it per channel (:func:`~neurodecon.classical.estimate_background`).
    boundary : {"unknown", "reflect", "periodic"}
        ``unknown`` (default): the outside of the field of view is estimated, not assumed
        (no edge artefacts). ``reflect``: mirrored data. ``periodic``: circular convolution.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    progress : callable, optional
        ``progress(done, total, message)``; returning ``False`` cancels.
    callback : callable, optional
        ``callback(iteration, estimate)`` after each iteration with a float32 copy of the
        estimate; returning ``False`` stops early.
    initial : {"flat", "data"}
        Start of the iterative methods: ``flat`` (default: the data's mean above the background,
        the classical choice) or ``data`` (the data above the background, as cudaDecon does:
        dark regions are dark from the first iteration, so few iterations leave less haze).
        ``iterations="auto"`` cross-validates from the flat start in either case.
    background_mode : {"model", "subtract"}
        ``model`` (default): the background stays in the Poisson model ``Hx + b`` (the
        statistically right choice); ``subtract``: ``max(y − b, 0)`` is deconvolved without a
        background, as cudaDecon and most GPU tools do.
    return_result : bool
        Return a :class:`~neurodecon.classical.DeconvolutionResult` (the array with the
        iterations, background, boundary and regularization actually used) instead of the array.

    Returns
    -------
    ndarray or DeconvolutionResult
        float32, same shape as ``image``; non-negative for ``rl, rl-accel, rltv, landweber+,
        ictm``. With ``return_result=True`` the result object, whose per-frame fields are lists
        (one entry per channel / frame) for a stack of frames.

    Examples
    --------
    >>> import numpy as np
    >>> from neurodecon.classical import deconvolve
    >>> psf = np.ones((3, 3, 3), np.float32)
    >>> img = np.full((8, 16, 16), 10.0, np.float32)
    >>> out = deconvolve(img, psf, "rl", iterations=5, background=2.0, device="cpu")
    >>> out.shape, out.dtype, round(float(out.mean()), 3)
    ((8, 16, 16), dtype('float32'), 8.0)
    >>> res = deconvolve(img, psf, "rl", iterations=5, background=-1.0, return_result=True)
    >>> res.iterations, res.background, res.boundary  # a negative background is 0 for RL
    (5, 0.0, 'unknown')
    """
    options: dict[str, Any] = {
        "iterations": iterations,
        "regularization": regularization,
        "background": background,
        "boundary": boundary,
        "device": device,
        "progress": progress,
        "callback": callback,
        "initial": initial,
        "background_mode": background_mode,
    }
    method = check_method(method)
    arr = np.asarray(image)
    if arr.ndim > 4 and not isinstance(psf, (list, tuple)) and np.ndim(psf) == 3:
        # (T, C, Z, Y, X) and the like with one PSF: every 3-D frame in turn, sharing the buffers
        flat = arr.reshape(-1, *arr.shape[-3:])
        res = deconvolve(flat, psf, method, **options, return_result=True)
        res = dataclasses.replace(res, data=res.data.reshape(arr.shape))
        return res if return_result else res.data
    if arr.ndim not in (1, 2, 3, 4):
        raise user_error(
            f"the image has {arr.ndim} dimensions",
            fix="give a (Z, Y, X) or (C, Z, Y, X) stack, or one 3-D PSF for more axes",
        )
    if isinstance(psf, (list, tuple)) and psf and all(isinstance(p, np.ndarray) for p in psf):
        psf_ndim = psf[0].ndim  # a list of per-channel PSFs
    else:
        psf = np.asarray(psf)
        psf_ndim = psf.ndim - 1 if psf.ndim == arr.ndim and arr.ndim == 4 else psf.ndim
    if not (arr.ndim == 4 or arr.ndim == psf_ndim + 1):  # one frame
        dec = Deconvolver(
            psf,
            arr.shape,
            method=method,
            regularization=regularization,
            boundary=boundary,
            device=device,
        )
        res = dec(
            arr,
            iterations=iterations,
            background=background,
            progress=progress,
            callback=callback,
            initial=initial,
            background_mode=background_mode,
            return_result=True,
        )
        return res if return_result else res.data
    res = _channels(arr, channel_psfs(psf, arr.shape[0], arr.ndim - 1), method, options)
    return res if return_result else res.data


def _channels(
    arr: np.ndarray, psfs: list[Any], method: str, options: dict[str, Any]
) -> DeconvolutionResult:
    """Deconvolve ``arr[c]`` with ``psfs[c]`` for each channel ``c`` (a shared PSF is reused)."""
    progress = options["progress"]
    out = np.empty(arr.shape, dtype=np.float32)
    results = []
    dec: Deconvolver | None = None
    for c, (frame, p) in enumerate(zip(arr, psfs, strict=True)):

        def channel_progress(done: int, total: int, msg: str = "", _c: int = c) -> bool | None:
            return (
                None
                if progress is None
                else progress(
                    _c * max(total, 1) + done, arr.shape[0] * max(total, 1), f"channel {_c}: {msg}"
                )
            )

        if dec is None or p is not psfs[c - 1]:  # frames sharing a PSF share the OTF and buffers
            dec = None
            dec = Deconvolver(
                p,
                frame.shape,
                method=method,
                regularization=options["regularization"],
                boundary=options["boundary"],
                device=options["device"],
            )
        res = dec(
            frame,
            iterations=options["iterations"],
            background=options["background"],
            progress=channel_progress if progress is not None else None,
            callback=options["callback"],
            initial=options["initial"],
            background_mode=options["background_mode"],
            return_result=True,
        )
        out[c] = res.data
        results.append(dataclasses.replace(res, data=out[c]))  # a view: no second copy kept
    return stack_results(results, out)
