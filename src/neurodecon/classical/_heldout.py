"""The held-out likelihood monitor of ``iterations="auto"`` (see :mod:`.stopping`)."""

from __future__ import annotations

import numpy as np
import torch

from ..progress import ProgressFn, report
from ._iterative import TINY

#: Hard cap on the cross-validation run.
MAX_AUTO_ITERATIONS = 1000
#: A held-out likelihood that gained less than this fraction of its total gain over the second
#: half of the run has flattened: more iterations change the image by less than the noise.
PLATEAU = 1e-5
#: Warm-started methods: an iteration *improves* the held-out likelihood when it raises it by
#: more than ``SIGNIFICANT`` of the gain so far above the last improving iteration. Near its
#: maximum the curve is flat to float32 summation noise (local maxima every few iterations), so
#: its argmax wanders over thinning seeds (rl-accel: 67–107 on one phantom); the last improving
#: iteration does not (47–58). Chosen on the phantoms of ``bench_classical.py --auto``.
SIGNIFICANT = 3e-5
#: ... and the run stops ``LOOKAHEAD · k_s + LOOKAHEAD_MIN`` iterations after the last one.
LOOKAHEAD = 1.3
LOOKAHEAD_MIN = 3


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


class HeldOut:
    """Hooks that record the held-out Poisson log-likelihood after each iteration.

    ``best_k`` is the curve's maximum. With ``keep_estimate`` (warm-started methods) the
    estimate of the last *improving* iteration ``kept_k`` (see :data:`SIGNIFICANT`) is copied
    into ``kept``, and the run stops :data:`LOOKAHEAD` after it; otherwise it stops
    ``0.5·best_k + 10`` iterations after the maximum. Both stop once the curve has flattened.
    """

    def __init__(
        self, y2: torch.Tensor, progress: ProgressFn | None, cap: int, keep_estimate: bool
    ):
        self.y2 = y2.reshape(-1)
        self.buf = torch.empty_like(y2)
        self.curve: list[float] = []
        self.best_k, self.best = 0, -np.inf
        self.progress, self.cap = progress, cap
        self.keep_estimate = keep_estimate
        self.kept: torch.Tensor | None = None
        self.kept_k, self._kept_value, self._improved = 0, -np.inf, False

    def prediction(self, k: int, model: torch.Tensor) -> None:
        torch.clamp(model, min=TINY, out=self.buf)
        ll = float(torch.dot(self.y2, self.buf.log_().reshape(-1))) - float(model.sum())
        self.curve.append(ll)
        if ll > self.best:
            self.best, self.best_k = ll, k
        gain = self.best - self.curve[0]
        self._improved = ll > self._kept_value + SIGNIFICANT * gain

    def step(self, k: int, x: torch.Tensor) -> bool:
        report(self.progress, k, self.cap, "auto: cross-validation")
        if k >= 40 and tail_gain(self.curve) < PLATEAU:  # flattened: more changes nothing
            return False
        if not self.keep_estimate:
            # stop once the held-out likelihood has not improved for a third of the iterations
            return k < 1.5 * self.best_k + 10
        if self._improved:
            if self.kept is None:
                self.kept = torch.empty_like(x)
            self.kept.copy_(x)
            self.kept_k, self._kept_value = k, self.curve[-1]
        return k < LOOKAHEAD * self.kept_k + LOOKAHEAD_MIN
