"""Theoretical PSF models behind one function, :func:`make_psf`.

Every model returns a ``(Z, Y, X)`` float32 array, non-negative, summing to 1, with the focus at
index ``n // 2`` on every axis (also for even sizes). Models:

``gaussian``
    Separable Gaussian from a given FWHM, or from the textbook widefield FWHM when none is given.
``widefield``
    Scalar Born–Wolf integral, our own implementation (:mod:`._bornwolf`).
``gibson-lanni``
    Scalar Gibson–Lanni model from ``psfmodels`` (refractive-index mismatch between immersion
    and sample, point source ``depth_um`` below the coverslip), re-centred on its axial maximum.
``confocal``
    ``h_ex(λ_ex) · (h_em(λ_em) ⊛ pinhole)``, pinhole a disk in Airy units back-projected to the
    sample (1 AU = 1.22 λ_em / NA in diameter), the lateral convolution by FFT.
``two-photon``
    ``h_ex(λ_ex)²`` (non-descanned detection: the emission PSF does not enter).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ..errors import user_error
from ..memory import check_memory
from ._bornwolf import born_wolf_psf
from ._scale import check_voxel_vs_optics

__all__ = ["make_psf", "MODELS", "textbook_fwhm_um", "nyquist_um", "pinhole_disk"]

log = logging.getLogger("neurodecon")

MODELS = ("gaussian", "widefield", "gibson-lanni", "confocal", "two-photon")
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def textbook_fwhm_um(
    na: float, wavelength_um: float, immersion_index: float
) -> tuple[float, float, float]:
    """Widefield FWHM ``(z, y, x)`` in µm: lateral 0.51 λ/NA, axial 0.88 λ/(n − √(n² − NA²)).

    These are the intensity FWHMs of the Airy disk and of the on-axis profile of a uniformly
    filled spherical wave (e.g. Wilson & Sheppard; the course's Δz = 2nλ/NA² is the paraxial
    limit of the axial formula up to its constant).
    """
    lateral = 0.51 * wavelength_um / na
    n = immersion_index
    axial = 0.88 * wavelength_um / (n - np.sqrt(n * n - na * na))
    return float(axial), float(lateral), float(lateral)


def nyquist_um(
    model: str,
    *,
    na: float,
    wavelength_um: float,
    immersion_index: float,
    excitation_wavelength_um: float | None = None,
) -> tuple[float, float]:
    """Largest (axial, lateral) voxel size that samples the model's OTF support without aliasing."""
    n = immersion_index
    lat_cut = 2.0 * na / wavelength_um  # cycles / µm
    ax_cut = (n - np.sqrt(n * n - na * na)) / wavelength_um
    if model in ("confocal", "two-photon"):
        lam_ex = excitation_wavelength_um or wavelength_um
        ex_lat, ex_ax = 2.0 * na / lam_ex, (n - np.sqrt(n * n - na * na)) / lam_ex
        if model == "confocal":
            lat_cut, ax_cut = lat_cut + ex_lat, ax_cut + ex_ax
        else:
            lat_cut, ax_cut = 2 * ex_lat, 2 * ex_ax
    return float(1.0 / (2.0 * ax_cut)), float(1.0 / (2.0 * lat_cut))


