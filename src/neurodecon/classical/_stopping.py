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
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..progress import ProgressFn, report
from ._engine import POISSON_METHODS
from ._iterative import TINY, richardson_lucy

__all__ = [
    "auto_iterations",
    "estimate_gain",
    "to_counts",
    "gain_fraction_iteration",
    "tail_gain",
    "full_data_count",
    "FULL_DATA_FACTOR",
    "ACCELERATED_FACTOR",
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


def tail_gain(curve) -> float:
    """Gain of the curve over its second half, as a fraction of its total gain.

    Three lookups, no copy: the cross-validation calls it after every iteration.
    """
    if len(curve) == 0:
        return 0.0
    total = float(curve[-1]) - float(curve[0])
    return (float(curve[-1]) - float(curve[len(curve) // 2])) / total if total > 0 else 0.0


def gain_fraction_iteration(curve, fraction: float) -> int:
    """First iteration (1-based) whose value is within ``fraction`` of the curve's total gain."""
    c = np.asarray(curve, dtype=np.float64)
    if c.size == 0:
        return 1
    top = float(c.max())
    return int(np.argmax(c >= top - fraction * (top - float(c[0])))) + 1


def estimate_gain(image: np.ndarray) -> float:
    """Camera gain (intensity units per photon) from the noise: ``var = gain · mean + c``.

    The noise is isolated with a 3-D high-pass (the voxel minus the mean of its 6 neighbours,
    variance ``(1 + 1/6) σ²`` for white noise); voxels are binned by their local mean and a
    Theil–Sen line through the bins' variances gives the slope, insensitive to the offset and to
    the few bins that hold sharp structure.
    """
    from scipy.ndimage import uniform_filter
    from scipy.stats import theilslopes

    from ._noise import highpass_residual

    img = np.asarray(image, dtype=np.float32)
    resid, scale = highpass_residual(img)
    local = uniform_filter(img, 3, mode="mirror")
    edges = np.quantile(local, np.linspace(0.02, 0.98, 21))
    means, variances = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (local >= lo) & (local < hi)
        if sel.sum() < 50:
            continue
        r = resid[sel]
        means.append(float(local[sel].mean()))
        variances.append(float(np.mean(r.astype(np.float64) ** 2)) / scale)
    if len(means) >= 3 and np.ptp(means) > 0:
        slope = float(theilslopes(variances, means)[0])
        if slope > 0:
            return slope
    mean = float(np.mean(np.clip(img, 0, None)))
    return float(np.mean(resid.astype(np.float64) ** 2) / scale / mean) if mean > 0 else 1.0


def to_counts(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Photon counts for thinning: ``(counts as int64, gain)``."""
    img = np.asarray(image, dtype=np.float32)
    if img.min() >= 0 and np.all(img == np.round(img)):
        return img.astype(np.int64), 1.0
    gain = estimate_gain(img)
    scaled = np.clip(img, 0, None).astype(np.float64) / gain
    floor = np.floor(scaled)
    counts = floor + (rng.random(scaled.shape) < (scaled - floor))
    log.info("iterations=auto: data are not integer counts; estimated gain %.4g per photon", gain)
    return counts.astype(np.int64), gain


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
    """Iterations for the full data from the half-data held-out ``curve`` and its maximum ``k_half``.

    ``2·k½``; capped at ``3·k_gain`` when the curve never turned within ``budget`` and was still
    creeping up (only if ``capped``: the Richardson–Lucy family, where the cap was measured);
    mapped to ``ACCELERATED_FACTOR·√k`` for the accelerated method.
    """
    budget = MAX_AUTO_ITERATIONS if budget is None else budget
    k = int(round(FULL_DATA_FACTOR * k_half))
    never_turned = (
        len(curve) >= budget and k_half >= 0.95 * len(curve) and tail_gain(curve) >= CREEP
    )
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
    if accelerated:
        k = max(int(round(ACCELERATED_FACTOR * k**0.5)), 1)
    return k


def auto_iterations(
    dec,
    image: np.ndarray,
    background: float,
    *,
    progress: ProgressFn | None = None,
    seed: int = 0,
    return_curve: bool = False,
):
    """Best iteration count for ``dec`` (a :class:`~._engine.Deconvolver`) on ``image``."""
    rng = np.random.default_rng(seed)
    counts, gain = to_counts(image, rng)
    y1 = rng.binomial(counts, 0.5)
    y2 = (counts - y1).astype(np.float32)
    y1 = y1.astype(np.float32)
    b_half = background / gain / 2.0
    t1 = dec._observed_data(y1)
    t2 = dec._observed_data(y2)
    hooks = _HeldOut(t2, progress, MAX_AUTO_ITERATIONS)
    x = dec._initial_estimate(t1, b_half)
    accelerated = dec.method == "rl-accel"
    if accelerated:  # cross-validated with plain RL, mapped below (module docstring)
        richardson_lucy(dec.op, t1, b_half, x, MAX_AUTO_ITERATIONS, hooks)
    else:
        dec._iterate(t1, b_half, x, MAX_AUTO_ITERATIONS, hooks)
    k_half = max(hooks.best_k, 1)
    k = full_data_count(
        hooks.curve, k_half, accelerated=accelerated, capped=dec.method in POISSON_METHODS
    )
    if return_curve:
        return k, k_half, hooks.curve
    return k
