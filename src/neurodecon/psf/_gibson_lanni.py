"""Gibson–Lanni PSF through ``psfmodels`` (scalar model), with our own centring.

``psfmodels`` puts the lateral centre at ``(nx − 1) / 2`` and needs an odd ``nx``; it samples the
focal positions we give (µm from the coverslip, like the source depth ``pz``). We therefore

* compute an odd lateral size ``2 · (n // 2) + 1`` and keep its first ``n`` pixels, so the centre
  lands on ``n // 2`` for even and odd ``n``;
* find the axial maximum (it moves with depth when the sample and immersion indices differ — the
  focal shift) on a fine on-axis scan, and sample the planes around it so that the maximum is at
  plane ``nz // 2``. Plane index increases with the focal position (deeper into the sample);
* use ``oversample_factor=3`` (pixel-area integration; 0 would return NaN in psfmodels 0.3.3);
* compute square pixels and resample when ``y`` and ``x`` voxel sizes differ.
"""

from __future__ import annotations

import numpy as np

from ..errors import user_error

__all__ = ["gibson_lanni_psf", "focal_shift_um"]


def _params(na, immersion_index, sample_index) -> dict:
    n = immersion_index
    return {"NA": na, "ni": n, "ni0": n, "ns": sample_index, "model": "scalar"}


def focal_shift_um(
    *,
    na: float,
    wavelength_um: float,
    immersion_index: float,
    sample_index: float,
    depth_um: float,
    step_um: float,
) -> float:
    """Return the focal position (µm, psfmodels' ``zv``) of the axial maximum for ``depth_um``.

    psfmodels measures ``zv`` from the coverslip, like ``pz``; without index mismatch the maximum
    is at ``zv = pz``, with mismatch it moves away (the focal shift).
    """
    import psfmodels

    if depth_um <= 0:
        return 0.0
    reach = (
        depth_um * abs(sample_index / immersion_index - 1.0) + depth_um * 0.2 + 3.0 * wavelength_um
    )
    params = _params(na, immersion_index, sample_index)
    centre = depth_um
    for step in (max(step_um / 2, 0.05), max(step_um / 16, 0.005)):  # coarse scan, then refine
        zv = centre + np.arange(-reach, reach + step / 2, step)
        prof = psfmodels.make_psf(
            zv,  # type: ignore[arg-type]  # psfmodels accepts an array of focal positions
            1,
            dxy=0.05,
            pz=depth_um,
            wvl=wavelength_um,
            normalize=False,
            **params,
        )[:, 0, 0]
        centre = float(zv[int(np.argmax(prof))])
        reach = 2 * step
    return centre


def gibson_lanni_psf(
    shape: tuple[int, int, int],
    voxel_size_um: tuple[float, float, float],
    *,
    na: float,
    wavelength_um: float,
    immersion_index: float,
    sample_index: float,
    depth_um: float = 0.0,
) -> np.ndarray:
    """Scalar Gibson–Lanni intensity PSF, focus at ``n // 2``, float64, unnormalised."""
    import psfmodels

    if depth_um < 0:
        raise user_error(
            f"depth {depth_um} µm is negative", fix="give the depth below the coverslip (≥ 0 µm)"
        )
    if sample_index <= 0:
        raise user_error(
            f"sample index {sample_index} is not positive",
            fix="e.g. 1.33 for water, 1.45 for tissue",
        )
    nz, ny, nx = shape
    dz, dy, dx = voxel_size_um
    dxy = min(dy, dx)
    n_lat = max(int(np.ceil(ny * dy / dxy)), int(np.ceil(nx * dx / dxy)))
    m = 2 * (n_lat // 2) + 1
    z0 = focal_shift_um(
        na=na,
        wavelength_um=wavelength_um,
        immersion_index=immersion_index,
        sample_index=sample_index,
        depth_um=depth_um,
        step_um=dz,
    )
    zv = z0 + (np.arange(nz) - nz // 2) * dz
    psf = psfmodels.make_psf(
        zv,  # type: ignore[arg-type]  # psfmodels accepts an array of focal positions
        m,
        dxy=dxy,
        pz=depth_um,
        wvl=wavelength_um,
        normalize=False,
        oversample_factor=3,
        **_params(na, immersion_index, sample_index),
    )
    psf = np.asarray(psf, dtype=np.float64)  # (nz, m, m), lateral centre at m // 2
    from ._validate import center_crop, resample_psf

    if abs(dy - dx) > 1e-6 * dxy:
        return resample_psf(psf, (dz, dxy, dxy), (dz, dy, dx), shape=shape, normalize=False)
    return center_crop(psf, shape)
