"""Array analysis behind the report's figures: where to look, what to show, spectra.

Everything here works on plain ``(Z, Y, X)`` float arrays with a voxel size in µm and has no
plotting code, so it can be tested on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = [
    "display_range",
    "to_display",
    "find_small_objects",
    "brightest_small_structure",
    "orthoslices",
    "orthoview_composite",
    "line_profiles",
    "radial_spectrum",
    "axial_spectrum",
    "log_spectrum_2d",
]

Voxel = Sequence[float]


def display_range(volume: np.ndarray, low: float = 0.5, high: float = 99.95) -> tuple[float, float]:
    """Percentile window ``(lo, hi)`` used to show ``volume`` (``hi > lo`` always)."""
    lo, hi = np.percentile(np.asarray(volume, dtype=np.float32), [low, high])
    if not hi > lo:
        lo, hi = float(np.min(volume)), float(np.max(volume))
        if not hi > lo:
            hi = lo + 1.0
    return float(lo), float(hi)


def to_display(volume: np.ndarray, low: float = 0.5, high: float = 99.95) -> np.ndarray:
    """Map ``volume`` to ``[0, 1]`` by its own percentile window (one rule for every panel)."""
    lo, hi = display_range(volume, low, high)
    return np.clip((np.asarray(volume, dtype=np.float32) - lo) / (hi - lo), 0.0, 1.0)


def _sigmas(voxel_size_um: Voxel | np.ndarray, scale_um: float) -> tuple[float, ...]:
    return tuple(max(scale_um / float(v), 0.5) for v in voxel_size_um)


def _blob_response(
    volume: np.ndarray, voxel_size_um: Voxel | np.ndarray, scale_um: float
) -> np.ndarray:
    """Difference of Gaussians tuned to objects about ``scale_um`` across."""
    v = np.asarray(volume, dtype=np.float32)
    fine = ndimage.gaussian_filter(v, _sigmas(voxel_size_um, scale_um / 2.0), mode="nearest")
    coarse = ndimage.gaussian_filter(v, _sigmas(voxel_size_um, scale_um * 2.0), mode="nearest")
    return fine - coarse


def _noise_sigma(volume: np.ndarray) -> float:
    """Estimate the noise standard deviation of a volume from voxel-to-neighbours differences.

    A robust MAD of each voxel minus the mean of its six neighbours; structure larger than a
    voxel barely enters.
    """
    v = np.asarray(volume, dtype=np.float32)
    k = np.zeros((3, 3, 3), np.float32)
    k[1, 1, 1] = 1.0
    for i in ((0, 1, 1), (2, 1, 1), (1, 0, 1), (1, 2, 1), (1, 1, 0), (1, 1, 2)):
        k[i] = -1.0 / 6.0
    r = ndimage.convolve(v, k, mode="nearest")
    return float(1.4826 * np.median(np.abs(r - np.median(r))) / np.sqrt(1.0 + 1.0 / 6.0))


def _response_noise(volume: np.ndarray, voxel_size_um, scale_um: float) -> float:
    """Return the standard deviation of the difference-of-Gaussians response to noise alone."""
    delta = np.zeros(tuple(min(n, 33) for n in volume.shape), np.float32)
    delta[tuple(n // 2 for n in delta.shape)] = 1.0
    gain = float(np.sqrt((_blob_response(delta, voxel_size_um, scale_um) ** 2).sum()))
    return _noise_sigma(volume) * gain + 1e-12


def find_small_objects(
    volume: np.ndarray,
    voxel_size_um: Voxel,
    *,
    scale_um: float | None = None,
    max_objects: int = 20,
    margin_um: float | None = None,
    min_separation_um: float | None = None,
) -> np.ndarray:
    """Centres ``(n, 3)`` (int voxel indices) of the brightest small, isolated objects.

    Objects are maxima of a difference-of-Gaussians response at ``scale_um`` (default: 3 lateral
    voxels) standing 8 noise standard deviations above the response to the noise alone, kept at
    least ``margin_um`` from the border (default: twice the scale and 10 % of each axis) and
    ``min_separation_um`` from a brighter object, brightest first.
    """
    vs = np.asarray(voxel_size_um, dtype=float)
    scale = float(scale_um) if scale_um else 3.0 * float(vs[1:].min())
    sep = float(min_separation_um) if min_separation_um is not None else 3.0 * scale
    resp = _blob_response(volume, vs, scale)
    size = tuple(max(3, 2 * int(round(sep / v / 2)) + 1) for v in vs)
    peaks = (resp == ndimage.maximum_filter(resp, size=size, mode="nearest")) & (resp > 0)
    margins = [
        float(margin_um) / v if margin_um is not None else max(2.0 * scale / v, 0.1 * n)
        for v, n in zip(vs, resp.shape, strict=True)
    ]
    m = [min(int(np.ceil(mg)), (n - 1) // 2) for mg, n in zip(margins, resp.shape, strict=True)]
    inner = np.zeros_like(peaks)
    inner[m[0] : resp.shape[0] - m[0], m[1] : resp.shape[1] - m[1], m[2] : resp.shape[2] - m[2]] = (
        True
    )
    idx = np.argwhere(peaks & inner)
    if len(idx) == 0:
        return np.zeros((0, 3), dtype=int)
    strength = resp[tuple(idx.T)]
    keep = strength > 8.0 * _response_noise(volume, vs, scale)
    idx, strength = idx[keep], strength[keep]
    order = np.argsort(strength)[::-1][:max_objects]
    return idx[order]


def brightest_small_structure(volume: np.ndarray, voxel_size_um: Voxel) -> tuple[int, int, int]:
    """Return the voxel index ``(z, y, x)`` of the brightest small structure.

    That is the strongest object of :func:`find_small_objects`, or the brightest voxel of a
    smoothed copy when there is none.
    """
    objs = find_small_objects(volume, voxel_size_um, max_objects=1)
    if len(objs):
        z, y, x = (int(i) for i in objs[0])
        return z, y, x
    smooth = ndimage.gaussian_filter(np.asarray(volume, dtype=np.float32), 1.0)
    z, y, x = (int(i) for i in np.unravel_index(int(np.argmax(smooth)), smooth.shape))
    return z, y, x


def orthoslices(volume: np.ndarray, point: Sequence[int]) -> dict[str, np.ndarray]:
    """Return the XY, XZ and YZ planes through ``point`` = (z, y, x): (Y, X), (Z, X), (Y, Z)."""
    z, y, x = (int(p) for p in point)
    return {"xy": volume[z], "xz": volume[:, y, :], "yz": volume[:, :, x].T}


def _stretch(plane: np.ndarray, axis: int, factor: float) -> np.ndarray:
    """Resample ``plane`` along ``axis`` by ``factor`` (linear), for square physical pixels."""
    if abs(factor - 1.0) < 1e-3:
        return plane
    zoom = [1.0, 1.0]
    zoom[axis] = factor
    return ndimage.zoom(plane, zoom, order=1, mode="nearest", grid_mode=True)


def orthoview_composite(
    volume: np.ndarray,
    point: Sequence[int],
    voxel_size_um: Voxel,
    *,
    gap: int = 2,
    fill: float = 1.0,
) -> tuple[np.ndarray, dict[str, tuple]]:
    """One image holding XY (top left), YZ (right) and XZ (below), z stretched to the lateral scale.

    Returns the composite and, per plane, its ``(row0, col0, rows, cols)`` box in the composite.
    Pixels are square in physical units (the lateral voxel size); ``fill`` colours the gaps.
    """
    vz, vy, vx = (float(v) for v in voxel_size_um)
    s = orthoslices(volume, point)
    xy = _stretch(s["xy"], 0, vy / vx)
    xz = _stretch(s["xz"], 0, vz / vx)
    yz = _stretch(_stretch(s["yz"], 1, vz / vx), 0, vy / vx)
    h = xy.shape[0] + gap + xz.shape[0]
    w = xy.shape[1] + gap + yz.shape[1]
    comp = np.full((h, w), fill, dtype=np.float32)
    boxes = {
        "xy": (0, 0, *xy.shape),
        "yz": (0, xy.shape[1] + gap, *yz.shape),
        "xz": (xy.shape[0] + gap, 0, *xz.shape),
    }
    for name, plane in (("xy", xy), ("yz", yz), ("xz", xz)):
        r, c, nr, nc = boxes[name]
        comp[r : r + nr, c : c + nc] = plane
    return comp, boxes


def line_profiles(
    volume: np.ndarray,
    point: Sequence[int],
    voxel_size_um: Voxel,
    *,
    half_length_um: float | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Intensity along x and along z through ``point``: ``{"x": (pos_um, values), "z": ...}``.

    Positions are relative to the point; ``half_length_um`` defaults to 12 lateral voxels (x)
    and the whole stack (z).
    """
    z, y, x = (int(p) for p in point)
    vz, _, vx = (float(v) for v in voxel_size_um)
    half = int(round((half_length_um or 12 * vx) / vx))
    x0, x1 = max(0, x - half), min(volume.shape[2], x + half + 1)
    px = (np.arange(x0, x1) - x) * vx
    pz = (np.arange(volume.shape[0]) - z) * vz
    return {
        "x": (px, np.asarray(volume[z, y, x0:x1], dtype=np.float32)),
        "z": (pz, np.asarray(volume[:, y, x], dtype=np.float32)),
    }


