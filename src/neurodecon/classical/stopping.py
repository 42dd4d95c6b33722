"""``iterations="auto"``: choose the number of iterations without ground truth.

Cross-validation on binomially thinned photon counts: ``y₁ ~ Binomial(y, ½)`` and
``y₂ = y − y₁`` are two *independent* Poisson images of the object with half the counts each. The
method runs on ``y₁`` (background ``b/2``); after each iteration the Poisson log-likelihood of
the held-out ``y₂`` under ``H x_k + b/2`` rises while signal is recovered, falls once ``y₁``'s
noise is fitted. Measured in ``benchmarks/bench_auto.py`` (docs/classical.md, BENCHMARKS.md).

**Richardson–Lucy and rl-accel: the full run continues the cross-validation's estimate.** Each
is cross-validated with itself; the estimate after the last iteration ``k_s`` that raised the
held-out likelihood by more than ``SIGNIFICANT`` of its gain is kept, and the half-data run stops
at ``LOOKAHEAD·k_s + LOOKAHEAD_MIN``. RL is homogeneous (data and background scaled by α scale
every iterate by α), so that estimate scaled to the full flux is about where a full-data run
would be after ``k_s`` iterations: the full run starts there for ``CONTINUATION·k_s`` more. The
whole call costs about 1.2–1.5× one run of the count it reports (a separate cross-validation
and a cold run cost 1.8× for RL, 5–11× for rl-accel cross-validated with plain RL); the kept
estimate carries the thinned half's noise (0.1–0.3 dB below a cold run of the same count).

**The cold rule** (the other iterative methods; ``warm=False``; the fallback when the curve never
turned): the maximum ``k½`` of the held-out curve is the best count for half the counts, and
the full data, with twice the counts, get ``FULL_DATA_FACTOR · k½`` from the flat start (RL's
implicit regularisation weakens as ``1/k``, the optimal Poisson regularisation as
``1/counts``); ``rl-accel`` is then cross-validated with plain RL and mapped to
``ACCELERATED_FACTOR·√k``. The run stops ``k½/2 + 10`` after the maximum.

A PSF that does not quite match the data (too wide, truncated: typical of a bead PSF) makes the
held-out likelihood creep up long after the image has started to degrade. When it never turned
within the budget and was still creeping (``CREEP``), a warning is logged and, for the
Richardson–Lucy family, the count is capped at ``GAIN_CAP_FACTOR · k_gain`` (``k_gain``: the
first half-data iteration within ``GAIN_FRACTION`` of the total gain) from the flat start.

Thinning needs photon counts. Non-negative integer data are taken as counts (gain 1). Other data
(floating point, or rescaled) are converted with a gain estimated from the noise: the variance of
a high-pass residual against the local mean (Poisson: variance = gain × mean, the slope of a
robust line fit), then stochastically rounded. That assumes Poisson-dominated noise; the estimated
gain is logged.

The rule reaches the deconvolver only through the small :class:`IterativeSolver` interface
(:class:`~neurodecon.classical.Deconvolver` implements it); :func:`cross_validate` returns the
choice with its diagnostics and, for the warm-started methods, the estimate to continue from
(:class:`AutoChoice`); :func:`auto_iterations` just the count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from ..metrics import estimate_gain
from ..progress import ProgressFn
from ._heldout import (
    LOOKAHEAD,
    LOOKAHEAD_MIN,
    PLATEAU,
    SIGNIFICANT,
    HeldOut,
    gain_fraction_iteration,
    tail_gain,
)
from ._iterative import Hooks
from ._methods import POISSON_METHODS
from ._noise import to_counts

__all__ = [
    "ACCELERATED_BUDGET",
    "ACCELERATED_FACTOR",
    "ACCELERATED_GAIN_CAP_FACTOR",
    "CONTINUATION",
    "CREEP",
    "FULL_DATA_FACTOR",
    "GAIN_CAP_FACTOR",
    "GAIN_FRACTION",
    "LOOKAHEAD",
    "LOOKAHEAD_MIN",
    "MAX_AUTO_ITERATIONS",
    "PLATEAU",
    "SIGNIFICANT",
    "AutoChoice",
    "IterativeSolver",
    "auto_iterations",
    "cross_validate",
    "estimate_gain",
    "full_data_count",
    "gain_fraction_iteration",
    "tail_gain",
    "to_counts",
]

log = logging.getLogger("neurodecon")

#: Warm start: after the kept half-data estimate (``k_s`` iterations) the full data get
#: ``CONTINUATION[method] · k_s`` more. Chosen on ``benchmarks/bench_auto.py --study`` (worst
#: loss to the oracle; phantoms 4 × 3 seeds, blob phantom of the tests 4 seeds): RL 1.2 (0.13 dB,
#: blob 0.28); rl-accel 1.2 (0.35, blob 0.37), where 0.9 was best on the phantoms (0.21) only.
CONTINUATION = {"rl": 1.2, "rl-accel": 1.2}
#: Cold rule: k_full = FULL_DATA_FACTOR · k½ from the flat start (module docstring).
FULL_DATA_FACTOR = 2.0
#: rl-accel's oracle-best count is about ACCELERATED_FACTOR · √(plain RL's oracle-best count)
#: (2.0–2.4 on the blob phantom and 4 phantoms): the cold rule for rl-accel, and the demo's
#: fixed rl-accel count.
ACCELERATED_FACTOR = 2.2
#: Hard cap on the cross-validation run (read at each call).
MAX_AUTO_ITERATIONS = 1000
#: Cap ``k ≤ GAIN_CAP_FACTOR · k_gain``, ``k_gain`` the first half-data iteration within
#: ``GAIN_FRACTION`` of the total gain (``ℓ_k ≥ ℓ_max − f (ℓ_max − ℓ_0)``), only when the curve
#: never turned within the budget (a PSF 20 % too wide keeps it creeping while the image
#: degrades): applied always, it stopped bright true-PSF cases far too early (up to 4 dB lost).
GAIN_FRACTION = 0.01
GAIN_CAP_FACTOR = 3
#: rl-accel cross-validated with itself: budget ≈ the accelerated equivalent of 1000 RL
#: iterations (``ACCELERATED_FACTOR · √(2 · 1000)`` ≈ 98); reached still creeping up (maximum
#: anywhere: the look-ahead did not confirm it), ``1 · k_gain`` from the flat start. Measured
#: (``bench_auto.py``, 23 cases × 3 seeds): every true-PSF curve turned by 58; with a PSF 20 %
#: too wide 5 of 9 cases kept rising (k_s 79–362 unbounded, best count 13–17), k_gain 12–17.
ACCELERATED_BUDGET = 100
ACCELERATED_GAIN_CAP_FACTOR = 1
#: ... and only when the curve was still *creeping up*: its second half gained at least ``CREEP``
#: of its total gain. Bright true-PSF data can also need more than the budget (puncta + sheets at
#: 2000 photons, RL maximum at 1028–1120) but are flat by then (2.3–3.4e-5), while a PSF 20 % too
#: wide still gains 2.3e-4–1.1e-3. Only the Richardson–Lucy family is capped: the Landweber /
#: Tikhonov–Miller methods converge slowly and rise legitimately (landweber+ capped lost 1.8 dB).
CREEP = 1e-4


class IterativeSolver(Protocol):
    """What the ``auto`` rule needs from a deconvolver (:class:`~neurodecon.classical.Deconvolver`).

    Tensors live on the solver's device, on its padded FFT grid.
    """

    method: str

    def observed_data(self, image: np.ndarray) -> torch.Tensor:
        """Put a frame of the image's shape on the grid's observed region."""
        ...

    def initial_estimate(self, y: torch.Tensor, background: float) -> torch.Tensor:
        """Return the (reused) estimate buffer, set to the flat start for data ``y``."""
        ...

    def start_from_data(self, x: torch.Tensor, y: torch.Tensor, background: float) -> None:
        """Overwrite the flat start ``x`` with the data ``y`` above the background."""
        ...

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
        """Run ``iterations`` of the solver's method (or ``method``) on ``x`` in place."""
        ...