def _check_inputs(
    model: str,
    shape: Sequence[int],
    voxel_size_um: Sequence[float],
    na: float,
    wavelength_um: float,
    immersion_index: float,
) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    if model not in MODELS:
        raise user_error(f"unknown PSF model {model!r}", fix=f"use one of {', '.join(MODELS)}")
    shape_t = tuple(int(s) for s in shape)
    if len(shape_t) != 3 or min(shape_t) < 1:
        raise user_error(f"invalid PSF shape {tuple(shape)}", fix="give three positive sizes Z Y X")
    vox = tuple(float(v) for v in voxel_size_um)
    if len(vox) != 3 or not all(np.isfinite(v) and v > 0 for v in vox):
        raise user_error(
            f"invalid voxel size {tuple(voxel_size_um)}",
            fix="give three positive numbers Z Y X in µm",
        )
    if not 0 < na < immersion_index:
        raise user_error(
            f"NA {na} must be positive and below the immersion index {immersion_index}",
            fix="check --na and --immersion-index (air 1.0, water 1.33, oil 1.515)",
        )
    if not 0.1 < wavelength_um < 3.0:
        raise user_error(
            f"wavelength {wavelength_um} µm is implausible",
            fix="give wavelengths in micrometres, e.g. 0.52 for 520 nm",
        )
    _check_size(model, shape_t)
    return (shape_t[0], shape_t[1], shape_t[2]), (vox[0], vox[1], vox[2])


#: Peak bytes per PSF voxel while a model is computed (float64 result and intermediates).
_BYTES_PER_VOXEL = {"gaussian": 32, "widefield": 48, "gibson-lanni": 48, "two-photon": 48}


def _check_size(model: str, shape: tuple[int, ...]) -> None:
    """Refuse a PSF shape whose computation would not fit in memory (before allocating)."""
    n = float(np.prod([float(s) for s in shape]))
    check_memory(
        n * _BYTES_PER_VOXEL.get(model, 64),
        f"a {'×'.join(map(str, shape))} {model} PSF",
        fix="give a smaller PSF shape (about ±6 FWHM per axis is enough, e.g. 33 65 65)",
    )


def _warn_sampling(
    model: str,
    shape: tuple[int, int, int],
    vox: tuple[float, float, float],
    fwhm: tuple[float, float, float],
    nyq: tuple[float, float] | None,
) -> None:
    if nyq is not None:
        ax, lat = nyq
        if vox[0] > 1.01 * ax or max(vox[1:]) > 1.01 * lat:
            log.warning(
                f"{model} PSF: voxel size (z, y, x) = {vox} µm is coarser than Nyquist "
                f"({ax:.3g} µm axial, {lat:.3g} µm lateral); the sampled PSF is aliased"
            )
    for axis, name in enumerate("zyx"):
        if shape[axis] > 1 and shape[axis] * vox[axis] < 2.0 * fwhm[axis]:
            log.warning(
                f"{model} PSF: the {name} extent {shape[axis] * vox[axis]:.3g} µm is less "
                f"than twice the FWHM ({fwhm[axis]:.3g} µm); the PSF is truncated"
            )


def _finish(psf: np.ndarray) -> np.ndarray:
    psf = np.clip(np.nan_to_num(psf, nan=0.0), 0.0, None)
    total = psf.sum(dtype=np.float64)
    if not total > 0:
        raise user_error(
            "the PSF model produced an empty array",
            fix="check the voxel size and shape against the optics",
        )
    return (psf / total).astype(np.float32)