def _standardise(volume: np.ndarray) -> np.ndarray:
    v = np.asarray(volume, dtype=np.float32)
    return (v - v.mean()) / (v.std() + 1e-12)


def _window(n: int) -> np.ndarray:
    return np.hanning(n).astype(np.float32) if n > 2 else np.ones(n, dtype=np.float32)


def radial_spectrum(
    volume: np.ndarray, voxel_size_um: Voxel, *, n_bins: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Compute the lateral power spectrum, averaged over z and over rings of equal frequency.

    The XY planes of the standardised volume, each with its mean removed and Hann-windowed.
    Returns ``(frequency in cycles/µm, power)``.
    """
    _, vy, vx = (float(v) for v in voxel_size_um)
    v = _standardise(volume)
    v = (
        (v - v.mean(axis=(1, 2), keepdims=True))
        * _window(v.shape[1])[:, None]
        * _window(v.shape[2])
    )
    power = (np.abs(np.fft.fft2(v, axes=(1, 2))) ** 2).mean(axis=0)
    fy = np.fft.fftfreq(volume.shape[1], d=vy)
    fx = np.fft.fftfreq(volume.shape[2], d=vx)
    fr = np.hypot(fy[:, None], fx[None, :])
    fmax = min(0.5 / vy, 0.5 / vx)
    n_bins = n_bins or max(8, min(volume.shape[1], volume.shape[2]) // 2)
    edges = np.linspace(0.0, fmax, n_bins + 1)
    which = np.digitize(fr.ravel(), edges) - 1
    ok = (which >= 0) & (which < n_bins)
    total = np.bincount(which[ok], weights=power.ravel()[ok], minlength=n_bins)
    count = np.bincount(which[ok], minlength=n_bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    good = count > 0
    return centres[good], (total[good] / count[good]).astype(np.float64)


def axial_spectrum(volume: np.ndarray, voxel_size_um: Voxel) -> tuple[np.ndarray, np.ndarray]:
    """Compute the axial power spectrum: 1D spectra along z averaged over all (y, x).

    Each line has its mean removed and is Hann-windowed. Returns
    ``(frequency in cycles/µm, power)`` for the non-negative frequencies.
    """
    vz = float(voxel_size_um[0])
    v = _standardise(volume)
    v = (v - v.mean(axis=0, keepdims=True)) * _window(v.shape[0])[:, None, None]
    power = (np.abs(np.fft.rfft(v, axis=0)) ** 2).mean(axis=(1, 2))
    return np.fft.rfftfreq(volume.shape[0], d=vz), power.astype(np.float64)


def log_spectrum_2d(planes: np.ndarray) -> np.ndarray:
    """Return ``log10`` of the centred amplitude spectrum of a standardised 2D plane.

    The plane is Hann-windowed; for a stack of planes, the root-mean-square spectrum over the
    first axis.
    """
    p = _standardise(planes)
    p = p * _window(p.shape[-2])[:, None] * _window(p.shape[-1])[None, :]
    power = np.abs(np.fft.fft2(p, axes=(-2, -1))) ** 2
    if power.ndim == 3:
        power = power.mean(axis=0)
    amp = np.sqrt(np.fft.fftshift(power))
    return np.log10(amp + 1e-6 * amp.max() + 1e-12).astype(np.float32)
