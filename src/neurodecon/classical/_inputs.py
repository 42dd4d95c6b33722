"""Checks of the classical engine's inputs: arrays, PSFs and options, each a one-line user error.

Also prepares the PSF for the FFT grid (trimmed, cropped for periodic boundaries) and resolves
``background="auto"``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..errors import user_error
from ..metrics import estimate_background
from ._methods import DEFAULT_REGULARIZATION, METHODS, NON_NEGATIVE, POISSON_METHODS
from ._operator import BOUNDARIES

__all__ = [
    "INITIAL_ESTIMATES",
    "BACKGROUND_MODES",
    "check_signal",
    "check_start",
    "checked_output",
    "as_float32",
    "channel_psfs",
    "check_boundary",
    "check_method",
    "check_regularization",
    "fit_psf",
    "normalize_psf",
    "parse_iterations",
    "poisson_data",
    "rescaled",
    "resolve_background",
]

log = logging.getLogger("neurodecon")


# -- arrays --------------------------------------------------------------------------------------
def as_float32(array: Any, what: str) -> np.ndarray:
    """Return ``array`` as a C-contiguous, finite float32 ndarray (``what`` names it in errors)."""
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

    Parameters
    ----------
    psf : (z, y, x) array_like
        The PSF, any scale.
    ndim : int, optional
        The number of dimensions it must have (the image's).

    Returns
    -------
    (z, y, x) ndarray
        float32, sum 1.

    Examples
    --------
    >>> import numpy as np
    >>> normalize_psf(np.array([[-0.1, 2.0, 2.0]])).tolist()
    [[0.0, 0.5, 0.5]]
    """
    p = as_float32(psf, "PSF")
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


def fit_psf(psf: np.ndarray, image_shape: tuple[int, ...], boundary: str) -> np.ndarray:
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


def channel_psfs(psf: Any, n_channels: int, ndim: int) -> list[Any]:
    """Return one PSF per channel: a list as given, a stack split, or one PSF repeated."""
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


# -- options -------------------------------------------------------------------------------------
def check_method(method: str) -> str:
    """Return the method's canonical (lower-case) name; an unknown one is a user error."""
    name = str(method).lower()
    if name not in METHODS:
        raise user_error(f"unknown method {method!r}", fix=f"use one of {', '.join(METHODS)}")
    return name


#: Starts of the iterations: the data's mean everywhere, or the data itself.
INITIAL_ESTIMATES = ("flat", "data")
#: Where the background goes: into the forward model ``Hx + b``, or subtracted from the data.
BACKGROUND_MODES = ("model", "subtract")


def check_start(initial: str, background_mode: str) -> tuple[str, str]:
    """Validate the ``initial`` estimate and the ``background_mode``; return them."""
    if initial not in INITIAL_ESTIMATES:
        raise user_error(
            f"unknown initial estimate {initial!r}",
            fix=f"use one of {', '.join(INITIAL_ESTIMATES)}",
        )
    if background_mode not in BACKGROUND_MODES:
        raise user_error(
            f"unknown background mode {background_mode!r}",
            fix=f"use one of {', '.join(BACKGROUND_MODES)}",
        )
    return initial, background_mode


def check_boundary(boundary: str) -> str:
    """Return ``boundary`` if it is one of :data:`BOUNDARIES`; else raise a user error."""
    if boundary not in BOUNDARIES:
        raise user_error(
            f"unknown boundary {boundary!r}", fix=f"use one of {', '.join(BOUNDARIES)}"
        )
    return boundary


def parse_iterations(iterations: Any) -> int | str:
    """Check an iteration count: a non-negative integer (or its text), or ``"auto"``.

    Parameters
    ----------
    iterations : int, str
        What the user gave: ``30``, ``"30"``, ``"auto"`` (any case).

    Returns
    -------
    int or "auto"

    Raises
    ------
    neurodecon.errors.NeuroDeconError
        (a user error) for anything else: negative, fractional, boolean or other text.

    Examples
    --------
    >>> parse_iterations("40"), parse_iterations("AUTO"), parse_iterations(0)
    (40, 'auto', 0)
    """
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