@dataclass(frozen=True)
class AutoChoice:
    """The iteration count chosen by cross-validation, with what it was chosen from.

    Attributes
    ----------
    iterations : int
        The count of the result: for a warm start, the kept half-data iterations plus
        :attr:`full_data_iterations`.
    half_data_iterations : int
        The half-data iteration the count derives from: the kept estimate's (warm start) or the
        held-out likelihood's maximum ``k½`` (cold start).
    curve : tuple of float
        The held-out log-likelihood after each half-data iteration.
    budget : int
        The cross-validation's iteration budget.
    gain : float
        Intensity units per photon used to make counts (1 for integer data).
    warm_start : bool
        The full run continues from :attr:`start` (RL, rl-accel) instead of the flat start.
    full_data_iterations : int
        Iterations to run on the full data (from :attr:`start` when warm, else from the start).
    still_rising : bool
        The held-out likelihood never turned within the budget and was still creeping up.
    capped : bool
        The count was lowered by the gain cap (``3 · k_gain``, see the module docstring).
    seed : int
        Seed of the thinning.
    accelerated : bool
        Cold rule for ``rl-accel``: cross-validated with plain RL, mapped to
        ``ACCELERATED_FACTOR · √k``.
    start : torch.Tensor or None
        The kept half-data estimate scaled to the full data (on the solver's grid), or ``None``.
    """

    iterations: int
    half_data_iterations: int
    curve: tuple[float, ...]
    budget: int
    gain: float
    warm_start: bool
    full_data_iterations: int
    still_rising: bool
    capped: bool
    seed: int
    accelerated: bool = False
    start: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """Return the choice without the curve (its length instead), as a JSON-friendly dict.

        Examples
        --------
        >>> AutoChoice(60, 30, (0.0, 1.0), 1000, 1.0, True, 30, False, False, 0).summary()["budget"]
        1000
        """
        return {
            "iterations": self.iterations,
            "half_data_iterations": self.half_data_iterations,
            "full_data_iterations": self.full_data_iterations,
            "warm_start": self.warm_start,
            "curve_length": len(self.curve),
            "budget": self.budget,
            "gain": self.gain,
            "still_rising": self.still_rising,
            "capped": self.capped,
            "seed": self.seed,
            "accelerated": self.accelerated,
        }