def make_psf(
    model: str,
    *,
    shape: Sequence[int],
    voxel_size_um: Sequence[float],
    na: float = 1.4,
    wavelength_um: float = 0.52,
    immersion_index: float = 1.515,
    excitation_wavelength_um: float | None = None,
    sample_index: float | None = None,
    depth_um: float = 0.0,
    pinhole_au: float = 1.0,
    fwhm_um: Sequence[float] | None = None,
    spherical_waves: float = 0.0,
) -> np.ndarray:
    """Theoretical point spread function.

    Parameters
    ----------
    model : {"gaussian", "widefield", "gibson-lanni", "confocal", "two-photon"}
        Optical model (see the module docstring).
    shape : (3,) ints
        Output shape ``(Z, Y, X)``; the focus is at ``n // 2`` on each axis.
    voxel_size_um : (3,) floats
        Voxel size ``(z, y, x)`` in µm.
    na, wavelength_um, immersion_index : float
        Numerical aperture, emission wavelength (µm), immersion refractive index.
    excitation_wavelength_um : float, optional
        Confocal: defaults to the emission wavelength. Two-photon: required.
    sample_index, depth_um : float
        Sample refractive index and depth of the source below the coverslip (µm). Any mismatch
        (``sample_index != immersion_index`` or ``depth_um > 0``) switches widefield, confocal
        and two-photon to the Gibson–Lanni model.
    pinhole_au : float
        Confocal pinhole diameter in Airy units.
    fwhm_um : (3,) floats, optional
        Gaussian model: FWHM ``(z, y, x)`` in µm.
    spherical_waves : float
        Primary spherical aberration in waves (Zernike Z₄⁰ with balancing defocus) of the
        widefield, confocal and two-photon models (Born–Wolf integral); 0 = aberration-free.

    Returns
    -------
    psf : (Z, Y, X) float32 ndarray
        Non-negative, sums to 1.
    """
    shape_t, vox = _check_inputs(model, shape, voxel_size_um, na, wavelength_um, immersion_index)
    optics_fwhm = fwhm_um if model == "gaussian" and fwhm_um is not None else None
    check_voxel_vs_optics(
        vox,
        optics_fwhm or textbook_fwhm_um(na, wavelength_um, immersion_index),
        f"the {model} model"
        + (" (given FWHM)" if optics_fwhm else f" (NA {na:g}, wavelength {wavelength_um:g} µm)"),
    )
    mismatch = (
        sample_index is not None and abs(sample_index - immersion_index) > 1e-9
    ) or depth_um > 0
    optics = {
        "na": na,
        "immersion_index": immersion_index,
        "sample_index": sample_index,
        "depth_um": float(depth_um),
        "force_gl": model == "gibson-lanni" or mismatch,
        "spherical_waves": float(spherical_waves),
    }
    if spherical_waves and optics["force_gl"]:
        raise user_error(
            "spherical_waves applies to the Born–Wolf models; Gibson–Lanni derives its "
            "aberration from the refractive indices and depth",
            fix="drop --spherical-aberration, or drop the index mismatch / depth",
        )
    if model == "gaussian":
        return _finish(_gaussian(shape_t, vox, fwhm_um, na, wavelength_um, immersion_index))
    if fwhm_um is not None:
        log.warning(f"{model} PSF: fwhm_um is used only by the gaussian model; ignored")
    fwhm = textbook_fwhm_um(na, wavelength_um, immersion_index)
    if model in ("widefield", "gibson-lanni"):
        _warn_sampling(
            model,
            shape_t,
            vox,
            fwhm,
            nyquist_um(model, na=na, wavelength_um=wavelength_um, immersion_index=immersion_index),
        )
        return _finish(_intensity(shape_t, vox, wavelength_um, **optics))
    lam_ex = excitation_wavelength_um
    if model == "two-photon" and lam_ex is None:
        raise user_error(
            "the two-photon model needs an excitation wavelength",
            fix="pass --excitation-wavelength (e.g. 0.92 µm for GFP)",
        )
    lam_ex = float(lam_ex if lam_ex is not None else wavelength_um)
    nyq = nyquist_um(
        model,
        na=na,
        wavelength_um=wavelength_um,
        immersion_index=immersion_index,
        excitation_wavelength_um=lam_ex,
    )
    _warn_sampling(model, shape_t, vox, fwhm, nyq)
    if model == "two-photon":
        return _finish(_intensity(shape_t, vox, lam_ex, **optics) ** 2)
    if pinhole_au < 0:
        raise user_error(
            f"pinhole {pinhole_au} AU is negative", fix="give a pinhole size ≥ 0 Airy units"
        )
    return _finish(_confocal(shape_t, vox, lam_ex, wavelength_um, pinhole_au, optics))


