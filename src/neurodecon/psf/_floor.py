"""Measured PSFs as they come off the microscope: a camera offset, noise, and several beads.

A bead recorded as "the PSF" often keeps the camera offset (~100–150 counts) and its noise.
Normalised as it is, the offset is most of the kernel's sum (99 % for the lattice light-sheet PSF
of pycudadecon's tests) and deconvolution with it blurs instead of sharpening. These checks run
on every PSF before it is used (:func:`neurodecon.psf.prepare_psf`):

- **floor**: the level of the in-focus planes' corners, far from the bead, where any real PSF is
  dark (Airy tails there are ~1e-6 of the peak). Above ``FLOOR_LEVEL`` of the peak it is an offset.
- **noise**: the spread σ of those corners. Clipped at 0, noise leaves ~0.4 σ in every voxel: when
  that adds up to more than ``NOISE_SHARE`` of the PSF's signal, the PSF is a measurement whose
  noise outside the PSF's support would act as a background.
- **several beads**: a second bright spot far from the first: a bead stack, not a PSF.

A floor is subtracted plane by plane (each plane's outer ring, as the offset may drift along z),
then everything outside the PSF's support (the peak's connected region where the smoothed PSF
rises above ``SUPPORT_SIGMAS`` noise standard deviations, dilated by 2 voxels) is set to 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import user_error

__all__ = [
    "FloorReport",
    "inspect_floor",
    "clean_measured_psf",
    "check_measured_psf",
    "FLOOR_LEVEL",
    "NOISE_SHARE",
]

log = logging.getLogger("neurodecon")

#: Corner level of the in-focus planes, relative to the peak, above which a floor is an offset.
FLOOR_LEVEL = 2e-3
#: Share of the PSF's signal that its clipped noise (~0.4 σ per voxel) may reach before cleaning.
NOISE_SHARE = 0.01
#: Support of a measured PSF: smoothed PSF above this many noise standard deviations.
SUPPORT_SIGMAS = 4.0
#: A second spot brighter than this fraction of the peak, far from it, means several beads.
SECOND_BEAD = 0.3


@dataclass(frozen=True)
class FloorReport:
    """What :func:`inspect_floor` found (levels in the PSF's own units)."""

    peak: float
    floor: float
    noise: float
    floor_fraction: float  # share of the PSF's sum that the flat floor accounts for
    noise_fraction: float = 0.0  # clipped noise (0.4 σ per voxel) relative to the signal's sum

    @property
    def has_offset(self) -> bool:
        """Tell whether the PSF sits on a flat offset (camera offset or background).

        A "floor" above half the peak is no offset under a bead: the kernel itself is flat (a
        box, or a 2-D kernel promoted to 3-D), and it is used as given.
        """
        return FLOOR_LEVEL * self.peak < self.floor < 0.5 * self.peak

    @property
    def is_noisy(self) -> bool:
        """Tell whether the PSF carries measurement noise far from the bead."""
        return self.noise_fraction > NOISE_SHARE and self.floor < 0.5 * self.peak


def _corners(arr: np.ndarray) -> np.ndarray:
    """Return the voxels of the four lateral corners of the planes around the peak plane."""
    zp = int(np.unravel_index(int(np.argmax(arr)), arr.shape)[0])
    planes = arr[max(zp - 1, 0) : zp + 2]
    cy, cx = max(2, arr.shape[1] // 8), max(2, arr.shape[2] // 8)
    if 2 * cy >= arr.shape[1] or 2 * cx >= arr.shape[2]:
        return np.empty(0)
    ys, xs = (slice(0, cy), slice(-cy, None)), (slice(0, cx), slice(-cx, None))
    return np.concatenate([planes[:, sy, sx].ravel() for sy in ys for sx in xs])


def inspect_floor(psf: np.ndarray) -> FloorReport:
    """Measure the floor and noise of a 3-D PSF far from its peak (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> psf = np.zeros((9, 33, 33)); psf[4, 16, 16] = 1000.0
    >>> inspect_floor(psf + 100.0).has_offset, inspect_floor(psf).has_offset
    (True, False)
    """
    arr = np.asarray(psf, dtype=np.float64)
    peak = float(arr.max())
    corners = _corners(arr) if arr.ndim == 3 else np.empty(0)
    if corners.size < 16 or not peak > 0:
        return FloorReport(peak, 0.0, 0.0, 0.0)
    floor = float(np.median(corners))
    noise = float(1.4826 * np.median(np.abs(corners - floor)))
    total = float(arr.sum())
    fraction = floor * arr.size / total if total > 0 else 0.0
    signal = total - max(floor, 0.0) * arr.size
    noisy = 0.4 * noise * arr.size / signal if signal > 0 else 0.0
    return FloorReport(peak, floor, noise, float(min(max(fraction, 0.0), 1.0)), float(noisy))


def _ring(shape: tuple[int, ...]) -> np.ndarray:
    ring = np.ones(shape[1:], bool)
    wy, wx = max(2, shape[1] // 16), max(2, shape[2] // 16)
    ring[wy:-wy, wx:-wx] = False
    return ring


def _support(q: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Return the peak's connected region where the smoothed PSF rises above the noise."""
    from scipy.ndimage import binary_dilation, gaussian_filter, label

    smooth = gaussian_filter(q, 1.0)
    sigma = float(np.std(smooth[:, ring]))
    mask = smooth > SUPPORT_SIGMAS * sigma
    labels, _ = label(mask)
    peak = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    mask = labels == labels[peak]
    return binary_dilation(mask, iterations=2)


def _check_single_bead(q: np.ndarray, path: Any) -> None:
    """Refuse a stack with several beads of comparable brightness (a bead image, not a PSF)."""
    from scipy.ndimage import gaussian_filter, label, maximum_position

    smooth = gaussian_filter(q, 1.5)
    peak = float(smooth.max())
    labels, n = label(smooth > SECOND_BEAD * peak)
    if n < 2:
        return
    spots = maximum_position(smooth, labels, range(1, n + 1))
    if len(spots) >= 2:
        raise user_error(
            f"the PSF file shows {len(spots)} separate bright spots: it is a bead image, not a PSF",
            path=path,
            fix="extract the PSF from it with --beads FILE --bead-diameter UM "
            "(or `neurodecon psf extract`)",
        )


def clean_measured_psf(
    psf: np.ndarray, *, background: float | None = None, path: Any = None
) -> np.ndarray:
    """Remove a measured PSF's offset and the noise outside its support; return float64.

    Parameters
    ----------
    psf : (Z, Y, X) ndarray
        The measured PSF (one bead; any scale).
    background : float, optional
        The offset to subtract (same units as ``psf``); default: each plane's outer-ring median.
    path : optional
        Named in messages.

    Returns
    -------
    (Z, Y, X) ndarray
        Non-negative, zero outside the PSF's support; not normalised.
    """
    arr = np.asarray(psf, dtype=np.float64)
    ring = _ring(arr.shape)
    if background is None:
        levels = np.median(arr[:, ring], axis=1)
        q = arr - levels[:, None, None]
    else:
        q = arr - float(background)
    _check_single_bead(np.clip(q, 0.0, None), path)
    mask = _support(q, ring)
    _warn_truncated(mask, path)
    return np.where(mask, np.clip(q, 0.0, None), 0.0)


def _warn_truncated(mask: np.ndarray, path: Any) -> None:
    """Warn when the PSF's support reaches a face of its box (the PSF is cut off there)."""
    faces = {
        "first plane": mask[0],
        "last plane": mask[-1],
        "y border": np.concatenate([mask[:, 0], mask[:, -1]]),
        "x border": np.concatenate([mask[:, :, 0], mask[:, :, -1]]),
    }
    touched = [name for name, face in faces.items() if face.any()]
    if touched:
        log.warning(
            "%s: the PSF's support reaches its box (%s): it is truncated there, and light beyond "
            "it is missing from the kernel; record a larger box or extract the PSF from a bead "
            "stack (--beads)",
            path or "PSF",
            ", ".join(touched),
        )


def check_measured_psf(arr: np.ndarray, *, background: float | str | None, path: Any) -> np.ndarray:
    """Apply the floor checks to a PSF; return it unchanged, or cleaned with one info line.

    ``background``: ``"auto"`` detects an offset or noise and cleans (default of every PSF
    path); a number subtracts that offset and cleans; ``None`` skips the checks.
    """
    if background is None or arr.ndim != 3:
        return arr
    name = path or "PSF"
    if background != "auto":
        out = clean_measured_psf(arr, background=float(background), path=path)
        log.info(
            "%s: subtracted the given PSF background %g and the noise outside its support",
            name,
            float(background),
        )
        return _nonempty(out, path)
    rep = inspect_floor(arr)
    if not (rep.has_offset or rep.is_noisy):
        return arr
    out = clean_measured_psf(arr, path=path)
    what = (
        f"a flat floor of ~{rep.floor:.4g} ({100 * rep.floor_fraction:.0f} % of its sum: a "
        "camera offset or background)"
        if rep.has_offset
        else f"noise far from the bead (σ ~{rep.noise:.3g}; clipped at 0 it would add "
        f"~{100 * rep.noise_fraction:.0f} % to the PSF's sum)"
    )
    log.info(
        "%s: a measured PSF with %s: subtracted it plane by plane and set everything outside "
        "the PSF's support to 0 (%d of %d voxels kept); pass --psf-background B to give the "
        "offset yourself",
        name,
        what,
        int(np.count_nonzero(out)),
        out.size,
    )
    return _nonempty(out, path)


def _nonempty(out: np.ndarray, path: Any) -> np.ndarray:
    if not out.sum() > 0:
        raise user_error(
            "nothing is left of the PSF after removing its background",
            path=path,
            fix="check that the file is a PSF (a bright spot on a dark background) and its "
            "background (--psf-background)",
        )
    return out
