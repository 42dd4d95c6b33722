"""The reusable deconvolution context :class:`Deconvolver` (one PSF, one frame shape).

It owns the FFT operator and the estimate buffer, runs a method on one frame and implements the
small interface through which the ``auto`` stopping rule drives it
(:class:`~neurodecon.classical.stopping.IterativeSolver`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
import torch

from ..errors import user_error
from ..memory import check_memory
from ..progress import ProgressFn, report
from ._direct import direct_filter, estimated_regularization
from ._inputs import (
    as_float32,
    check_boundary,
    check_method,
    check_regularization,
    check_signal,
    check_start,
    checked_output,
    fit_psf,
    normalize_psf,
    parse_iterations,
    poisson_data,
    rescaled,
    resolve_background,
)
from ._iterative import Callback, Hooks, RunHooks, run_method
from ._memory import deconvolution_bytes
from ._methods import DEFAULT_REGULARIZATION, DIRECT_METHODS
from ._operator import FFTOperator, plan_geometry
from ._result import DeconvolutionResult
from .stopping import AutoChoice, cross_validate

__all__ = ["Callback", "Deconvolver"]

log = logging.getLogger("neurodecon")


class Deconvolver:
    """Deconvolution context for one PSF and one image shape (reused across a time series).

    Holds the padded OTF, the Bertero–Boccacci weights and the scratch buffers, so that
    deconvolving many frames (or channels imaged with the same PSF) pays for them once.

    Parameters
    ----------
    psf : (Z, Y, X) array_like
        PSF with its centre at index ``n // 2`` on each axis; normalised to sum 1 here.
    image_shape : tuple of int
        Shape of the frames that will be deconvolved.
    method : str
        One of :data:`~neurodecon.classical.METHODS`.
    regularization : float, optional
        Method parameter (see ``docs/classical.md``); ``None`` uses
        :data:`~neurodecon.classical.DEFAULT_REGULARIZATION`.
    boundary : {"unknown", "reflect", "periodic"}
        Boundary model (see ``docs/classical.md``).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Attributes
    ----------
    acceleration : list of float or None
        ``rl-accel``'s extrapolation factors: None computes them; a list is replayed (blocks of
        a volume use the volume's), an empty one filled with those computed.

    Examples
    --------
    >>> import numpy as np
    >>> from neurodecon.classical import Deconvolver
    >>> psf = np.zeros((5, 5, 5), np.float32)
    >>> psf[2, 2, 2] = 1
    >>> dec = Deconvolver(psf, (8, 16, 16), method="rl", device="cpu")
    >>> frames = [np.ones((8, 16, 16), np.float32)] * 2
    >>> [float(dec(f, iterations=3).mean()) for f in frames]
    [1.0, 1.0]
    >>> dec(frames[0], iterations=3, return_result=True).iterations
    3
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

        self.method = check_method(method)
        self.boundary = check_boundary(boundary)
        self.image_shape = tuple(int(n) for n in image_shape)
        if any(n < 1 for n in self.image_shape):
            raise user_error(f"the image is empty (shape {self.image_shape})")
        psf = normalize_psf(psf, ndim=len(self.image_shape))
        # Direct filters cannot leave voxels unobserved: they use mirrored padding instead.
        grid = "reflect" if (self.method in DIRECT_METHODS and boundary == "unknown") else boundary
        self.psf = fit_psf(psf, self.image_shape, grid)
        self.regularization = check_regularization(self.method, regularization)
        self.device = resolve_device(device)
        self.geometry = plan_geometry(self.image_shape, self.psf.shape, grid)
        if self.device.type == "cpu":  # (a GPU running out raises torch.OutOfMemoryError)
            check_memory(
                deconvolution_bytes(
                    self.image_shape, self.psf.shape, method=self.method, boundary=grid
                ),
                f"{self.method} on a {'×'.join(map(str, self.image_shape))} image with a "
                f"{'×'.join(map(str, self.psf.shape))} PSF",
                fix="crop the stack (or split it into blocks), or use a machine with more memory",
            )
        self.op = FFTOperator(self.psf, self.geometry, self.device)
        self._x: torch.Tensor | None = None
        self._scale = 1.0
        self._run_options: tuple[str, str] = ("flat", "model")
        self.acceleration: list[float] | None = None

    # -- the interface of the auto rule (stopping.IterativeSolver) -------------------------------
    def observed_data(self, image: np.ndarray) -> torch.Tensor:
        """Put a frame of :attr:`image_shape` on the observed region of the grid.

        Returns float32 on :attr:`device`, of the observed region's shape: the padded grid's for
        the ``reflect`` (mirrored into the padding) and ``periodic`` boundaries, the frame's for
        ``unknown``.
        """
        if self.geometry.boundary == "reflect":
            widths = [
                (sl.start, p - sl.stop)
                for sl, p in zip(self.geometry.crop, self.geometry.padded_shape, strict=True)
            ]
            image = np.pad(image, widths, mode="symmetric")
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(self.device)

    def initial_estimate(
        self, y: torch.Tensor, b: float, *, level: float | None = None
    ) -> torch.Tensor:
        """Set the (reused) estimate buffer to the flat start for ``y`` and return it.

        Level: ``level``, else the data's mean above ``b`` where the data are seen (or > 0).
        """
        x = self._estimate_buffer()
        level = max(float(y.mean()) - b, 0.0) if level is None else level
        level = level if level > 0 else max(float(y.abs().mean()), 1.0) * 1e-3
        if self.op.weights is not None:
            torch.sign(self.op.weights, out=x)  # 1 where the voxel is visible, 0 where not
            x.mul_(level)
        else:
            x.fill_(level)
        return x

    def start_from_data(self, x: torch.Tensor, y: torch.Tensor, background: float) -> None:
        """Overwrite the flat start ``x`` with the data above the background where it is seen.

        Outside the field of view (``unknown`` boundary) the flat level stays. Values are kept
        at least 1e-3 of the mean so that multiplicative updates can still move every voxel.
        """
        data = (y - background).clamp_(min=0.0)
        data.clamp_(min=1e-3 * max(float(data.mean()), 1e-12))
        if self.geometry.boundary == "unknown":
            x[self.geometry.crop] = data
        else:
            x.copy_(data)

    def iterate(
        self,
        y: torch.Tensor,
        background: float,
        x: torch.Tensor,
        iterations: int,
        hooks: Hooks,
        *,
        method: str | None = None,
    ) -> None:
        """Run ``iterations`` of the method on the estimate ``x`` in place.

        Parameters
        ----------
        y : torch.Tensor
            Data from :meth:`observed_data`.
        background : float
            Background of ``y``.
        x : torch.Tensor
            Estimate on the padded grid, e.g. from :meth:`initial_estimate`.
        iterations : int
            At most this many iterations (``hooks.step`` returning ``False`` stops earlier).
        hooks : Hooks
            ``prediction(k, model)`` and ``step(k, x)``, see ``_iterative``.
        method : str, optional
            Another iterative method to run with this deconvolver's operator and regularization
            (the ``auto`` rule cross-validates ``rl-accel`` with ``"rl"``).
        """
        m = self.method if method is None else method
        lam = self.regularization if self.regularization is not None else 0.0
        run_method(m, self.op, y, background, x, iterations, hooks, lam, self.acceleration)

    @overload
    def __call__(
        self,
        image: Any,
        *,
        iterations: int | str = ...,
        background: float | str = ...,
        progress: ProgressFn | None = ...,
        callback: Callback | None = ...,
        initial: str = ...,
        background_mode: str = ...,
        return_result: Literal[False] = ...,
        flat_level: float | None = ...,
    ) -> np.ndarray: ...

    @overload
    def __call__(
        self,
        image: Any,
        *,
        iterations: int | str = ...,
        background: float | str = ...,
        progress: ProgressFn | None = ...,
        callback: Callback | None = ...,
        initial: str = ...,
        background_mode: str = ...,
        return_result: Literal[True],
        flat_level: float | None = ...,
    ) -> DeconvolutionResult: ...

    def __call__(
        self,
        image: Any,
        *,
        iterations: int | str = 50,
        background: float | str = 0.0,
        progress: ProgressFn | None = None,
        callback: Callback | None = None,
        initial: str = "flat",
        background_mode: str = "model",
        return_result: bool = False,
        flat_level: float | None = None,
    ) -> np.ndarray | DeconvolutionResult:
        """Deconvolve one frame; return a float32 array of the frame's shape.

        See :func:`~neurodecon.classical.deconvolve` for the parameters. With
        ``return_result=True`` return a :class:`~neurodecon.classical.DeconvolutionResult`
        (the array and the iterations, background and regularization used). ``flat_level``
        (counts) replaces the frame's mean above the background as the flat start's level.
        """
        requested = parse_iterations(iterations)
        img, b, b_model, start, mode = self._prepared(image, background, initial, background_mode)
        if self.method in DIRECT_METHODS:
            out, reg = self._direct(img, b_model, progress)
            return self._finish(out, return_result, None, None, b, reg, None)
        auto, warm, done_before = None, None, 0
        if isinstance(requested, str):  # "auto"
            choice = self._validated(img, b_model, progress, start=start)
            count, auto, warm = choice.full_data_iterations, choice.summary(), choice.start
            if choice.warm_start:
                done_before = choice.half_data_iterations
                log.info(
                    "iterations=auto: %d iterations (held-out likelihood; the first %d on half "
                    "the counts)", choice.iterations, done_before,
                )  # fmt: skip
            else:
                log.info("iterations=auto: %d iterations (held-out likelihood)", count)
            del choice
        else:
            count = requested
            if count == 0:
                log.warning("iterations=0: the result is the initial estimate (%s start)", start)
        y = self.observed_data(img)
        level = flat_level if flat_level is None else flat_level / self._scale
        x = self.initial_estimate(y, b_model, level=level)
        if warm is not None:  # continue the cross-validation's estimate (stopping module)
            x.copy_(warm)
            del warm
        elif start == "data":
            self.start_from_data(x, y, b_model)
        hooks = RunHooks(self.op, count, progress, callback, f"{self.method}", self._scale)
        self.iterate(y, b_model, x, count, hooks)
        out = self._output(x)
        used = self.regularization if self.method in DEFAULT_REGULARIZATION else None
        done = hooks.done + done_before
        return self._finish(out, return_result, done, requested, b, used, auto)

    def _prepared(
        self, image: Any, background: float | str, initial: str, background_mode: str
    ) -> tuple[np.ndarray, float, float, str, str]:
        """Check a frame; return ``(data, background, background in the model, start, mode)``.

        The data are float32, clipped at 0 for the Poisson methods, rescaled to float32-safe
        values (``self._scale``), with the background subtracted in the ``subtract`` mode.
        """
        img = as_float32(image, "the image")
        if img.shape != self.image_shape:
            raise user_error(
                f"the frame has shape {img.shape}, the deconvolver was made for {self.image_shape}",
                fix="make one Deconvolver per frame shape",
            )
        b = resolve_background(img, background)
        start, mode = check_start(initial, background_mode)
        check_signal(img, b, self.method, auto=isinstance(background, str))
        img, b = poisson_data(img, b, self.method)
        img, self._scale = rescaled(img, b)  # float32-safe values (1e-30 or 1e30 data)
        self._run_options = (start, mode)
        b_model = b / self._scale
        if mode == "subtract":  # y − b clipped at 0, then a model without background
            img, b_model = np.clip(img - np.float32(b_model), 0.0, None), 0.0
        return img, b, b_model, start, mode

    def count_from_flat(
        self,
        image: Any,
        *,
        background: float | str = 0.0,
        initial: str = "flat",
        background_mode: str = "model",
        progress: ProgressFn | None = None,
    ) -> AutoChoice:
        """Choose ``auto``'s iteration count for a run that starts from the flat estimate.

        ``iterations="auto"`` continues its cross-validation's estimate for ``rl`` and
        ``rl-accel``; where that is impossible (blocks of a volume larger than memory, deciding
        once for many frames) this gives the count of the rule without that warm start:
        ``2·k½`` (RL), ``2.2·√(plain RL's count)`` (rl-accel; see
        :func:`~neurodecon.classical.stopping.cross_validate` with ``warm=False``).
        """
        if self.method in DIRECT_METHODS:
            raise user_error(f"{self.method} is not iterative", fix="give an iterative method")
        img, _, b_model, start, _ = self._prepared(image, background, initial, background_mode)
        return self._validated(img, b_model, progress, warm=False, start=start)

    def _validated(self, img: np.ndarray, b: float, progress: Any, **kw: Any) -> AutoChoice:
        replay, self.acceleration = self.acceleration, None  # the half data's own factors
        try:
            return cross_validate(self, img, b, progress=progress, **kw)
        finally:
            self.acceleration = replay

    def _finish(
        self,
        out: np.ndarray,
        return_result: bool,
        iterations: int | None,
        requested: int | str | None,
        background: float,
        regularization: float | None,
        auto: dict[str, Any] | None,
    ) -> np.ndarray | DeconvolutionResult:
        if not return_result:
            return out
        return DeconvolutionResult(
            data=out,
            method=self.method,
            iterations=iterations,
            iterations_requested=requested,
            background=float(background),
            boundary=self.geometry.boundary,
            regularization=regularization,
            auto=auto,
            device=str(self.device),
            initial=self._run_options[0],
            background_mode=self._run_options[1],
        )

    def _estimate_buffer(self) -> torch.Tensor:
        if self._x is None:
            self._x = torch.empty(self.op.shape, dtype=torch.float32, device=self.device)
        return self._x

    def _direct(
        self, img: np.ndarray, b: float, progress: ProgressFn | None
    ) -> tuple[np.ndarray, float]:
        """Apply the closed-form filter; return the result and the regularization used."""
        report(progress, 0, 1, self.method)
        y = self.observed_data(img - np.float32(b))
        if y.shape != self.op.shape:  # never for direct methods (reflect or periodic grid)
            raise AssertionError("direct filters need data on the whole grid")
        reg = self.regularization
        if reg is None:
            reg = estimated_regularization(self.op, y, self.method)
        x = self._estimate_buffer()
        direct_filter(self.op, y, self.method, reg, x)
        report(progress, 1, 1, self.method)
        return self._output(x), reg

    def _output(self, x: torch.Tensor) -> np.ndarray:
        out = np.array(self.op.crop(x).to("cpu").numpy(), dtype=np.float32, copy=True, order="C")
        if self._scale != 1.0:
            with np.errstate(over="ignore"):
                out *= np.float32(self._scale)
        return checked_output(out, self.method)
