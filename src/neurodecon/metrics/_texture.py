"""Texture and information metrics: GLCM texture and Shannon entropy.

GLCM texture is summarised by the angular second moment (ASM) and the inverse difference moment
(IDM).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["quantize", "glcm_features", "shannon_entropy", "GLCM_PERCENTILES"]

#: Intensity percentiles mapped to the lowest and highest grey level before the GLCM.
GLCM_PERCENTILES = (0.1, 99.9)


def quantize(
    volume: np.ndarray, levels: int, percentiles: tuple[float, float] = (0.0, 100.0)
) -> np.ndarray:
    """Linear quantisation to integers ``0 … levels − 1`` between two intensity percentiles.

    Values below/above the low/high percentile go to the first/last level (an explicit part of
    the quantisation, not a change to the data). A constant image maps to level 0.
    """
    x = np.asarray(volume, dtype=np.float32)
    lo, hi = (float(p) for p in np.percentile(x, percentiles))
    if hi <= lo:
        return np.zeros(x.shape, dtype=np.uint16 if levels > 256 else np.uint8)
    q = np.floor((x - lo) / (hi - lo) * levels)
    q = np.clip(q, 0, levels - 1)
    return q.astype(np.uint16 if levels > 256 else np.uint8)


def glcm_features(
    volume: np.ndarray,
    *,
    levels: int = 32,
    distances: Sequence[int] = (1,),
    angles: Sequence[float] = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4),
    max_planes: int = 32,
) -> dict[str, float]:
    """Grey-level co-occurrence texture: angular second moment (ASM) and inverse difference moment.

    Parameters
    ----------
    volume : (Z, Y, X) or (Y, X) ndarray
    levels : int
        Grey levels. The whole volume is quantised once (:func:`quantize`), linearly between its
        0.1th and 99.9th percentiles, so that all planes share one scale.
    distances, angles :
        Pixel offsets of the co-occurrence matrix within each XY plane (default 1 pixel at 0°,
        45°, 90°, 135°).
    max_planes : int
        At most this many XY planes, evenly spaced, are used.

    Returns
    -------
    dict
        ``asm = Σ P(i, j)²`` and ``idm = Σ P(i, j) / (1 + (i − j)²)`` (scikit-image's
        "homogeneity"), with ``P`` the symmetric, normalised co-occurrence matrix of one plane,
        one distance and one angle; both averaged over distances, angles and planes. ASM is 1 for
        a uniform image and falls with graininess; IDM is 1 when neighbours share a grey level.
    """
    from skimage.feature import graycomatrix, graycoprops

    q = quantize(volume, levels, GLCM_PERCENTILES)
    if q.ndim == 2:
        q = q[None]
    idx = np.unique(
        np.round(np.linspace(0, q.shape[0] - 1, min(max_planes, q.shape[0]))).astype(int)
    )
    asm, idm = [], []
    for z in idx:
        p = graycomatrix(
            q[z],
            distances=list(distances),
            angles=list(angles),
            levels=levels,
            symmetric=True,
            normed=True,
        )
        asm.append(graycoprops(p, "ASM").mean())
        idm.append(graycoprops(p, "homogeneity").mean())
    return {"asm": float(np.mean(asm)), "idm": float(np.mean(idm))}


def shannon_entropy(volume: np.ndarray, *, bins: int = 256) -> float:
    """Shannon entropy in bits, ``−Σ p_i log2 p_i``, of the intensity histogram.

    The intensities are quantised linearly into ``bins`` levels between the minimum and the
    maximum (DeBCR's sparsity measure; 0 for a constant image, at most ``log2(bins)``).
    """
    from skimage.measure import shannon_entropy as _entropy

    return float(_entropy(quantize(volume, bins), base=2))
