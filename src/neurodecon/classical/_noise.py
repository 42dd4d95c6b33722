"""Noise of an image from a 6-neighbour high-pass (shared by the background and gain estimates)."""

from __future__ import annotations

import numpy as np

__all__ = ["highpass_residual"]


def highpass_residual(img: np.ndarray) -> tuple[np.ndarray, float]:
    """``(residual, variance factor)``: each voxel minus the mean of its ``2·ndim`` face
    neighbours (mirrored at the borders), and the factor ``1 + 1/(2·ndim)`` by which that
    residual's variance exceeds white noise's variance ``σ²``.
    """
    from scipy.ndimage import convolve

    kernel = np.zeros((3,) * img.ndim, np.float32)
    for axis in range(img.ndim):
        for d in (0, 2):
            idx = [1] * img.ndim
            idx[axis] = d
            kernel[tuple(idx)] = -1.0 / (2 * img.ndim)
    kernel[(1,) * img.ndim] = 1.0
    return convolve(img, kernel, mode="mirror"), 1.0 + 1.0 / (2 * img.ndim)