def full_data_count(
    curve, k_half: int, *, accelerated: bool = False, capped: bool = True, budget: int | None = None
) -> int:
    """Return the full data's iteration count from the half-data held-out ``curve``.

    ``2·k½`` (``k_half`` is the curve's maximum); capped at ``3·k_gain`` when the curve never
    turned within ``budget`` and was still creeping up (only if ``capped``: the Richardson–Lucy
    family, where the cap was measured); with ``accelerated`` (``rl-accel`` cross-validated with
    plain RL) mapped to ``ACCELERATED_FACTOR·√k``. The cold rule, and the warm rule's fallback
    when the curve never turned.

    Examples
    --------
    >>> full_data_count([0.0, 2.0, 3.0, 2.5], 3)
    6
    """
    return _full_data_choice(curve, k_half, accelerated, capped, budget)[0]


def _full_data_choice(
    curve,
    k_half: int,
    accelerated: bool,
    capped: bool,
    budget: int | None,
    cap_factor: int = GAIN_CAP_FACTOR,
    max_at_end: bool = True,
) -> tuple[int, bool, bool]:
    """Return ``(count, the curve was still rising, the count was capped)``.

    Never turned: the run reached ``budget`` still creeping up, with its maximum in the last 5 %
    (``max_at_end``; else anywhere: the look-ahead did not confirm it).
    """
    budget = MAX_AUTO_ITERATIONS if budget is None else budget
    k = int(round(FULL_DATA_FACTOR * k_half))
    at_end = k_half >= 0.95 * len(curve) or not max_at_end
    never_turned = len(curve) >= budget and at_end and tail_gain(curve) >= CREEP
    was_capped = False
    if never_turned and not capped:
        log.warning(
            "iterations=auto: the held-out likelihood still rises after %d iterations "
            "(slowly converging method): using %d iterations; give --iterations to go "
            "faster",
            len(curve),
            k,
        )
    elif never_turned:
        log.warning(
            "iterations=auto: the held-out likelihood still rises after %d iterations: the "
            "PSF may be wider than the data's, or the noise not Poisson-like; the count is "
            "capped (check the PSF, or choose the iterations yourself)",
            len(curve),
        )
        k_gain = gain_fraction_iteration(curve, GAIN_FRACTION)
        if cap_factor * k_gain < k:
            log.info(
                "iterations=auto: %d → %d (held-out gain within %.0f%% of its total after %d "
                "half-data iterations)",
                k,
                cap_factor * k_gain,
                100 * GAIN_FRACTION,
                k_gain,
            )
            k = max(cap_factor * k_gain, 1)
            was_capped = True
    if accelerated:
        k = max(int(round(ACCELERATED_FACTOR * k**0.5)), 1)
    return k, never_turned, was_capped


