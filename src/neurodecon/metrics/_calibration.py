"""Camera and photon-level calibration of one stack: offset, gain, read noise, photons.

A bead stack (or any stack) from the microscope says how its camera counts: the dark level
(:func:`~neurodecon.metrics.estimate_background`), the gain and read noise from the photon
transfer (:func:`~neurodecon.metrics.photon_transfer`), and how many photons its brightest
structures collect. Training (``neurodecon train``) draws its noise around these values and
inference compares an input's levels with the trained ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import user_error
from ._noise import _separable, estimate_background, photon_transfer

__all__ = ["NoiseCalibration", "calibrate_noise", "structure_level", "CALIBRATION_MAX_VOXELS"]

#: Voxels analysed at most; a larger stack is cropped to its centre in Y and X first.
CALIBRATION_MAX_VOXELS = 8_000_000

#: Savitzky–Golay smoothing (quadratic, 5 points) per axis: keeps smooth peaks (a Gaussian blob
#: 1.5 voxels wide loses 10 %), averages the noise to 0.34 of its σ in 3D.
_SAVITZKY_GOLAY = np.array([-3.0, 12.0, 17.0, 12.0, -3.0], np.float32) / np.float32(35.0)

#: Savitzky–Golay (quartic, 7 points) per axis, for the peaks: a Gaussian peak 1.3 voxels wide
#: keeps 97 % of its height per axis (the 5-point quadratic: 94 %); noise 0.43 of its σ in 3D.
_SAVITZKY_GOLAY_PEAKS = np.array(
    [5.0, -30.0, 75.0, 131.0, 75.0, -30.0, 5.0], np.float32
) / np.float32(231.0)

_NAN = float("nan")


def structure_level(image: np.ndarray, percentile: float = 99.9) -> float:
    """Return the level of the brightest structures: a percentile of the lightly smoothed image.

    The image is smoothed with a 5-point quadratic Savitzky–Golay filter along every axis, which
    averages most of the noise away but keeps peaks (it is exact on quadratics), and the
    ``percentile`` (default 99.9) is taken. The same function measures a noisy stack and the
    noise-free training inputs, so the two agree.

    Parameters
    ----------
    image : ndarray
        Any number of dimensions.
    percentile : float
        Which percentile.

    Returns
    -------
    float
        In the image's units (offset included).

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.linspace(0.0, 1.0, 1001, dtype=np.float32)
    >>> round(structure_level(ramp), 3)
    0.999
    """
    img = np.asarray(image, dtype=np.float32)
    return float(np.percentile(_separable(img, _SAVITZKY_GOLAY), percentile))


@dataclass(frozen=True)
class NoiseCalibration:
    """A camera and photon-level calibration (:func:`calibrate_noise`).

    The camera model: ``counts = gain · (Poisson(photons) + N(0, read_noise_e²)) + offset``.

    Attributes
    ----------
    offset : float
        The dark level in counts: the camera offset plus any uniform background light.
    gain : float
        Counts per photo-electron (NaN when the stack shows no photon-transfer slope).
    read_noise : float
        Noise σ at the dark level, in counts (it includes the shot noise of background light).
    signal : float
        The brightest structures above the offset, in counts (:func:`structure_level` − offset).
    peaks : tuple of float
        Isolated local maxima above the offset (bead peaks in a bead stack), in counts, brightest
        first, at most 100.
    gain_se : float
        Standard error of the gain.
    n_voxels : int
        Voxels analysed.
    source : str, optional
        What was calibrated (a file name), for the record.
    notes : tuple of str
        Caveats found on the way (a gain that could not be measured, a stack that was cropped).
    """

    offset: float
    gain: float
    read_noise: float
    signal: float
    peaks: tuple[float, ...] = ()
    gain_se: float = _NAN
    n_voxels: int = 0
    source: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def read_noise_e(self) -> float:
        """Return the read noise in photo-electrons (``read_noise / gain``)."""
        return self.read_noise / self.gain if self.gain > 0 else _NAN

    @property
    def photons(self) -> float:
        """Return the photons at the brightest structures (``signal / gain``)."""
        return self.signal / self.gain if self.gain > 0 else _NAN

    @property
    def peak_photons(self) -> tuple[float, ...]:
        """Return the photons at the local maxima (``peaks / gain``), brightest first."""
        return tuple(p / self.gain for p in self.peaks) if self.gain > 0 else ()

    @property
    def median_peak_photons(self) -> float:
        """Return the median of :attr:`peak_photons` (a bead stack's typical bead), NaN if none."""
        return float(np.median(self.peak_photons)) if self.peak_photons else _NAN

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (non-finite numbers as ``None``); see :meth:`from_dict`."""
        return {
            "offset_counts": _num(self.offset),
            "gain_counts_per_e": _num(self.gain),
            "gain_se": _num(self.gain_se),
            "read_noise_counts": _num(self.read_noise),
            "read_noise_e": _num(self.read_noise_e),
            "signal_counts": _num(self.signal),
            "photons": _num(self.photons),
            "peak_counts": [_num(p) for p in self.peaks],
            "median_peak_photons": _num(self.median_peak_photons),
            "n_voxels": int(self.n_voxels),
            "source": self.source,
            "notes": list(self.notes),
            "model": "counts = gain · (Poisson(photons) + N(0, read_noise_e²)) + offset",
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NoiseCalibration:
        """Rebuild a calibration from :meth:`to_dict`'s output (derived entries are ignored)."""

        def num(key: str) -> float:
            v = d.get(key)
            return _NAN if v is None else float(v)

        return cls(
            offset=num("offset_counts"),
            gain=num("gain_counts_per_e"),
            read_noise=num("read_noise_counts"),
            signal=num("signal_counts"),
            peaks=tuple(_NAN if p is None else float(p) for p in d.get("peak_counts") or ()),
            gain_se=num("gain_se"),
            n_voxels=int(d.get("n_voxels") or 0),
            source=d.get("source"),
            notes=tuple(d.get("notes") or ()),
        )

    def summary(self) -> str:
        """Return one line: offset, gain, read noise and photons."""
        return (
            f"offset {self.offset:.4g} counts, gain {self.gain:.3g} counts/e⁻, read noise "
            f"{self.read_noise_e:.3g} e⁻, brightest structures {self.photons:.4g} photons"
            + (f", median peak {self.median_peak_photons:.4g}" if self.peaks else "")
        )


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def calibrate_noise(
    stack: Any,
    *,
    max_voxels: int | None = CALIBRATION_MAX_VOXELS,
    source: str | None = None,
) -> NoiseCalibration:
    """Estimate a stack's camera offset, gain and read noise and its photon levels.

    The dark level comes from :func:`~neurodecon.metrics.estimate_background`, the gain and the
    variance at the dark level (the read noise) from the photon-transfer line of
    :func:`~neurodecon.metrics.photon_transfer`, the brightest structures' level from
    :func:`structure_level` and the peaks from the local maxima (7-voxel neighbourhoods) of the
    Gaussian-smoothed stack (σ 1 voxel) that stand 6 σ above the dark level, read on the stack
    smoothed with a quartic 7-point Savitzky–Golay filter per axis (which keeps a peak's
    height). Photons are counts above the offset divided by the gain.

    Parameters
    ----------
    stack : (Z, Y, X) or (Y, X) array_like
        One frame in the camera's units, as recorded (no offset removed, no clipping); a bead
        stack or a sample.
    max_voxels : int, optional
        Analyse at most this many voxels: a larger stack is cropped to its centre in Y and X
        (``None``: all).
    source : str, optional
        Recorded in the result (a file name).

    Returns
    -------
    NoiseCalibration
        With ``to_dict()`` for JSON.

    Notes
    -----
    Uniform background light and the camera offset both raise the dark level and cannot be told
    apart in one stack: ``offset`` is their sum and ``read_noise`` includes the light's shot
    noise (``√(σ² + g·b)`` counts). Both describe the dark level as the camera records it, which
    is what training needs; on a dark bead slide they are the camera's own. A stack with no dark
    voxels at all (out-of-focus light everywhere) reports its darkest level. The gain needs
    structure well above the read noise (a few hundred voxels over ~10 photons); ``notes`` say
    when it could not be measured or is uncertain by more than 10 %.

    Examples
    --------
    >>> import numpy as np
    >>> from neurodecon.metrics import calibrate_noise
    >>> rng = np.random.default_rng(1)
    >>> z, y, x = np.mgrid[:24, :64, :64]
    >>> light = 150.0 * np.exp(-((y - 32.0) ** 2 + (x - 32.0) ** 2) / 200.0) * np.ones_like(z)
    >>> img = 2.0 * (rng.poisson(light) + rng.normal(0, 1.5, light.shape)) + 100.0
    >>> cal = calibrate_noise(img)
    >>> round(cal.offset), round(cal.gain, 1), round(cal.read_noise_e, 1)
    (100, 2.0, 1.5)
    """
    img = _frame(stack)
    notes: list[str] = []
    if max_voxels is not None and img.size > max_voxels:
        img = _central_crop(img, int(max_voxels))
        notes.append(f"analysed the central {'×'.join(map(str, img.shape))} voxels")
    offset = float(estimate_background(img))
    ptc = photon_transfer(img)
    gain = ptc.gain
    read_var = ptc.variance_at(offset) if math.isfinite(gain) else _NAN
    if not math.isfinite(gain):
        notes.append("no photon-transfer slope: the stack is too dim or has no structure")
    elif ptc.gain_se > 0.1 * gain:
        notes.append(f"the gain is uncertain (±{ptc.gain_se / gain:.0%}): too little bright signal")
    if math.isfinite(read_var) and read_var < 0:
        notes.append("the read noise is below what the photon transfer resolves; set to 0")
    read_noise = math.sqrt(max(read_var, 0.0)) if math.isfinite(read_var) else _NAN
    signal = structure_level(img) - offset
    smooth = _separable(img, _SAVITZKY_GOLAY_PEAKS)
    peaks = _peaks(img, smooth, offset, read_noise, gain) if math.isfinite(read_noise) else ()
    return NoiseCalibration(
        offset=offset,
        gain=gain,
        read_noise=read_noise,
        signal=signal,
        peaks=peaks,
        gain_se=ptc.gain_se,
        n_voxels=int(img.size),
        source=source,
        notes=tuple(notes),
    )


def _frame(stack: Any) -> np.ndarray:
    data = getattr(stack, "data", stack)  # a neurodecon.io.Image
    img = np.asarray(data, dtype=np.float32)
    while img.ndim > 3 and img.shape[0] == 1:
        img = img[0]
    if img.ndim not in (2, 3) or min(img.shape) < 8:
        raise user_error(
            f"noise calibration needs one 2D or 3D frame of at least 8 voxels per axis, got "
            f"shape {img.shape}",
            fix="pass a single (Z, Y, X) stack",
        )
    if not np.all(np.isfinite(img)):
        raise user_error("the stack contains NaN or infinite values", fix="clean it first")
    return img


def _central_crop(img: np.ndarray, max_voxels: int) -> np.ndarray:
    """Crop Y and X (then Z) about the centre to at most ``max_voxels``."""
    shape = list(img.shape)
    lat = shape[-2:]
    f = min(1.0, math.sqrt(max_voxels / img.size))
    want = [max(8, int(n * f)) for n in lat]
    if img.ndim == 3:
        shape[0] = max(8, min(shape[0], max_voxels // (want[0] * want[1])))
    shape[-2:] = want
    sl = tuple(slice((n - k) // 2, (n - k) // 2 + k) for n, k in zip(img.shape, shape, strict=True))
    return np.ascontiguousarray(img[sl])


def _peaks(
    img: np.ndarray,
    smooth: np.ndarray,
    offset: float,
    read_noise: float,
    gain: float,
    limit: int = 100,
) -> tuple[float, ...]:
    """Return the counts above ``offset`` at the isolated, significant maxima, brightest first.

    A maximum counts when it stands 6 σ above the dark level (σ of the σ = 1 Gaussian-smoothed
    noise at its own level) and reaches a quarter of the third brightest one: dim beads' halos,
    a widefield PSF's out-of-focus light and noise make many faint maxima that are no bead.
    """
    from scipy.ndimage import gaussian_filter, maximum_filter

    blurred = gaussian_filter(img, 1.0, mode="nearest")
    is_max = blurred == maximum_filter(blurred, size=7, mode="nearest")
    level = blurred[is_max] - np.float32(offset)
    # noise of the Gaussian-smoothed stack at each level: the kernel's L2 norm is (4π)^(−ndim/4)
    g = gain if math.isfinite(gain) and gain > 0 else 0.0
    norm = (4.0 * math.pi) ** (-img.ndim / 4.0)
    sigma = np.sqrt(read_noise**2 + g * np.clip(level, 0, None)) * norm
    values = np.sort((smooth[is_max] - np.float32(offset))[level > 6.0 * sigma])[::-1]
    if values.size == 0:
        return ()
    values = values[values >= 0.25 * values[min(2, values.size - 1)]][:limit]
    return tuple(float(v) for v in values if v > 0)
