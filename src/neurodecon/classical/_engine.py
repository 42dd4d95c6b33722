"""The classical deconvolution engine: validation, the reusable :class:`Deconvolver` context and
the convenience function :func:`deconvolve` (multi-channel, one PSF per channel).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..errors import user_error
from ..progress import ProgressFn, report
from ._direct import DIRECT_METHODS, direct_filter
from ._iterative import (
    landweber,
    richardson_lucy,
    rl_accelerated,
    rl_tv,
    tikhonov_miller,
)
from ._operator import BOUNDARIES, FFTOperator, plan_geometry

__all__ = [
    "METHODS",
    "NON_NEGATIVE",
    "DEFAULT_REGULARIZATION",
    "Deconvolver",
    "deconvolve",
    "estimate_background",
    "normalize_psf",
]

log = logging.getLogger("neurodecon")

METHODS = (
    "nif",
    "wiener",
    "tikhonov",
    "rif",
    "landweber",
    "landweber+",
    "rl",
    "rltv",
    "tm",
    "ictm",
    "rl-accel",
)
ITERATIVE_METHODS = tuple(m for m in METHODS if m not in DIRECT_METHODS)
#: Methods whose result is guaranteed ≥ 0.
NON_NEGATIVE = ("landweber+", "rl", "rltv", "ictm", "rl-accel")
#: Methods that model Poisson data (negative data are clipped to 0 for them).
POISSON_METHODS = ("rl", "rltv", "rl-accel")
#: ``None``: estimated from the data's noise (see ``_direct.direct_filter``).
DEFAULT_REGULARIZATION = {
    "nif": 1e-3,
    "wiener": 1.0,
    "tikhonov": None,
    "rif": None,
    "rltv": 2e-3,
    "tm": 1e-4,
    "ictm": 1e-4,
}

#: Callback signature: ``callback(iteration, estimate)``; returning ``False`` stops early.
Callback = Callable[[int, np.ndarray], "bool | None"]


# -- inputs ------------------------------------------------------------------------------------
def _as_float32(array: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(array)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is a user error here
        raise user_error(f"{what} is not an array ({exc})") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise user_error(f"{what} has non-numeric type {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise user_error(
            f"{what} contains NaN or infinite values",
            fix="replace them (e.g. with the background level) before deconvolving",
        )
    return arr


def normalize_psf(psf: Any, *, ndim: int | None = None) -> np.ndarray:
    """Check a PSF and return it as float32, non-negative, summing to 1 (centre at ``n // 2``).

    Small negative values (from background subtraction) are set to 0; a PSF with no positive
    value, NaN/Inf or the wrong number of dimensions is a user error.
    """
    p = _as_float32(psf, "PSF")
    if ndim is not None and p.ndim != ndim:
        raise user_error(
            f"the PSF has {p.ndim} dimensions but the image has {ndim}",
            fix="give a PSF with the image's (Z, Y, X) dimensions",
        )
    if p.size == 0:
        raise user_error("the PSF is empty")
    p = np.clip(p, 0.0, None)
    total = float(p.sum(dtype=np.float64))
    if not total > 0:
        raise user_error("the PSF has no positive value", fix="check that the right file is given")
    return (p / total).astype(np.float32)


def _trim_psf(psf: np.ndarray, rel: float = 1e-6) -> np.ndarray:
    """Crop a PSF to the centred box that holds every value above ``rel · max`` (keeps n // 2)."""
    thr = rel * float(psf.max())
    index = []
    for axis, m in enumerate(psf.shape):
        profile = psf.max(axis=tuple(a for a in range(psf.ndim) if a != axis))
        above = np.nonzero(profile > thr)[0]
        c = m // 2
        e = int(max(c - above.min(), above.max() - c))
        index.append(slice(c - e, c + e + 1) if 2 * e + 1 < m else slice(None))
    out = psf[tuple(index)]
    return out / out.sum(dtype=np.float64) if out.shape != psf.shape else psf


def _fit_psf(psf: np.ndarray, image_shape: tuple[int, ...], boundary: str) -> np.ndarray:
    """Trim negligible borders; with periodic boundaries crop to the image (centred)."""
    psf = _trim_psf(psf)
    if boundary == "periodic" and any(m > n for m, n in zip(psf.shape, image_shape, strict=True)):
        index = tuple(
            slice(m // 2 - n // 2, m // 2 - n // 2 + n) if m > n else slice(None)
            for m, n in zip(psf.shape, image_shape, strict=True)
        )
        psf = psf[index]
        psf = (psf / psf.sum(dtype=np.float64)).astype(np.float32)
    return np.ascontiguousarray(psf, dtype=np.float32)


def estimate_background(image: np.ndarray, *, sigma: float = 2.0, percentile: float = 1.0) -> float:
    """Robust background / camera-offset estimate: the centre of the dark level of the smoothed image.

    Smoothing (Gaussian, ``sigma`` voxels) averages most of the noise away. What is left of it
    still spreads the background's smoothed values by ``σ_s`` (the raw noise σ, measured in the
    darkest voxels with a 6-neighbour high-pass, times the kernel's L2 norm), so a low percentile
    alone sits about ``2.3 σ_s`` *below* the background (measured: 4.74–4.82 for a true 5 counts
    with read noise 1; the shortfall is deconvolved into a haze). The estimate therefore starts at
    the ``percentile``-th percentile plus ``2.326 σ_s`` and is refined with the lower half of the
    background's distribution, which objects cannot contaminate (they only add light):
    ``b ← mean(smoothed | smoothed ≤ b) + √(2/π) σ_s`` (the mean of a Gaussian's lower half is
    ``μ − √(2/π) σ``), a few times. The plain percentile is a lower bound of the result.
    """
    from scipy.ndimage import gaussian_filter

    from ._noise import highpass_residual

    img = np.asarray(image, dtype=np.float32)
    smooth = gaussian_filter(img, sigma, mode="nearest")
    low = float(np.percentile(smooth, percentile))
    # noise of the raw data in the darkest tenth, as the high-pass residual's RMS
    resid, factor = highpass_residual(img)
    resid = resid[smooth <= np.percentile(smooth, 10.0)].astype(np.float64)
    sigma_raw = float(np.sqrt(np.mean(resid**2) / factor)) if resid.size else 0.0
    delta = np.zeros((int(8 * sigma) + 1,) * img.ndim, np.float32)
    delta[(delta.shape[0] // 2,) * img.ndim] = 1.0
    sigma_s = sigma_raw * float(
        np.sqrt(np.sum(gaussian_filter(delta, sigma, mode="constant") ** 2))
    )
    b = low + 2.326 * sigma_s
    for _ in range(20):
        sel = smooth[smooth <= b]
        if sel.size < 100:
            break
        new = float(sel.mean()) + 0.7979 * sigma_s
        if abs(new - b) <= 1e-3 * sigma_s:
            b = new
            break
        b = new
    return max(b, low)


def _check_method(method: str) -> str:
    name = str(method).lower()
    if name not in METHODS:
        raise user_error(f"unknown method {method!r}", fix=f"use one of {', '.join(METHODS)}")
    return name


def _check_iterations(iterations: Any) -> int | str:
    if isinstance(iterations, str):
        if iterations.lower() == "auto":
            return "auto"
        try:
            iterations = int(iterations)
        except ValueError:
            raise user_error(f"iterations must be a number or 'auto', not {iterations!r}") from None
    if (
        isinstance(iterations, bool)
        or not isinstance(iterations, (int, np.integer))
        or iterations < 0
    ):
        raise user_error(f"iterations must be a non-negative integer or 'auto', not {iterations!r}")
    return int(iterations)


# -- hooks ---------------------------------------------------------------------------------------
class _RunHooks:
    """Progress, user callback and (for ``auto``) the held-out likelihood monitor of one run."""

    def __init__(
        self,
        op: FFTOperator,
        total: int,
        progress: ProgressFn | None,
        callback: Callback | None,
        message: str,
    ):
        self.op, self.total, self.progress, self.callback = op, total, progress, callback
        self.message = message

    def prediction(self, k: int, model: torch.Tensor) -> None:
        return None

    def step(self, k: int, x: torch.Tensor) -> bool:
        report(self.progress, k, self.total, self.message)
        if self.callback is not None:
            estimate = self.op.crop(x).detach().to("cpu", copy=True).numpy()
            if self.callback(k, estimate) is False:
                return False
        return True


class Deconvolver:
    """Deconvolution context for one PSF and one image shape (reused across a time series).

    Holds the padded OTF, the Bertero–Boccacci weights and the scratch buffers, so that
    deconvolving many frames (or channels imaged with the same PSF) pays for them once.

    Parameters
    ----------
    psf : (Z, Y, X) ndarray
        PSF with its centre at index ``n // 2`` on each axis; normalised to sum 1 here.
    image_shape : tuple of int
        Shape of the frames that will be deconvolved.
    method : str
        One of :data:`METHODS`.
    regularization : float, optional
        Method parameter (see ``docs/classical.md``); ``None`` uses
        :data:`DEFAULT_REGULARIZATION`.
    boundary : {"unknown", "reflect", "periodic"}
        Boundary model (see :mod:`neurodecon.classical._operator`).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Examples
    --------
    >>> import numpy as np
    >>> from neurodecon.classical import Deconvolver
    >>> psf = np.zeros((5, 5, 5), np.float32); psf[2, 2, 2] = 1
    >>> dec = Deconvolver(psf, (8, 16, 16), method="rl", device="cpu")
    >>> frames = [np.ones((8, 16, 16), np.float32)] * 2
    >>> [float(dec(f, iterations=3).mean()) for f in frames]
    [1.0, 1.0]
    """

    def __init__(
        self,
        psf: Any,
        image_shape: Sequence[int],
        *,
        method: str = "rl",
        regularization: float | None = None,
        boundary: str = "unknown",
        device: str = "auto",
    ):
        from ..device import resolve_device

        self.method = _check_method(method)
        if boundary not in BOUNDARIES:
            raise user_error(
                f"unknown boundary {boundary!r}", fix=f"use one of {', '.join(BOUNDARIES)}"
            )
        self.boundary = boundary
        self.image_shape = tuple(int(n) for n in image_shape)
        if any(n < 1 for n in self.image_shape):
            raise user_error(f"the image is empty (shape {self.image_shape})")
        psf = normalize_psf(psf, ndim=len(self.image_shape))
        # Direct filters cannot leave voxels unobserved: they use mirrored padding instead.
        grid = "reflect" if (self.method in DIRECT_METHODS and boundary == "unknown") else boundary
        self.psf = _fit_psf(psf, self.image_shape, grid)
        reg = (
            DEFAULT_REGULARIZATION.get(self.method, 0.0)
            if regularization is None
            else regularization
        )
        if reg is not None:
            try:
                reg = float(reg)
            except (TypeError, ValueError):
                reg = float("nan")
            if not np.isfinite(reg) or reg < 0:
                raise user_error(
                    f"regularization must be a non-negative number, not {regularization!r}"
                )
        self.regularization = reg
        self.device = resolve_device(device)
        self.geometry = plan_geometry(self.image_shape, self.psf.shape, grid)
        self.op = FFTOperator(self.psf, self.geometry, self.device)
        self._x: torch.Tensor | None = None

    # -- data ----------------------------------------------------------------------------------
    def _observed_data(self, image: np.ndarray) -> torch.Tensor:
        """The data on the observed region of the grid (mirrored into the padding for reflect)."""
        if self.geometry.boundary == "reflect":
            widths = [
                (sl.start, p - sl.stop)
                for sl, p in zip(self.geometry.crop, self.geometry.padded_shape, strict=True)
            ]
            image = np.pad(image, widths, mode="symmetric")
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(self.device)

    def _estimate_buffer(self) -> torch.Tensor:
        if self._x is None:
            self._x = torch.empty(self.op.shape, dtype=torch.float32, device=self.device)
        return self._x

    def _initial_estimate(self, y: torch.Tensor, b: float) -> torch.Tensor:
        x = self._estimate_buffer()
        level = max(float(y.mean()) - b, 0.0)
        level = level if level > 0 else max(float(y.abs().mean()), 1.0) * 1e-3
        if self.op.weights is not None:
            torch.sign(self.op.weights, out=x)  # 1 where the voxel is visible, 0 where not
            x.mul_(level)
        else:
            x.fill_(level)
        return x

    # -- running -------------------------------------------------------------------------------
    def __call__(
        self,
        image: Any,
        *,
        iterations: int | str = 50,
        background: float | str = 0.0,
        progress: ProgressFn | None = None,
        callback: Callback | None = None,
    ) -> np.ndarray:
        """Deconvolve one frame; returns a float32 array of the frame's shape.

        See :func:`deconvolve` for the parameters.
        """
        img = _as_float32(image, "the image")
        if img.shape != self.image_shape:
            raise user_error(
                f"the frame has shape {img.shape}, the deconvolver was made for {self.image_shape}",
                fix="make one Deconvolver per frame shape",
            )
        b = self._background(img, background)
        iterations = _check_iterations(iterations)
        if self.method in POISSON_METHODS and img.min() < 0:
            img = np.clip(img, 0.0, None)  # a copy: the caller's array is never modified
        if self.method in POISSON_METHODS and b < 0:
            # a negative background (an estimate on offset-free data with read noise) would make
            # the Poisson model H x + b vanish in dark regions, where y / (H x + b) then explodes
            # (seen: rl-accel diverged to NaN on such data); the clipped data's background is 0
            log.info("background %.4g < 0 set to 0 for %s (Poisson model)", b, self.method)
            b = 0.0
        if self.method in DIRECT_METHODS:
            return self._direct(img, b, progress)
        if iterations == "auto":
            from ._stopping import auto_iterations

            iterations = auto_iterations(self, img, b, progress=progress)
            log.info("iterations=auto: %d iterations (held-out likelihood)", iterations)
        y = self._observed_data(img)
        x = self._initial_estimate(y, b)
        hooks = _RunHooks(self.op, iterations, progress, callback, f"{self.method}")
        self._iterate(y, b, x, iterations, hooks)
        return self._result(x)

    def _background(self, img: np.ndarray, background: float | str) -> float:
        if isinstance(background, str):
            if background.lower() != "auto":
                try:
                    return float(background)
                except ValueError:
                    raise user_error(
                        f"background must be a number or 'auto', not {background!r}"
                    ) from None
            b = estimate_background(img)
            log.info("background=auto: %.4g", b)
            return b
        b = float(background)
        if not np.isfinite(b):
            raise user_error(f"background must be finite, not {background!r}")
        return b

    def _iterate(self, y: torch.Tensor, b: float, x: torch.Tensor, iterations: int, hooks) -> None:
        op, m, reg = self.op, self.method, self.regularization
        if m == "rl":
            richardson_lucy(op, y, b, x, iterations, hooks)
        elif m == "rl-accel":
            rl_accelerated(op, y, b, x, iterations, hooks)
        elif m == "rltv":
            rl_tv(op, y, b, x, iterations, hooks, lam=reg)
        elif m in ("landweber", "landweber+"):
            landweber(op, y, b, x, iterations, hooks, positive=m.endswith("+"))
        elif m in ("tm", "ictm"):
            tikhonov_miller(op, y, b, x, iterations, hooks, lam=reg, positive=m == "ictm")
        else:  # pragma: no cover - methods are validated in __init__
            raise ValueError(m)

    def _direct(self, img: np.ndarray, b: float, progress: ProgressFn | None) -> np.ndarray:
        report(progress, 0, 1, self.method)
        y = self._observed_data(img - np.float32(b))
        if y.shape != self.op.shape:  # never for direct methods (reflect or periodic grid)
            raise AssertionError("direct filters need data on the whole grid")
        x = self._estimate_buffer()
        direct_filter(self.op, y, self.method, self.regularization, x)
        report(progress, 1, 1, self.method)
        return self._result(x)

    def _result(self, x: torch.Tensor) -> np.ndarray:
        out = self.op.crop(x).to("cpu").numpy()
        out = np.array(out, dtype=np.float32, copy=True, order="C")
        if not np.isfinite(out).all():
            raise user_error(
                f"{self.method} diverged (non-finite values)",
                fix="use fewer iterations or a larger --regularization",
            )
        if self.method in NON_NEGATIVE:
            np.clip(out, 0.0, None, out=out)
        return out


# -- convenience ---------------------------------------------------------------------------------
def _channel_psfs(psf: Any, n_channels: int, ndim: int) -> list[Any]:
    if isinstance(psf, (list, tuple)):
        psfs = list(psf)
    else:
        arr = np.asarray(psf)
        psfs = list(arr) if arr.ndim == ndim + 1 else [arr] * n_channels
    if len(psfs) != n_channels:
        raise user_error(
            f"{len(psfs)} PSFs for {n_channels} channels", fix="give one PSF, or one per channel"
        )
    return psfs


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
) -> np.ndarray:
    """Deconvolve a ``(Z, Y, X)`` stack (or ``(C, Z, Y, X)``, one PSF per channel).

    Parameters
    ----------
    image : (Z, Y, X) or (C, Z, Y, X) array_like
        The blurred stack (any real dtype; computed in float32). 2-D ``(Y, X)`` images work too.
    psf : (z, y, x) array_like, (C, z, y, x) array_like or list of arrays
        The PSF, centre at index ``n // 2`` on each axis (normalised to sum 1 here); one per
        channel or one shared by all channels.
    method : str
        One of :data:`METHODS`: ``nif, wiener, tikhonov, rif`` (closed-form filters),
        ``landweber, landweber+, tm, ictm`` (least squares), ``rl, rltv, rl-accel`` (Poisson).
    iterations : int or "auto"
        Number of iterations of an iterative method (ignored by the closed-form filters);
        ``"auto"`` chooses it by cross-validation on binomially thinned counts.
    regularization : float, optional
        ε (nif), λ (tikhonov, rif, tm, ictm, rltv) or the noise-to-signal multiplier (wiener);
        default :data:`DEFAULT_REGULARIZATION`.
    background : float or "auto"
        Background / camera offset: part of the forward model ``y = Hx + b``, never in the result.
        ``"auto"`` estimates it per channel (:func:`estimate_background`).
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

    Returns
    -------
    ndarray
        float32, same shape as ``image``; non-negative for ``rl, rl-accel, rltv, landweber+,
        ictm``.

    Examples
    --------
    >>> import numpy as np
    >>> from neurodecon.classical import deconvolve
    >>> psf = np.ones((3, 3, 3), np.float32)
    >>> img = np.full((8, 16, 16), 10.0, np.float32)
    >>> out = deconvolve(img, psf, "rl", iterations=5, background=2.0, device="cpu")
    >>> out.shape, out.dtype, round(float(out.mean()), 3)
    ((8, 16, 16), dtype('float32'), 8.0)
    """
    method = _check_method(method)
    arr = np.asarray(image)
    if arr.ndim > 4 and not isinstance(psf, (list, tuple)) and np.ndim(psf) == 3:
        # (T, C, Z, Y, X) and the like with one PSF: every 3-D frame in turn, sharing the buffers
        flat = arr.reshape(-1, *arr.shape[-3:])
        return deconvolve(
            flat,
            psf,
            method,
            iterations=iterations,
            regularization=regularization,
            background=background,
            boundary=boundary,
            device=device,
            progress=progress,
            callback=callback,
        ).reshape(arr.shape)
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
    channels = arr.ndim == 4 or arr.ndim == psf_ndim + 1
    if not channels:
        dec = Deconvolver(
            psf,
            arr.shape,
            method=method,
            regularization=regularization,
            boundary=boundary,
            device=device,
        )
        return dec(
            arr, iterations=iterations, background=background, progress=progress, callback=callback
        )
    psfs = _channel_psfs(psf, arr.shape[0], arr.ndim - 1)
    out = np.empty(arr.shape, dtype=np.float32)
    dec = None
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
                regularization=regularization,
                boundary=boundary,
                device=device,
            )
        out[c] = dec(
            frame,
            iterations=iterations,
            background=background,
            progress=channel_progress if progress is not None else None,
            callback=callback,
        )
    return out
