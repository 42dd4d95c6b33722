"""One call from phantom names and optics to (truth, image, PSF), optionally written to a folder."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import user_error
from ._forward import forward_model
from ._phantoms import phantom

__all__ = ["simulate", "Simulation"]


@dataclass
class Simulation:
    """Result of :func:`simulate`: arrays (Z, Y, X) float32 and the parameters that made them."""

    truth: np.ndarray
    image: np.ndarray
    psf: np.ndarray
    voxel_size_um: tuple[float, float, float]
    parameters: dict[str, Any] = field(default_factory=dict)


def simulate(
    phantoms: str | Sequence[str],
    *,
    shape: Sequence[int],
    voxel_size_um: Sequence[float],
    psf: np.ndarray | None = None,
    psf_model: str | None = None,
    psf_params: dict[str, Any] | None = None,
    psf_shape: Sequence[int] | None = None,
    photons: float | None = 1000.0,
    background: float = 0.0,
    read_noise: float = 0.0,
    offset: float = 0.0,
    gain: float = 1.0,
    seed: int = 0,
    margin_px: int | Sequence[int] | None = None,
    density: float = 1.0,
    output_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    psf_source: str | os.PathLike | None = None,
    **phantom_options: Any,
) -> Simulation:
    """Simulate a microscope stack: phantom → blur → noise, in one call.

    Parameters
    ----------
    phantoms : str or list of str
        Phantom families (see :func:`neurodecon.synth.phantom`).
    shape : (Z, Y, X) ints
        Output shape.
    voxel_size_um : (z, y, x) floats
        Voxel size in µm.
    psf : (Z, Y, X) ndarray, optional
        A PSF at ``voxel_size_um`` (validated and centred with
        :func:`neurodecon.psf.prepare_psf`); otherwise ``psf_model`` with ``psf_params``
        (keyword arguments of :func:`neurodecon.psf.make_psf`) and ``psf_shape``.
    photons, background, read_noise, offset, gain, seed
        See :func:`neurodecon.synth.forward_model`.
    margin_px : int or (3,) ints, optional
        The phantom is drawn larger by this margin on each side and blurred before cropping, so
        that light from outside the field enters it. Default: half the PSF size on each axis.
    density, **phantom_options
        Passed to :func:`neurodecon.synth.phantom`.
    output_dir : path, optional
        Write ``truth.tif``, ``image.tif``, ``psf.tif`` (with voxel sizes) and
        ``simulation.json`` there. The folder is created; an existing non-empty folder is
        refused unless ``overwrite``.
    psf_source : str, optional
        Where ``psf`` came from (a file name), recorded in the parameters.

    Returns
    -------
    Simulation
        ``truth`` and ``image`` of ``shape``, the ``psf`` used, all (Z, Y, X) float32 arrays,
        with the voxel size and the parameters (also written to ``simulation.json``).
    """
    from ..psf import resolve_psf

    shape_t = tuple(int(s) for s in shape)
    vox = tuple(float(v) for v in voxel_size_um)
    params = dict(psf_params or {})
    if psf is None and psf_model is None:
        raise user_error(
            "no PSF given", fix="pass a PSF array (--psf FILE) or a model (--model ...)"
        )
    resolved = resolve_psf(
        image_shape=shape_t,
        image_voxel_size_um=vox,
        psf=None if psf is None else np.asarray(psf),
        model=None if psf is not None else psf_model,
        optics=params if psf is None else None,
        shape=psf_shape,
    )
    kernel = resolved.psf
    psf_desc: dict[str, Any] = {"shape": list(kernel.shape)}
    if psf is not None:
        psf_desc["source"] = str(psf_source) if psf_source else "array"
    else:
        psf_desc.update(source="model", model=psf_model, **params)
    if margin_px is None:
        margin = tuple(n // 2 for n in kernel.shape)
    else:
        margin = (
            (int(margin_px),) * 3
            if isinstance(margin_px, (int, float, np.number))
            else tuple(int(m) for m in margin_px)
        )
    big = tuple(s + 2 * m for s, m in zip(shape_t, margin, strict=True))
    truth_big = phantom(
        phantoms, shape=big, voxel_size_um=vox, seed=seed, density=density, **phantom_options
    )
    image_big = forward_model(
        truth_big,
        kernel,
        photons=photons,
        background=background,
        read_noise=read_noise,
        offset=offset,
        gain=gain,
        seed=seed + 1,
    )
    crop = tuple(slice(m, m + s) for m, s in zip(margin, shape_t, strict=True))
    parameters = {
        "version": __version__,
        "phantoms": phantoms if isinstance(phantoms, str) else ",".join(phantoms),
        "shape": list(shape_t),
        "voxel_size_um": list(vox),
        "seed": int(seed),
        "density": float(density),
        "margin_px": list(margin),
        "phantom_options": phantom_options,
        "psf": psf_desc,
        "photons": photons,
        "background": background,
        "read_noise": read_noise,
        "offset": offset,
        "gain": gain,
        "forward_model": "image = gain · (Poisson(truth / max(truth) * photons ⊛ psf + "
        "background) + N(0, read_noise²)) + offset",
    }
    sim = Simulation(
        truth=np.ascontiguousarray(truth_big[crop]),
        image=np.ascontiguousarray(image_big[crop]),
        psf=kernel,
        voxel_size_um=(vox[0], vox[1], vox[2]),  # three values: phantom() checked them
        parameters=parameters,
    )
    if output_dir is not None:
        write_simulation(sim, output_dir, overwrite=overwrite)
    return sim


def write_simulation(
    sim: Simulation, output_dir: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Write ``truth.tif``, ``image.tif``, ``psf.tif`` and ``simulation.json`` to ``output_dir``.

    The folder is created; an existing non-empty one is refused unless ``overwrite``. Returns
    the folder.
    """
    from ..io import write

    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise user_error("output exists and is not a folder", path=out, fix="choose a folder name")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise user_error(
            "output folder is not empty", path=out, fix="choose a new folder or pass --overwrite"
        )
    out.mkdir(parents=True, exist_ok=True)
    prov = {"simulation": sim.parameters}
    for name, arr in (("truth", sim.truth), ("image", sim.image), ("psf", sim.psf)):
        write(
            out / f"{name}.tif",
            arr,
            voxel_size_um=sim.voxel_size_um,
            overwrite=overwrite,
            provenance=prov,
        )
    tmp = out / ".simulation.json.partial"
    tmp.write_text(json.dumps(sim.parameters, indent=2, default=str) + "\n")
    os.replace(tmp, out / "simulation.json")
    return out