def cross_validate(
    solver: IterativeSolver,
    image: np.ndarray,
    background: float,
    *,
    progress: ProgressFn | None = None,
    seed: int = 0,
    warm: bool = True,
    start: str = "flat",
) -> AutoChoice:
    """Choose the iteration count of ``solver`` on ``image`` by held-out likelihood.

    Parameters
    ----------
    solver : IterativeSolver
        The deconvolver (for one PSF and the image's shape) whose method is cross-validated.
    image : (Z, Y, X) ndarray
        The frame (float32, already clipped at 0 for the Poisson methods).
    background : float
        The background of the full data, in the image's units.
    progress : callable, optional
        ``progress(done, total, message)`` during the cross-validation run.
    seed : int
        Seed of the binomial thinning (and of the stochastic rounding of non-integer data).
    warm : bool
        For the methods of :data:`CONTINUATION`, keep the half-data estimate for the full run to
        continue (:attr:`AutoChoice.start`). ``False``: cold rule for every method.
    start : {"flat", "data"}
        The half-data run's start, as the full run's (``Deconvolver(initial=...)``).

    Returns
    -------
    AutoChoice
        The count and what it was chosen from. The budget is :data:`MAX_AUTO_ITERATIONS` (read at
        each call), :data:`ACCELERATED_BUDGET` for rl-accel cross-validated with itself.
    """
    keep = warm and solver.method in CONTINUATION
    own_accelerated = keep and solver.method == "rl-accel"
    budget = ACCELERATED_BUDGET if own_accelerated else MAX_AUTO_ITERATIONS
    rng = np.random.default_rng(seed)
    counts, gain = to_counts(image, rng)
    y1 = rng.binomial(counts, 0.5)
    y2 = (counts - y1).astype(np.float32)
    y1 = y1.astype(np.float32)
    b_half = background / gain / 2.0
    t1 = solver.observed_data(y1)
    # cold rule for rl-accel: cross-validated with plain RL, mapped (ACCELERATED_FACTOR)
    accelerated = not keep and solver.method == "rl-accel"
    hooks = HeldOut(solver.observed_data(y2), progress, budget, keep_estimate=keep)
    del y2
    x = solver.initial_estimate(t1, b_half)
    if start == "data":
        solver.start_from_data(x, t1, b_half)
    solver.iterate(t1, b_half, x, budget, hooks, method="rl" if accelerated else None)
    del t1
    k_half = max(hooks.best_k, 1)
    cap = ACCELERATED_GAIN_CAP_FACTOR if own_accelerated else GAIN_CAP_FACTOR
    k, rising, capped = _full_data_choice(
        hooks.curve, k_half, accelerated, solver.method in POISSON_METHODS, budget, cap,
        max_at_end=not own_accelerated,
    )  # fmt: skip
    common: dict[str, Any] = dict(
        curve=tuple(hooks.curve), budget=budget, gain=float(gain), seed=seed,
        accelerated=accelerated,
    )  # fmt: skip
    if not keep or rising or hooks.kept is None:
        return AutoChoice(iterations=k, half_data_iterations=k_half, warm_start=False,
                          full_data_iterations=k, still_rising=rising, capped=capped,
                          **common)  # fmt: skip
    # RL is homogeneous: the half-data estimate times (full flux / half flux) continues the
    # full data's run (module docstring)
    kept = hooks.kept.mul_(float(np.sum(image, dtype=np.float64)) / max(float(y1.sum()), 1.0))
    more = max(int(round(CONTINUATION[solver.method] * hooks.kept_k)), 1)
    return AutoChoice(iterations=hooks.kept_k + more, half_data_iterations=hooks.kept_k,
                      warm_start=True, full_data_iterations=more, still_rising=False,
                      capped=False, start=kept, **common)  # fmt: skip


def auto_iterations(
    dec: IterativeSolver,
    image: np.ndarray,
    background: float,
    *,
    progress: ProgressFn | None = None,
    seed: int = 0,
    return_curve: bool = False,
) -> Any:
    """Return the iteration count ``auto`` gives ``dec`` on ``image`` (see :func:`cross_validate`).

    With ``return_curve=True``: ``(count, the half-data iteration it derives from, held-out curve
    as a list)``.
    """
    choice = cross_validate(dec, image, background, progress=progress, seed=seed)
    if return_curve:
        return choice.iterations, choice.half_data_iterations, list(choice.curve)
    return choice.iterations