def _gaussian(shape, vox, fwhm_um, na, wavelength_um, immersion_index) -> np.ndarray:
    if fwhm_um is None:
        fwhm_um = textbook_fwhm_um(na, wavelength_um, immersion_index)
    fwhm = tuple(float(f) for f in fwhm_um)
    if len(fwhm) != 3 or not all(f > 0 for f in fwhm):
        raise user_error(
            f"invalid Gaussian FWHM {tuple(fwhm_um)}",
            fix="give three positive FWHM values Z Y X in µm",
        )
    axes = []
    for n, d, f in zip(shape, vox, fwhm, strict=True):
        sigma = f / _FWHM_PER_SIGMA
        c = (np.arange(n) - n // 2) * d
        axes.append(np.exp(-0.5 * (c / sigma) ** 2))
    return axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]


def _intensity(
    shape,
    vox,
    wavelength_um,
    *,
    na,
    immersion_index,
    sample_index,
    depth_um,
    force_gl,
    spherical_waves=0.0,
) -> np.ndarray:
    """Widefield intensity PSF at one wavelength (Born–Wolf, or Gibson–Lanni when asked/needed)."""
    if not force_gl:
        return born_wolf_psf(
            shape,
            vox,
            na=na,
            wavelength_um=wavelength_um,
            immersion_index=immersion_index,
            spherical_waves=spherical_waves,
        )
    from ._gibson_lanni import gibson_lanni_psf

    return gibson_lanni_psf(
        shape,
        vox,
        na=na,
        wavelength_um=wavelength_um,
        immersion_index=immersion_index,
        sample_index=immersion_index if sample_index is None else sample_index,
        depth_um=depth_um,
    )


def pinhole_disk(
    shape_yx: tuple[int, int], vox_yx: tuple[float, float], diameter_um: float, oversample: int = 8
) -> np.ndarray:
    """Area-weighted disk of ``diameter_um`` centred at ``n // 2`` (a single voxel when tiny)."""
    ny, nx = shape_yx
    dy, dx = vox_yx
    sub = (np.arange(oversample) - (oversample - 1) / 2) / oversample
    yy = (np.arange(ny) - ny // 2)[:, None, None, None] + sub[None, None, :, None]
    xx = (np.arange(nx) - nx // 2)[None, :, None, None] + sub[None, None, None, :]
    inside = ((yy * dy) ** 2 + (xx * dx) ** 2) <= (diameter_um / 2) ** 2
    disk = inside.mean(axis=(2, 3))
    if disk.sum() == 0:
        disk[ny // 2, nx // 2] = 1.0
    return disk / disk.sum()


def _confocal(shape, vox, lam_ex, lam_em, pinhole_au, optics) -> np.ndarray:
    from scipy import fft

    nz, ny, nx = shape
    diameter = pinhole_au * 1.22 * lam_em / optics["na"]
    ry = int(np.ceil(diameter / 2 / vox[1])) + 1
    rx = int(np.ceil(diameter / 2 / vox[2])) + 1
    big = (nz, ny + 2 * ry, nx + 2 * rx)
    check_memory(
        64.0 * float(np.prod([float(n) for n in big])),
        f"a confocal PSF with a {pinhole_au:g} AU pinhole ({'×'.join(map(str, big))} voxels)",
        fix="check --pinhole (in Airy units, typically 0.5 to 2) and the PSF shape",
    )
    em = _intensity(big, vox, lam_em, **optics)
    disk = pinhole_disk((2 * ry + 1, 2 * rx + 1), vox[1:], diameter)
    fshape = (big[1] + disk.shape[0] - 1, big[2] + disk.shape[1] - 1)
    conv = fft.irfft2(fft.rfft2(em, fshape) * fft.rfft2(disk, fshape), fshape)
    # full linear convolution: the disk centre (ry, rx) shifts by (ry, rx); crop back to ``shape``
    em_pinhole = conv[:, 2 * ry : 2 * ry + ny, 2 * rx : 2 * rx + nx]
    ex = _intensity(shape, vox, lam_ex, **optics)
    return ex * np.clip(em_pinhole, 0.0, None)
