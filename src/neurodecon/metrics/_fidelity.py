"""Full-reference metrics (PSNR, SSIM, NRMSE, RMSE, Pearson) and the normalisation policy.

Methods differ in output scale (a Wiener filter keeps the input's units, a network predicts
``[0, 1]``-ish values), so a fair comparison first brings the prediction to the truth's scale
with :func:`normalize_pair`, then scores the pair with an explicit ``data_range``.
"""

from __future__ import annotations

import numpy as np

from ..errors import user_error

__all__ = [
    "NORMALIZATIONS",
    "normalize_pair",
    "data_range_of",
    "psnr",
    "ssim",
    "nrmse",
    "rmse",
    "pearson",
    "check_pair",
]

#: Normalisation modes accepted by :func:`normalize_pair`.
NORMALIZATIONS = ("affine", "percentile", "none")

#: Percentiles mapped to 0 and 1 by the percentile normalisation.
PERCENTILES = (1.0, 99.8)


def check_pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return float32 views of a prediction and its truth; a shape mismatch is a user error."""
    pred = np.asarray(pred, dtype=np.float32)
    truth = np.asarray(truth, dtype=np.float32)
    if pred.shape != truth.shape:
        raise user_error(
            f"prediction shape {pred.shape} differs from ground-truth shape {truth.shape}",
            fix="compare a result with the ground truth of the same stack (same Z, Y, X size)",
        )
    return pred, truth


#: Below this fraction of the full range, the percentile span is deemed degenerate.
MIN_SPAN_FRACTION = 0.01


def _percentile_scale(x: np.ndarray) -> np.ndarray:
    lo, hi = (float(v) for v in np.percentile(x, PERCENTILES))
    span = hi - lo
    full = float(x.max() - x.min())
    if span < MIN_SPAN_FRACTION * full:  # sparse image (beads, puncta): use min and max
        lo, span = float(x.min()), full
    if span <= 0:
        raise user_error(
            "the image is constant, so it cannot be normalised",
            fix="check that the right file was given",
        )
    return ((x - np.float32(lo)) / np.float32(span)).astype(np.float32)


def _affine_fit(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Return ``a * pred + b`` with (a, b) minimising the squared error to ``target``.

    The sums are accumulated in float64; the result is float32.
    """
    p = pred.astype(np.float64).ravel()
    t = target.astype(np.float64).ravel()
    pm, tm = p.mean(), t.mean()
    var = np.mean((p - pm) ** 2)
    a = float(np.mean((p - pm) * (t - tm)) / var) if var > 0 else 0.0
    b = float(tm - a * pm)
    return (np.float32(a) * pred + np.float32(b)).astype(np.float32)


def normalize_pair(
    pred: np.ndarray, truth: np.ndarray, mode: str = "affine"
) -> tuple[np.ndarray, np.ndarray]:
    """Bring a prediction and its ground truth to a common intensity scale.

    Parameters
    ----------
    pred, truth : (Z, Y, X) ndarray
        Same shape; any real dtype (computed in float32).
    mode : {"affine", "percentile", "none"}
        ``"affine"``: the truth is mapped so that its 1st and 99.8th percentiles become 0 and 1,
        then the prediction is replaced by the least-squares affine fit ``a * pred + b`` to that
        truth (as CARE does), so any global gain and offset of a method is forgiven.
        ``"percentile"``: each image is mapped independently so that its own 1st and 99.8th
        percentiles become 0 and 1. ``"none"``: both unchanged (float32).
        Values outside ``[0, 1]`` are kept, never clipped. For a sparse image whose percentile
        span is under 1 % of its full range (isolated beads or puncta on a flat background), the
        minimum and maximum replace the percentiles.

    Returns
    -------
    pred_n, truth_n : (Z, Y, X) float32 ndarray
    """
    pred, truth = check_pair(pred, truth)
    if mode == "none":
        return pred, truth
    if mode == "percentile":
        return _percentile_scale(pred), _percentile_scale(truth)
    if mode == "affine":
        truth_n = _percentile_scale(truth)
        return _affine_fit(pred, truth_n), truth_n
    raise user_error(
        f"unknown normalization {mode!r}", fix=f"use one of {', '.join(NORMALIZATIONS)}"
    )


