"""What a deconvolution returns with ``return_result=True``: the image and the values it used."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DeconvolutionResult", "stack_results"]


@dataclass(frozen=True, eq=False)
class DeconvolutionResult:
    """A deconvolved image with the parameters that were actually used to make it.

    Returned by :func:`neurodecon.classical.deconvolve` and :class:`Deconvolver` calls given
    ``return_result=True``, so that reports record what ran (the count ``iterations="auto"``
    chose, the estimated background) instead of what was asked.

    For a single frame every per-frame field is a scalar. For a stack of frames deconvolved one
    by one (``(C, Z, Y, X)`` channels, or more leading axes with one 3-D PSF) ``iterations``,
    ``background``, ``regularization`` and ``auto`` are lists with one entry per frame, in the
    order of the flattened leading axes; the other fields are shared.

    Attributes
    ----------
    data : ndarray
        The result, float32, the input's shape.
    method : str
        The method's canonical name.
    iterations : int, None or list
        Iterations actually run: the count chosen by ``"auto"``, fewer when a ``callback``
        stopped early; ``None`` for the closed-form filters.
    iterations_requested : int, "auto" or None
        The count asked for (after parsing); ``None`` for the closed-form filters, which ignore
        it.
    background : float or list of float
        Background used in the model: the estimate for ``"auto"``, 0 where a negative value was
        set to 0 for a Poisson method.
    boundary : str
        The boundary model applied (the closed-form filters apply ``"reflect"`` when
        ``"unknown"`` is asked: they cannot leave voxels unobserved).
    regularization : float, None or list
        The regularization used (estimated from the data for ``tikhonov``/``rif`` without a
        value); ``None`` for methods that take none (``rl``, ``rl-accel``, ``landweber``,
        ``landweber+``).
    auto : dict, None or list
        For ``iterations="auto"``, the cross-validation's summary
        (:meth:`neurodecon.classical.stopping.AutoChoice.summary`: the half-data maximum, the
        curve's length, whether the count was capped, ...); else ``None``.
    device : str
        The torch device that computed it (``"cpu"``, ``"cuda"``, ...).
    initial : str
        The start of the iterations: ``"flat"`` (the data's mean) or ``"data"`` (the data).
    background_mode : str
        ``"model"``: the background is in the forward model ``Hx + b``; ``"subtract"``: it was
        subtracted from the data (clipped at 0) before deconvolving.
    """

    data: np.ndarray
    method: str
    iterations: int | None | list[int | None]
    iterations_requested: int | str | None
    background: float | list[float]
    boundary: str
    regularization: float | None | list[float | None]
    auto: dict[str, Any] | None | list[dict[str, Any] | None]
    device: str
    initial: str = "flat"
    background_mode: str = "model"

    def parameters(self) -> dict[str, Any]:
        """Return every field but ``data``, as a JSON-friendly dict (for reports and logs)."""
        return {
            "method": self.method,
            "iterations": self.iterations,
            "iterations_requested": self.iterations_requested,
            "background": self.background,
            "boundary": self.boundary,
            "regularization": self.regularization,
            "auto": self.auto,
            "device": self.device,
            "initial": self.initial,
            "background_mode": self.background_mode,
        }


def stack_results(results: list[DeconvolutionResult], data: np.ndarray) -> DeconvolutionResult:
    """Combine the results of frames deconvolved one by one into one result for ``data``."""
    first = results[0]
    return DeconvolutionResult(
        data=data,
        method=first.method,
        iterations=[_one(r.iterations) for r in results],
        iterations_requested=first.iterations_requested,
        background=[float(_one(r.background)) for r in results],
        boundary=first.boundary,
        regularization=[_one(r.regularization) for r in results],
        auto=[_one(r.auto) for r in results],
        device=first.device,
        initial=first.initial,
        background_mode=first.background_mode,
    )


def _one(value: Any) -> Any:
    if isinstance(value, list):  # pragma: no cover - frames are single-frame results
        raise TypeError("a per-frame result holds one value per field")
    return value
