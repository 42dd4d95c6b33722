"""Photon counts of an image for binomial thinning (the ``auto`` stopping rule).

The noise measurements themselves (background, gain, photon transfer) live in
:mod:`neurodecon.metrics` (:func:`~neurodecon.metrics.estimate_background`,
:func:`~neurodecon.metrics.estimate_gain`), the one implementation that deconvolution, training
and the noise calibration share.
"""

from __future__ import annotations

import logging

import numpy as np

from ..metrics import estimate_gain

__all__ = ["to_counts"]

log = logging.getLogger("neurodecon")


#: No count beyond 2^40: int64 and the binomial sampler stay exact (huge float data, 1e30).
_MAX_COUNT = 2.0**40


def to_counts(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Return photon counts for thinning: ``(counts as int64, gain)``.

    Non-negative integer data are counts (gain 1); others are divided by
    :func:`~neurodecon.metrics.estimate_gain` and stochastically rounded with ``rng``.
    """
    img = np.asarray(image, dtype=np.float32)
    top = float(img.max())
    if img.min() >= 0 and top <= _MAX_COUNT and np.all(img == np.round(img)):
        return img.astype(np.int64), 1.0
    gain = estimate_gain(img)
    # no count beyond 2^40: int64 and the binomial sampler stay exact (huge float data, 1e30)
    gain = max(gain if np.isfinite(gain) and gain > 0 else 1.0, top / _MAX_COUNT)
    scaled = np.clip(img, 0, None).astype(np.float64) / gain
    floor = np.floor(scaled)
    counts = floor + (rng.random(scaled.shape) < (scaled - floor))
    log.info("iterations=auto: data are not integer counts; estimated gain %.4g per photon", gain)
    return counts.astype(np.int64), gain
