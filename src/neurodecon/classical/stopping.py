"""``iterations="auto"``: choose the number of iterations without ground truth.

Cross-validation on binomially thinned photon counts: the counts ``y`` are split into
``y₁ ~ Binomial(y, ½)`` and ``y₂ = y − y₁``, two *independent* Poisson images of the same object
with half the expected counts each. The method runs on ``y₁`` (background ``b/2``) and after each
iteration ``k`` the Poisson log-likelihood of the held-out ``y₂`` under the prediction
``H x_k + b/2`` is recorded. It rises while the iterations recover signal and falls once they fit
``y₁``'s noise; its maximum ``k½`` is the best iteration count *for half the counts*. The full data
have twice the counts and tolerate more iterations: RL's implicit regularisation weakens roughly
as ``1/k`` while the optimal regularisation weight of a Poisson problem scales as ``1/counts``, so
the full run uses ``FULL_DATA_FACTOR · k½`` with ``FULL_DATA_FACTOR = 2`` (checked against the
oracle on phantoms by ``benchmarks/bench_classical.py --auto``). The cross-validation run stops
``k½/2 + 10`` iterations after the maximum, or when the held-out likelihood has flattened, or at
``MAX_AUTO_ITERATIONS``.

The accelerated method (``rl-accel``) is cross-validated *with plain RL* and then gets
``ACCELERATED_FACTOR · √k_RL`` iterations, ``k_RL`` the plain-RL count. Its own held-out maximum
does not track its best iteration (the extrapolation reaches the held-out optimum at a different
point of the fit than the PSNR optimum; measured: ``√2 · k½`` of its own cross-validation lost
0.14–1.76 dB over thinning seeds on the small blob phantom of the tests), whereas its oracle-best
count is ``(2.0–2.4) · √k_RL-oracle`` on every true-PSF phantom measured
(``benchmarks/auto_seed_spread.py``, ``benchmarks/bench_classical.py --auto``). The price: the
plain-RL cross-validation, about ``1.5 · k½`` half-data RL iterations.

A PSF that does not quite match the data (too wide, truncated: typical of a bead PSF) makes the
held-out likelihood creep up long after the image has started to degrade (measured: a PSF 20 %
too wide keeps it rising past 1000 iterations while the oracle-best count is 40–80). When the
likelihood never turned within ``MAX_AUTO_ITERATIONS`` and was still creeping up at the end
(see ``CREEP``) a warning is logged and, for the Richardson–Lucy family, the (plain-RL) count is
capped at ``3 · k_gain``, ``k_gain`` the first half-data iteration that reached 99 % of the
held-out likelihood's total gain.

Thinning needs photon counts. Non-negative integer data are taken as counts (gain 1). Other data
(floating point, or rescaled) are converted with a gain estimated from the noise: the variance of
a high-pass residual against the local mean (Poisson: variance = gain × mean, the slope of a
robust line fit), then stochastically rounded. That assumes Poisson-dominated noise; the estimated
gain is logged.

The rule reaches the deconvolver only through the small :class:`IterativeSolver` interface
(:class:`~neurodecon.classical.Deconvolver` implements it); :func:`cross_validate` returns the
choice with its diagnostics (:class:`AutoChoice`), :func:`auto_iterations` just the count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from ..metrics import estimate_gain
from ..progress import ProgressFn, report
from ._iterative import TINY, Hooks
from ._methods import POISSON_METHODS
from ._noise import to_counts

__all__ = [
    "ACCELERATED_FACTOR",
    "CREEP",
    "FULL_DATA_FACTOR",
    "GAIN_CAP_FACTOR",
    "GAIN_FRACTION",
    "MAX_AUTO_ITERATIONS",
    "PLATEAU",
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

#: k_full = FULL_DATA_FACTOR · k_half (see module docstring).
FULL_DATA_FACTOR = 2.0
#: rl-accel gets ACCELERATED_FACTOR · √k_RL iterations, k_RL the plain-RL auto count (chosen on the
#: blob phantom and the 4 phantoms of ``bench_classical.py --auto``: oracle ratios 2.0–2.4, losses
#: ≤ 0.13 dB at 2.2; checked on the 9 true-PSF cases of ``--auto-study``, 3 seeds: ≤ 0.19 dB).
ACCELERATED_FACTOR = 2.2
#: Hard cap on the cross-validation run.
MAX_AUTO_ITERATIONS = 1000
#: A held-out likelihood that gained less than this fraction of its total gain over the second
#: half of the run has flattened: more iterations change the image by less than the noise.
PLATEAU = 1e-5
#: Cap ``k ≤ GAIN_CAP_FACTOR · k_gain``, ``k_gain`` the first half-data iteration whose held-out
#: log-likelihood is within ``GAIN_FRACTION`` of its total gain (``ℓ_k ≥ ℓ_max − f (ℓ_max − ℓ_0)``).
#: Applied only when the held-out likelihood never turned within ``MAX_AUTO_ITERATIONS`` (a PSF
#: that does not match the data, e.g. 20 % too wide, keeps it creeping up while the image
#: degrades). Applied always, it also stops bright true-PSF cases far too early (measured up to
#: 4 dB lost, ``benchmarks/bench_classical.py --auto``), so it is not.
GAIN_FRACTION = 0.01
GAIN_CAP_FACTOR = 3
#: ... and only when it was still *creeping up*: its second half gained at least ``CREEP`` of its
#: total gain. Bright, sharp true-PSF data can also need more than the budget (puncta + sheets at
#: 2000 photons: half-data maximum at 1028–1120 over 6 thinning seeds) but their curve is flat by
#: then (second-half gain 2.3–3.4e-5 of the total), while a PSF 20 % too wide still gains
#: 2.3e-4–1.1e-3 (5 cases; ``benchmarks/bench_classical.py --auto-study``). Capping the flat case
#: lost 4.2 dB (45 instead of ~2000 iterations); not capping it loses ≤ 0.32 dB. Only the
#: Richardson–Lucy family is capped (where it was measured): the Landweber / Tikhonov–Miller
#: gradient methods converge slowly and their held-out curve rises legitimately (capped,
#: landweber+ lost 1.8 dB on the true-PSF phantom of ``bench_classical.py --quality``).
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
        The count for the full data.
    half_data_iterations : int
        ``k½``, the maximum of the held-out likelihood on half the counts.
    curve : tuple of float
        The held-out log-likelihood after each half-data iteration.
    budget : int
        The cross-validation's iteration budget.
    gain : float
        Intensity units per photon used to make counts (1 for integer data).
    accelerated : bool
        ``rl-accel``: cross-validated with plain RL, mapped to ``ACCELERATED_FACTOR · √k``.
    still_rising : bool
        The held-out likelihood never turned within the budget and was still creeping up.
    capped : bool
        The count was lowered by the gain cap (``3 · k_gain``, see the module docstring).
    seed : int
        Seed of the thinning.
    """

    iterations: int
    half_data_iterations: int
    curve: tuple[float, ...]
    budget: int
    gain: float
    accelerated: bool
    still_rising: bool
    capped: bool
    seed: int

    def summary(self) -> dict[str, Any]:
        """Return the choice without the curve (its length instead), as a JSON-friendly dict.

        Examples
        --------
        >>> c = AutoChoice(60, 30, (0.0, 1.0), 1000, 1.0, False, False, False, 0)
        >>> c.summary()["curve_length"], c.summary()["half_data_iterations"]
        (2, 30)
        """
        return {
            "iterations": self.iterations,
            "half_data_iterations": self.half_data_iterations,
            "curve_length": len(self.curve),
            "budget": self.budget,
            "gain": self.gain,
            "accelerated": self.accelerated,
            "still_rising": self.still_rising,
            "capped": self.capped,
            "seed": self.seed,
        }


