"""Physical plausibility of a PSF for an image: voxel sizes, PSF width, optics (before compute).

Every PSF goes through :func:`neurodecon.psf.prepare_psf` (files, arrays, beads, models), which
calls these checks, so every command gets them:

* a PSF voxel size 200× or more off the image's (nanometres typed as micrometres) is an error;
* an image voxel size 50× coarser than the optics' FWHM, or 1000× finer, is an error (for model
  PSFs, whose optics are known);
* a PSF whose centre voxel holds 90 % of its light does nothing: an error when resampling made it
  so (a wrong voxel size), a warning otherwise;
* a PSF whose half-maximum core spans the whole image laterally is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ..errors import user_error

__all__ = [
    "check_voxel_ratio",
    "check_voxel_vs_optics",
    "check_width",
    "centre_fraction",
    "resampled_shape",
]

log = logging.getLogger("neurodecon")

#: PSF/image voxel-size ratio (either way) from which a unit mistake is assumed.
MAX_VOXEL_RATIO = 200.0
#: Image voxel / optical FWHM ratios beyond which the voxel size cannot be in µm.
MAX_VOXEL_PER_FWHM, MIN_VOXEL_PER_FWHM = 50.0, 1e-3
#: Fraction of the light in the centre voxel from which the PSF is "narrower than a voxel".
NARROW_FRACTION = 0.9

_FIX_UNITS = (
    "voxel sizes are in micrometres (0.1 for 100 nm): check --voxel-size and --psf-voxel-size "
    "(or the files' metadata)"
)


def _text(v: Sequence[float]) -> str:
    return "(" + ", ".join(f"{x:.6g}" for x in v) + ")"


def _ratio_text(r: float) -> str:
    if r < 1:
        return f"1/{1 / r:,.0f}" if r <= 0.1 else f"{r:.2g}×"
    return f"{r:,.0f}×" if r >= 10 else f"{r:.2g}×"


def check_voxel_ratio(
    psf_vox: Sequence[float], image_vox: Sequence[float], path: object = None
) -> None:
    """Refuse a PSF voxel size that differs from the image's by :data:`MAX_VOXEL_RATIO` or more."""
    ratios = [float(a) / float(b) for a, b in zip(psf_vox, image_vox, strict=True)]
    worst = max(ratios, key=lambda r: max(r, 1.0 / r))
    if 1.0 / MAX_VOXEL_RATIO < worst < MAX_VOXEL_RATIO:
        return
    raise user_error(
        f"the PSF's voxel size {_text(psf_vox)} µm is {_ratio_text(worst)} the image's "
        f"{_text(image_vox)} µm, which no microscope PSF is",
        path=path,
        fix=_FIX_UNITS,
    )


def check_voxel_vs_optics(
    vox: Sequence[float], fwhm: Sequence[float], what: str, path: object = None
) -> None:
    """Refuse voxel sizes far outside what optics with this FWHM ``(z, y, x)`` (µm) can image."""
    for axis, v, f in zip("zyx", vox, fwhm, strict=True):
        if not (np.isfinite(f) and f > 0):
            continue  # invalid optics: make_psf names them
        ratio = float(v) / float(f)
        if MIN_VOXEL_PER_FWHM < ratio < MAX_VOXEL_PER_FWHM:
            continue
        raise user_error(
            f"the voxel size {_text(vox)} µm is {_ratio_text(ratio)} the {axis} FWHM "
            f"({float(f):.3g} µm) of {what}, so the PSF would be "
            + ("a single voxel" if ratio > 1 else "far larger than any image"),
            path=path,
            fix=_FIX_UNITS.replace(" and --psf-voxel-size", ""),
        )


def resampled_shape(
    shape: Sequence[int], src: Sequence[float], dst: Sequence[float]
) -> tuple[int, ...]:
    """Return the shape that keeps a PSF's physical extent at voxel size ``dst`` (odd sizes)."""
    return tuple(
        int(n) if abs(a - b) <= 1e-9 * a else 2 * int(np.ceil((n // 2) * a / b - 0.5)) + 1
        for n, a, b in zip(shape, src, dst, strict=True)
    )


def centre_fraction(psf: np.ndarray) -> float:
    """Return the fraction of the PSF's light in its centre voxel (index ``n // 2``)."""
    total = float(psf.sum())
    centre = tuple(n // 2 for n in psf.shape)
    return float(psf[centre]) / total if total > 0 else 0.0


def _core_width(psf: np.ndarray, axis: int) -> int:
    """Voxels at or above half the maximum on the line through the peak along ``axis``."""
    peak = np.unravel_index(int(np.argmax(psf)), psf.shape)
    index: list[int | slice] = [int(i) for i in peak]
    index[axis] = slice(None)
    line = psf[tuple(index)]
    return int((line >= 0.5 * line.max()).sum())


def check_width(
    psf: np.ndarray,
    image_shape: Sequence[int],
    vox: Sequence[float] | None,
    path: object = None,
    *,
    resampled_from: tuple[Sequence[float], float] | None = None,
) -> None:
    """Refuse (or warn about) a PSF narrower than a voxel, refuse one wider than the image.

    Parameters
    ----------
    psf : ndarray
        The prepared PSF (at the image's voxel size, cropped to the image).
    image_shape : tuple of int
        The image's spatial shape.
    vox : (z, y, x), optional
        The image's voxel size in µm (for the message).
    path : optional
        Named in the message.
    resampled_from : (voxel size, centre fraction before), optional
        Given when the PSF was resampled: the PSF's own voxel size and how much of its light
        its centre voxel held before; a PSF that only became narrower than a voxel through the
        resampling is an error (a wrong voxel size), one that already was gets a warning.
    """
    where = path or "PSF"
    frac = centre_fraction(psf)
    size = f" at the image's voxel size {_text(vox)} µm" if vox is not None else ""
    if frac >= NARROW_FRACTION:
        problem = (
            f"the PSF is narrower than one voxel{size}: its centre voxel holds {100 * frac:.0f} % "
            "of its light, so deconvolution returns the image almost unchanged"
        )
        if resampled_from is not None and resampled_from[1] < NARROW_FRACTION:
            raise user_error(
                f"{problem} (resampled from voxel size {_text(resampled_from[0])} µm)",
                path=path,
                fix=_FIX_UNITS,
            )
        log.warning(f"{where}: {problem}; check the voxel sizes (µm)")
        return
    lateral = [a for a in range(psf.ndim)][-2:]
    if any(image_shape[a] < 4 for a in lateral):
        return
    if all(_core_width(psf, a) >= image_shape[a] for a in lateral):
        widths = " × ".join(str(_core_width(psf, a)) for a in lateral)
        image = " × ".join(str(image_shape[a]) for a in lateral)
        raise user_error(
            f"the PSF's core (half maximum over {widths} voxels) is as wide as the whole image "
            f"({image} voxels laterally){size}",
            path=path,
            fix=_FIX_UNITS,
        )