def data_range_of(truth_n: np.ndarray, mode: str) -> float:
    """Return the ``data_range`` used for PSNR/SSIM after :func:`normalize_pair` in ``mode``.

    1.0 after ``"affine"`` or ``"percentile"`` (the truth's 1st–99.8th percentile span);
    ``max(truth) - min(truth)`` with ``"none"``.
    """
    if mode in ("affine", "percentile"):
        return 1.0
    return float(np.max(truth_n) - np.min(truth_n))


def _range(truth: np.ndarray, data_range: float | None) -> float:
    dr = float(np.max(truth) - np.min(truth)) if data_range is None else float(data_range)
    if not dr > 0:
        raise user_error("data_range must be positive (is the ground truth constant?)")
    return dr


def psnr(pred: np.ndarray, truth: np.ndarray, *, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range² / MSE)`` (scikit-image).

    Parameters
    ----------
    pred, truth : (Z, Y, X) or (Y, X) ndarray
        Same shape; computed in float32.
    data_range : float, optional
        Defaults to ``max(truth) - min(truth)``; pass it explicitly when comparing several
        predictions (1.0 after :func:`normalize_pair`).

    Returns
    -------
    float
        ``inf`` when ``pred`` equals ``truth``.
    """
    from skimage.metrics import peak_signal_noise_ratio

    pred, truth = check_pair(pred, truth)
    if np.array_equal(pred, truth):
        return float("inf")
    return float(peak_signal_noise_ratio(truth, pred, data_range=_range(truth, data_range)))


def _ssim_window(shape: tuple[int, ...]) -> int:
    w = min(7, min(shape))
    return w if w % 2 else w - 1


def ssim(pred: np.ndarray, truth: np.ndarray, *, data_range: float | None = None) -> float:
    """Mean structural similarity (Wang et al. 2004) over 3D windows (scikit-image).

    A uniform 7×7×7 window (smaller, odd, when an axis is shorter than 7; per-plane 2D SSIM
    averaged over Z when the stack has fewer than 3 planes), constants ``K1 = 0.01``,
    ``K2 = 0.03`` relative to ``data_range`` (default ``max(truth) - min(truth)``).

    Parameters
    ----------
    pred, truth : (Z, Y, X) or (Y, X) ndarray
        Same shape, at least 3 pixels along Y and X; computed in float32.
    data_range : float, optional
        As in :func:`psnr`.
    """
    from skimage.metrics import structural_similarity

    pred, truth = check_pair(pred, truth)
    dr = _range(truth, data_range)
    if min(pred.shape[-2:]) < 3:
        raise user_error(f"SSIM needs at least 3 pixels along Y and X, got shape {pred.shape}")
    if pred.ndim == 3 and pred.shape[0] < 3:
        return float(np.mean([ssim(p, t, data_range=dr) for p, t in zip(pred, truth, strict=True)]))
    win = _ssim_window(pred.shape)
    return float(structural_similarity(truth, pred, data_range=dr, win_size=win))


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Root-mean-square error, ``sqrt(mean((pred - truth)²))``, accumulated in float64.

    ``pred`` and ``truth`` are arrays of the same shape (any number of dimensions).

    Examples
    --------
    >>> import numpy as np
    >>> from neurodecon.metrics import pearson, rmse
    >>> truth = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    >>> rmse(truth + 1, truth), pearson(2 * truth + 1, truth)
    (1.0, 1.0)
    """
    pred, truth = check_pair(pred, truth)
    d = pred.astype(np.float64) - truth
    return float(np.sqrt(np.mean(d * d)))


def nrmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """RMSE divided by the truth's range ``max(truth) - min(truth)`` (DeBCR's NRMSE_range).

    ``pred`` and ``truth`` are arrays of the same shape; a constant truth is a user error.
    """
    pred, truth = check_pair(pred, truth)
    return rmse(pred, truth) / _range(truth, None)


def pearson(pred: np.ndarray, truth: np.ndarray) -> float:
    """Pearson correlation coefficient of all voxels (float64 sums); 0 if either is constant.

    ``pred`` and ``truth`` are arrays of the same shape (any number of dimensions).
    """
    pred, truth = check_pair(pred, truth)
    p = pred.astype(np.float64).ravel()
    t = truth.astype(np.float64).ravel()
    p -= p.mean()
    t -= t.mean()
    den = np.sqrt(np.dot(p, p) * np.dot(t, t))
    return float(np.dot(p, t) / den) if den > 0 else 0.0
