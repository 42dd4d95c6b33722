"""The one place where a PSF is chosen for an image: a file or array, a bead stack, or a model.

Every command that needs a PSF (``deconvolve``, ``compare``, ``train``, the demo) calls
:func:`resolve_psf`, so that the same inputs give the same kernel everywhere: validated,
resampled to the image's voxel size, re-centred at ``n // 2``, cropped to the image, float32,
summing to 1, with a record of where it came from.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import user_error
from ..progress import ProgressFn
from ._beads import BeadPSF, extract_psf
from ._models import MODELS, make_psf, textbook_fwhm_um
from ._scale import check_voxel_vs_optics
from ._validate import prepare_psf, psf_info

__all__ = ["ResolvedPSF", "resolve_psf", "default_psf_shape", "OPTICS_KEYS"]

log = logging.getLogger("neurodecon")

#: Keyword arguments of :func:`make_psf` that describe the optics (``optics=`` of resolve_psf).
OPTICS_KEYS = (
    "na",
    "wavelength_um",
    "immersion_index",
    "excitation_wavelength_um",
    "sample_index",
    "depth_um",
    "pinhole_au",
    "fwhm_um",
    "spherical_waves",
)


@dataclass(frozen=True)
class ResolvedPSF:
    """A PSF ready for one image, and where it came from.

    Attributes
    ----------
    psf : (Z, Y, X) ndarray
        float32, non-negative, sums to 1, maximum at ``n // 2``, at the image's voxel size and
        no larger than the image.
    voxel_size_um : (z, y, x)
        The image's voxel size (the PSF's after resampling).
    source : str
        ``"file"``, ``"array"``, ``"beads"`` or ``"model"``.
    description : str
        One line for logs and reports (what, from where, shape).
    record : dict
        JSON-serialisable provenance (path, model and optics, bead extraction summary, shape).
    beads : BeadPSF or None
        The full bead extraction (o*, i*, QC data) when the PSF came from a bead stack.
    """

    psf: np.ndarray
    voxel_size_um: tuple[float, float, float]
    source: str
    description: str
    record: dict[str, Any] = field(default_factory=dict)
    beads: BeadPSF | None = None

    def info(self) -> dict[str, Any]:
        """Summarise the PSF (FWHM, centre, sum; see :func:`neurodecon.psf.psf_info`)."""
        return psf_info(self.psf, self.voxel_size_um)


def default_psf_shape(
    model: str, image_shape: Sequence[int], voxel_size_um: Sequence[float], **optics: Any
) -> tuple[int, int, int]:
    """Return the odd PSF shape covering ±6 widefield FWHM (±3 for Gaussian), at most the image.

    Examples
    --------
    >>> default_psf_shape("widefield", (64, 256, 256), (0.2, 0.1, 0.1), na=1.4)
    (31, 25, 25)
    """
    fwhm = optics.get("fwhm_um") or textbook_fwhm_um(
        optics.get("na", 1.4),
        optics.get("wavelength_um", 0.52),
        optics.get("immersion_index", 1.515),
    )
    reach = 3.0 if model == "gaussian" else 6.0
    out = []
    for f, v, n in zip(fwhm, voxel_size_um, image_shape, strict=True):
        half = int(np.ceil(reach * f / v))
        cap = n if n % 2 == 1 else n - 1
        out.append(max(1, min(2 * half + 1, cap)))
    return (out[0], out[1], out[2])


def resolve_psf(
    *,
    image_shape: Sequence[int],
    image_voxel_size_um: Sequence[float],
    psf: Any = None,
    psf_voxel_size_um: Sequence[float] | None = None,
    psf_background: float | str | None = "auto",
    beads: Any = None,
    bead_diameter_um: float | None = None,
    beads_voxel_size_um: Sequence[float] | None = None,
    bead_options: Mapping[str, Any] | None = None,
    bead_optics: Mapping[str, Any] | None = None,
    model: str | None = None,
    optics: Mapping[str, Any] | None = None,
    shape: Sequence[int] | None = None,
    progress: ProgressFn | None = None,
) -> ResolvedPSF:
    """Turn exactly one PSF source into the PSF for an image.

    Parameters
    ----------
    image_shape : (Z, Y, X)
        Spatial shape of the image to deconvolve (the PSF is cropped to it).
    image_voxel_size_um : (z, y, x)
        The image's voxel size in µm; the PSF is resampled to it.
    psf : path, Image or (Z, Y, X) ndarray, optional
        A measured or computed PSF. Its voxel size comes from ``psf_voxel_size_um``, else its
        metadata, else it is taken equal to the image's (a warning).
    psf_background : float, "auto" or None
        The PSF file's camera offset or background: ``"auto"`` (default) detects an offset or
        measurement noise far from the bead and removes it together with the noise outside the
        PSF's support (one info line); a number is subtracted; ``None`` uses the file as it is.
    beads : path, Image or (Z, Y, X) ndarray, optional
        A bead stack; the PSF is extracted with :func:`neurodecon.psf.extract_psf`.
        Needs ``bead_diameter_um``; ``beads_voxel_size_um`` overrides the stack's metadata and
        ``bead_options`` are passed to the extraction (e.g. ``method="average"``). The PSF is
        sized for this image (its extent in µm bounds the box).
    bead_optics : mapping, optional
        What is known of the microscope that took the beads (``na``, ``immersion_index``,
        ``wavelength_um``, … and ``model``, see :func:`neurodecon.psf.extract_psf`'s
        ``optics``): bounds the light cone, and lets the extraction extend the measured PSF
        by that model where the image needs more than the bead stack measured.
    model : str, optional
        A theoretical model (one of :data:`neurodecon.psf.MODELS`) with its ``optics``
        (keyword arguments of :func:`neurodecon.psf.make_psf`, see :data:`OPTICS_KEYS`).
    shape : (Z, Y, X), optional
        Shape of a model PSF; default :func:`default_psf_shape` (from the optics and the image).
    progress : callable, optional
        Passed to the bead extraction.

    Returns
    -------
    ResolvedPSF

    Examples
    --------
    >>> from neurodecon.psf import resolve_psf
    >>> r = resolve_psf(
    ...     image_shape=(32, 64, 64),
    ...     image_voxel_size_um=(0.2, 0.1, 0.1),
    ...     model="gaussian",
    ...     optics={"fwhm_um": (0.8, 0.25, 0.25)},
    ... )
    >>> r.psf.shape, round(float(r.psf.sum()), 4), r.source
    ((27, 17, 17), 1.0, 'model')
    """
    given = [n for n, v in (("psf", psf), ("beads", beads), ("model", model)) if v is not None]
    if len(given) != 1:
        raise user_error(
            "give exactly one PSF source" if given else "no PSF given",
            fix="pass a PSF file (--psf), a bead stack (--beads with --bead-diameter), "
            "or a theoretical model (--model and its optics)",
        )
    image_shape = tuple(int(n) for n in image_shape)
    vox = _voxel_size(image_voxel_size_um)
    if bead_diameter_um is not None and not (
        np.isfinite(bead_diameter_um) and bead_diameter_um > 0
    ):
        raise user_error(
            f"the bead diameter must be a positive number of µm, not {bead_diameter_um}",
            fix="give the beads' diameter in µm, e.g. 0.1 for 100 nm beads",
        )
    if beads is not None:
        return _from_beads(
            beads,
            bead_diameter_um,
            beads_voxel_size_um,
            bead_options,
            bead_optics,
            image_shape,
            vox,
            progress,
        )
    if model is not None:
        return _from_model(model, dict(optics or {}), shape, image_shape, vox)
    return _from_psf(psf, psf_voxel_size_um, psf_background, image_shape, vox)


def _voxel_size(vox: Sequence[float]) -> tuple[float, float, float]:
    v = tuple(float(x) for x in vox)
    if len(v) != 3 or not all(np.isfinite(x) and x > 0 for x in v):
        raise user_error(f"invalid voxel size {v}", fix="give three positive numbers (z, y, x) µm")
    return (v[0], v[1], v[2])


def _from_psf(psf, psf_vox, background, image_shape, vox) -> ResolvedPSF:
    from ..io import as_image, as_volume, source_of

    path = source_of(psf)
    img = as_image(psf, voxel_size_um=psf_vox, what="the PSF", check=False)
    raw = as_volume(img, "the PSF", path)
    from_vox = None if img.voxel_size_assumed else tuple(img.voxel_size_um)
    where = f"file {path}" if path else "given array"
    if from_vox is None:
        log.warning(
            "%s: no voxel size given or recorded; taken equal to the image's (give it with "
            "--psf-voxel-size if it differs)",
            where,
        )
    ready = prepare_psf(
        raw,
        image_shape=image_shape,
        psf_voxel_size_um=from_vox,
        image_voxel_size_um=vox,
        path=path,
        background=background,
    )
    record = {
        "source": "file" if path else "array",
        "background": background,
        "path": path,
        "voxel_size_um": list(from_vox) if from_vox else None,
        "shape": list(ready.shape),
    }
    note = "" if from_vox else " (no voxel size: taken equal to the image's)"
    desc = f"{where}{note}, {_shape_text(ready)}"
    return ResolvedPSF(ready, vox, "file" if path else "array", desc, record)


def _from_model(model, optics, shape, image_shape, vox) -> ResolvedPSF:
    if model not in MODELS:
        raise user_error(f"unknown PSF model {model!r}", fix=f"use one of {', '.join(MODELS)}")
    unknown = sorted(set(optics) - set(OPTICS_KEYS))
    if unknown:
        raise user_error(
            f"unknown optics {', '.join(unknown)}", fix=f"use {', '.join(OPTICS_KEYS)}"
        )
    fwhm = optics.get("fwhm_um") or textbook_fwhm_um(
        optics.get("na", 1.4),
        optics.get("wavelength_um", 0.52),
        optics.get("immersion_index", 1.515),
    )
    check_voxel_vs_optics(vox, fwhm, f"the {model} model ({_optics_text(optics)})")
    psf_shape = (
        # computed no larger than the image: prepare_psf crops it to the image anyway
        tuple(min(int(n), i) for n, i in zip(shape, image_shape, strict=True))
        if shape is not None
        else default_psf_shape(model, image_shape, vox, **optics)
    )
    arr = make_psf(model, shape=psf_shape, voxel_size_um=vox, **optics)
    ready = prepare_psf(arr, image_shape=image_shape)
    record = {"source": "model", "model": model, **optics, "shape": list(ready.shape)}
    desc = f"{model} model ({_optics_text(optics)}), {_shape_text(ready)}"
    return ResolvedPSF(ready, vox, "model", desc, _jsonable(record))


def _from_beads(
    beads, diameter, beads_vox, options, optics, image_shape, vox, progress
) -> ResolvedPSF:
    from ..io import source_of

    if diameter is None:
        raise user_error(
            "the bead diameter is needed to extract a PSF from beads",
            path=source_of(beads),
            fix="pass --bead-diameter UM (e.g. 0.1 for 100 nm beads)",
        )
    opts = dict(options or {})
    result = extract_psf(
        beads,
        voxel_size_um=None if beads_vox is None else tuple(beads_vox),
        bead_diameter_um=float(diameter),
        optics=optics,
        image_shape=image_shape,
        image_voxel_size_um=vox,
        progress=progress,
        **opts,
    )
    path = source_of(beads)
    ready = prepare_psf(
        result.psf,
        image_shape=image_shape,
        psf_voxel_size_um=result.voxel_size_um,
        image_voxel_size_um=vox,
        path=path,
    )
    hybrid = result.info.get("hybrid")
    record = {
        "source": "beads",
        "path": path,
        "bead_diameter_um": float(diameter),
        "beads_voxel_size_um": list(result.voxel_size_um),
        "method": result.method,
        "n_beads_used": int(result.n_used),
        "n_beads_rejected": len(result.rejected),
        "extracted_shape": list(result.psf.shape),
        "measured_shape": result.info.get("measured_shape", list(result.psf.shape)),
        "hybrid": hybrid,
        "shape": list(ready.shape),
        "options": opts,
        "optics": dict(optics or {}),
    }
    tails = f", {hybrid['model']} model tails beyond the measured planes" if hybrid else ""
    desc = (
        f"extracted from {path or 'a bead image'} ({result.n_used} beads of {diameter:g} µm, "
        f"{result.method}{tails}), {_shape_text(ready)}"
    )
    return ResolvedPSF(ready, vox, "beads", desc, _jsonable(record), result)


def _shape_text(psf: np.ndarray) -> str:
    return "shape " + "×".join(str(n) for n in psf.shape)


def _optics_text(optics: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in optics.items()) or "defaults"


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
