"""Hybrid PSF: the measured PSF where the bead stack saw it, a physical model beyond.

A bead stack shorter than the PSF's support (a widefield PSF hardly decays with defocus) leaves
the planes beyond its reach unmeasured. When the image to deconvolve needs them and the optics are
known, the model PSF (:func:`neurodecon.psf.make_psf`: Born–Wolf widefield/confocal/two-photon,
or Gibson–Lanni through psfmodels when the sample index or depth is given) is scaled to the flux
of the measured planes near the edge of the measured range, and the two are blended over those
planes (linear ramp), the measured PSF inside and the model outside. One info line announces it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._models import MODELS, make_psf
from ._validate import center_crop

__all__ = ["extend_tails", "MAKE_PSF_KEYS"]

log = logging.getLogger("neurodecon")

#: Optics keys passed on to :func:`make_psf` (``model`` chooses the model).
MAKE_PSF_KEYS = (
    "na",
    "wavelength_um",
    "immersion_index",
    "excitation_wavelength_um",
    "sample_index",
    "depth_um",
    "pinhole_au",
    "spherical_waves",
)


def extend_tails(
    psf: np.ndarray,
    vox: Sequence[float],
    target: Sequence[int],
    optics: Mapping[str, Any],
    flux_sigma: np.ndarray | None = None,
    *,
    blend_fraction: float = 0.25,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Extend a measured, centred PSF to ``target`` (per axis at least its own size).

    Returns the hybrid PSF (sum 1) and a JSON-friendly record (model, optics, scale, the measured
    and blended extents, flux per plane of measured, model and hybrid).
    """
    model = str(optics.get("model", "widefield"))
    if model not in MODELS:
        raise ValueError(f"unknown PSF model {model!r}")
    kw = {k: optics[k] for k in MAKE_PSF_KEYS if optics.get(k) is not None}
    shape = tuple(max(int(t), int(m)) for t, m in zip(target, psf.shape, strict=True))
    shape = tuple(n if n % 2 else n + 1 for n in shape)
    theory = make_psf(model, shape=shape, voxel_size_um=vox, **kw).astype(np.float64)
    meas = center_crop(psf.astype(np.float64), shape)
    weight = _blend_weights(psf.shape, shape, blend_fraction)
    ramp = (weight > 0) & (weight < 1)
    planes = ramp.any(axis=(1, 2))
    if not planes.any():
        planes = (weight > 0).any(axis=(1, 2))
    scale = float(meas[planes].sum() / max(theory[planes].sum(), 1e-30))
    hybrid = weight * meas + (1 - weight) * scale * theory
    hybrid /= hybrid.sum()
    hz = psf.shape[0] // 2
    record = {
        "model": model,
        "optics": {k: float(v) for k, v in kw.items()},
        "scale": scale,
        "measured_shape": list(psf.shape),
        "shape": list(shape),
        "measured_half_um": round(hz * float(vox[0]), 4),
        "blend_planes": int(planes.sum()),
        "flux_measured": _flux(meas).tolist(),
        "flux_model": _flux(scale * theory).tolist(),
        "flux_hybrid": _flux(hybrid).tolist(),
    }
    log.info(
        "hybrid PSF: measured from the beads within ±%.2f µm (%d planes), %s model (%s) beyond, "
        "scaled ×%.3g to the measured flux and blended over %d planes; shape %s",
        hz * float(vox[0]),
        psf.shape[0],
        model,
        ", ".join(f"{k} {v:g}" for k, v in kw.items()),
        scale,
        int(planes.sum()),
        "×".join(str(n) for n in shape),
    )
    return hybrid, record


def _flux(a: np.ndarray) -> np.ndarray:
    return a.sum(axis=(1, 2))


def _blend_weights(measured: Sequence[int], shape: Sequence[int], fraction: float) -> np.ndarray:
    """1 well inside the measured box, a linear ramp to 0 over its outer ``fraction``, 0 beyond."""
    axes = []
    for m, n in zip(measured, shape, strict=True):
        h = m // 2
        d = np.abs(np.arange(n) - n // 2).astype(float)
        if n <= m:  # this axis is not extended
            axes.append(np.ones(n))
            continue
        width = max(1.0, fraction * h)
        axes.append(np.clip((h + 0.5 - d) / width, 0, 1))
    return axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
