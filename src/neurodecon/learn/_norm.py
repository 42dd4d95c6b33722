"""The one normalisation shared by training and inference.

Both the training inputs and the inference input are mapped with an affine transform computed
from percentiles of the *whole* (noisy, blurred) volume — never per crop or per tile, so that a
near-empty crop cannot be blown up and tiles cannot show seams. Training targets use the same
transform as their inputs; predictions are mapped back with its inverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Normalization", "robust_range"]

_MAX_SAMPLES = 4_000_000


@dataclass(frozen=True)
class Normalization:
    low: float
    high: float

    @property
    def scale(self) -> float:
        return self.high - self.low

    def apply(self, a: np.ndarray) -> np.ndarray:
        return ((np.asarray(a, np.float32) - np.float32(self.low)) / np.float32(self.scale)).astype(
            np.float32, copy=False
        )

    def invert(self, a: np.ndarray) -> np.ndarray:
        return (np.asarray(a, np.float32) * np.float32(self.scale) + np.float32(self.low)).astype(
            np.float32, copy=False
        )


def robust_range(
    volume: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.8)
) -> Normalization:
    """Percentile range of the whole volume (a strided subsample when it is very large).

    The upper value is raised to at least 5 % of the range up to the maximum, so a sparse volume
    (mostly background) does not get a near-zero scale.
    """
    v = np.asarray(volume)
    step = max(1, int(np.ceil(v.size / _MAX_SAMPLES)))
    flat = v.reshape(-1)[::step].astype(np.float32)
    lo, hi = (float(q) for q in np.percentile(flat, percentiles))
    top = float(flat.max())
    hi = max(hi, lo + 0.05 * (top - lo))
    if not np.isfinite(hi - lo) or hi - lo <= 1e-12:
        hi = lo + 1.0
    return Normalization(lo, hi)