def check_regularization(method: str, regularization: Any) -> float | None:
    """Return the regularization to use: the given one, or the method's default.

    ``None`` means "estimated from the data" (tikhonov, rif without a value); methods without a
    regularization parameter get ``0.0``.
    """
    reg = DEFAULT_REGULARIZATION.get(method, 0.0) if regularization is None else regularization
    if reg is None:
        return None
    try:
        value = float(reg)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value < 0:
        raise user_error(f"regularization must be a non-negative number, not {regularization!r}")
    return value


def resolve_background(img: np.ndarray, background: float | str) -> float:
    """Return the background value: a number (or its text) as given, ``"auto"`` estimated."""
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


def check_signal(img: np.ndarray, background: float, method: str, *, auto: bool = False) -> None:
    """Refuse data with no voxel above the background: the result would be all zero.

    For the Poisson methods negative data and a negative background count as 0 (see
    :func:`poisson_data`), so an image without any positive value is refused too.
    """
    top = float(img.max())
    poisson = method in POISSON_METHODS
    floor = max(background, 0.0) if poisson else background
    if top > floor:
        return
    if poisson and top <= 0:
        raise user_error(
            f"the image has no positive value (maximum {top:.6g}); {method} models photon counts "
            "≥ 0, so the result would be all zero",
            fix="check that this is the right image (not inverted or offset-subtracted below 0), "
            "or use a least-squares method such as landweber or tm",
        )
    if float(img.min()) == top:
        raise user_error(
            f"the image is constant (every voxel is {top:.6g}): there is nothing to deconvolve",
            fix="check that this is the right file and channel",
        )
    given = "estimated (auto)" if auto else "given"
    raise user_error(
        f"every voxel (maximum {top:.6g}) is at or below the {given} background "
        f"{background:.6g}, so the result would be all zero",
        fix="give a background below the data (in the image's units), e.g. --background 0",
    )


def poisson_data(img: np.ndarray, b: float, method: str) -> tuple[np.ndarray, float]:
    """Clip negative data (a copy) and a negative background to 0 for the Poisson methods."""
    if method in POISSON_METHODS and img.min() < 0:
        img = np.clip(img, 0.0, None)  # a copy: the caller's array is never modified
    if method in POISSON_METHODS and b < 0:
        # a negative background (an estimate on offset-free data with read noise) would make
        # the Poisson model H x + b vanish in dark regions, where y / (H x + b) then explodes
        # (seen: rl-accel diverged to NaN on such data); the clipped data's background is 0
        log.info("background %.4g < 0 set to 0 for %s (Poisson model)", b, method)
        b = 0.0
    return img, b


def checked_output(out: np.ndarray, method: str) -> np.ndarray:
    """Refuse a non-finite or all-zero result; clip the non-negative methods' result at 0."""
    if not np.isfinite(out).all():
        raise user_error(
            f"{method} gave non-finite values (it diverged, or the result exceeds float32)",
            fix="use fewer iterations or a larger --regularization",
        )
    if method in NON_NEGATIVE:
        np.clip(out, 0.0, None, out=out)
    if not out.any():
        raise user_error(
            f"{method} gave an all-zero result: the data hold no signal it can resolve above "
            "the background",
            fix="check the image and lower the background (e.g. --background auto)",
        )
    return out


#: Data whose largest magnitude lies outside this range are scaled into it for the computation
#: (squares and spectra of 1e-30 underflow float32, of 1e30 overflow it); results are scaled back.
SAFE_RANGE = (1e-6, 1e9)


def rescaled(img: np.ndarray, background: float = 0.0) -> tuple[np.ndarray, float]:
    """Return ``(img / s, s)``: values brought to a largest magnitude of 1000 if out of range.

    The largest magnitude of the data or the background decides (outside SAFE_RANGE). Every
    method is equivariant to this scaling (with the background divided by ``s`` too), so the
    result times ``s`` is the result on the original data; ``s = 1`` (no copy) for usual data.
    """
    top = max(float(np.abs(img).max()) if img.size else 0.0, abs(float(background)))
    if top == 0.0 or SAFE_RANGE[0] <= top <= SAFE_RANGE[1]:
        return img, 1.0
    scale = top / 1000.0
    return (img / np.float32(scale)).astype(np.float32), scale