def tail_gain(curve) -> float:
    """Return the curve's gain over its second half, as a fraction of its total gain.

    Three lookups, no copy: the cross-validation calls it after every iteration.

    Examples
    --------
    >>> tail_gain([0.0, 5.0, 8.0, 10.0])  # (10 - 8) / (10 - 0)
    0.2
    """
    if len(curve) == 0:
        return 0.0
    total = float(curve[-1]) - float(curve[0])
    return (float(curve[-1]) - float(curve[len(curve) // 2])) / total if total > 0 else 0.0


def gain_fraction_iteration(curve, fraction: float) -> int:
    """Return the first iteration (1-based) whose value is within ``fraction`` of the total gain.

    Examples
    --------
    >>> gain_fraction_iteration([0.0, 5.0, 9.5, 10.0], 0.1)
    3
    """
    c = np.asarray(curve, dtype=np.float64)
    if c.size == 0:
        return 1
    top = float(c.max())
    return int(np.argmax(c >= top - fraction * (top - float(c[0])))) + 1


class _HeldOut:
    """Hooks that record the held-out Poisson log-likelihood after each iteration."""

    def __init__(self, y2: torch.Tensor, progress: ProgressFn | None, cap: int):
        self.y2 = y2.reshape(-1)
        self.buf = torch.empty_like(y2)
        self.curve: list[float] = []
        self.best_k, self.best = 0, -np.inf
        self.progress, self.cap = progress, cap

    def prediction(self, k: int, model: torch.Tensor) -> None:
        torch.clamp(model, min=TINY, out=self.buf)
        ll = float(torch.dot(self.y2, self.buf.log_().reshape(-1))) - float(model.sum())
        self.curve.append(ll)
        if ll > self.best:
            self.best, self.best_k = ll, k

    def step(self, k: int, x: torch.Tensor) -> bool:
        report(self.progress, k, self.cap, "auto: cross-validation")
        # stop once the held-out likelihood has not improved for a third of the iterations so far
        if k >= 1.5 * self.best_k + 10:
            return False
        # ... or has flattened: the second half of the run gained < PLATEAU of the total gain
        if k >= 40 and tail_gain(self.curve) < PLATEAU:
            return False
        return True


def full_data_count(
    curve, k_half: int, *, accelerated: bool = False, capped: bool = True, budget: int | None = None
) -> int:
    """Return the full data's iteration count from the half-data held-out ``curve``.

    ``2·k½`` (``k_half`` is the curve's maximum); capped at ``3·k_gain`` when the curve never
    turned within ``budget`` and was still creeping up (only if ``capped``: the Richardson–Lucy
    family, where the cap was measured); mapped to ``ACCELERATED_FACTOR·√k`` for the accelerated
    method.

    Examples
    --------
    >>> full_data_count([0.0, 2.0, 3.0, 2.5], 3)
    6
    """
    return _full_data_choice(curve, k_half, accelerated, capped, budget)[0]


def _full_data_choice(
    curve, k_half: int, accelerated: bool, capped: bool, budget: int | None
) -> tuple[int, bool, bool]:
    """Return ``(count, the curve was still rising, the count was capped)``."""
    budget = MAX_AUTO_ITERATIONS if budget is None else budget
    k = int(round(FULL_DATA_FACTOR * k_half))
    never_turned = (
        len(curve) >= budget and k_half >= 0.95 * len(curve) and tail_gain(curve) >= CREEP
    )
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
        if GAIN_CAP_FACTOR * k_gain < k:
            log.info(
                "iterations=auto: %d → %d (held-out gain within %.0f%% of its total after %d "
                "half-data iterations)",
                k,
                GAIN_CAP_FACTOR * k_gain,
                100 * GAIN_FRACTION,
                k_gain,
            )
            k = max(GAIN_CAP_FACTOR * k_gain, 1)
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

    Returns
    -------
    AutoChoice
        The count and what it was chosen from. The budget is :data:`MAX_AUTO_ITERATIONS` (read at
        each call).
    """
    budget = MAX_AUTO_ITERATIONS
    rng = np.random.default_rng(seed)
    counts, gain = to_counts(image, rng)
    y1 = rng.binomial(counts, 0.5)
    y2 = (counts - y1).astype(np.float32)
    y1 = y1.astype(np.float32)
    b_half = background / gain / 2.0
    t1 = solver.observed_data(y1)
    t2 = solver.observed_data(y2)
    hooks = _HeldOut(t2, progress, budget)
    x = solver.initial_estimate(t1, b_half)
    accelerated = solver.method == "rl-accel"
    # rl-accel is cross-validated with plain RL and mapped (module docstring)
    solver.iterate(t1, b_half, x, budget, hooks, method="rl" if accelerated else None)
    k_half = max(hooks.best_k, 1)
    k, rising, capped = _full_data_choice(
        hooks.curve, k_half, accelerated, solver.method in POISSON_METHODS, budget
    )
    return AutoChoice(
        iterations=k,
        half_data_iterations=k_half,
        curve=tuple(hooks.curve),
        budget=budget,
        gain=float(gain),
        accelerated=accelerated,
        still_rising=rising,
        capped=capped,
        seed=seed,
    )


def auto_iterations(
    dec: IterativeSolver,
    image: np.ndarray,
    background: float,
    *,
    progress: ProgressFn | None = None,
    seed: int = 0,
    return_curve: bool = False,
) -> Any:
    """Return the best iteration count for ``dec`` on ``image`` (see :func:`cross_validate`).

    With ``return_curve=True``: ``(count, k½, held-out curve as a list)``.
    """
    choice = cross_validate(dec, image, background, progress=progress, seed=seed)
    if return_curve:
        return choice.iterations, choice.half_data_iterations, list(choice.curve)
    return choice.iterations
