"""``compare``: run several deconvolution methods on one stack and write a visual report."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import user_error
from ..progress import ProgressFn, report
from ._isotropic import IsotropicGrid
from ._methods import DEFAULT_METHODS, MethodResult, parse_methods, run_method

__all__ = ["compare", "PsfRecord", "default_methods"]

log = logging.getLogger("neurodecon")

ImageLike = Any  # ndarray | neurodecon.Image | path


@dataclass
class PsfRecord:
    """The PSF the classical methods used, resampled to the image's voxel size."""

    psf: np.ndarray | None
    source: str
    voxel_size_um: tuple[float, float, float]
    fwhm_um: tuple[float, float, float] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    bead_result: Any = None
    beads_image: np.ndarray | None = None


_ISOTROPIC_NOTE = (
    "Self-Net methods were compared: every volume is on the isotropic grid (the lateral voxel "
    "size in z too); the input and the other methods' results were interpolated along z "
    "(cubic spline)."
)


def default_methods() -> tuple[str, ...]:
    """Return the methods compared when none are named: Wiener, RL, RL-TV and the shipped model.

    The shipped model is left out when the installation does not include it.
    """
    from ..learn import default_model_path

    shipped = (Path(default_model_path()) / "config.json").is_file()
    return tuple(m for m in DEFAULT_METHODS if shipped or not m.startswith("model:"))


def _load(obj: ImageLike, what: str, voxel_size_um=None):
    """Return an :class:`Image` for an array, an Image or a path (``voxel_size_um`` overrides)."""
    from ..io import as_image

    if obj is None:
        return None
    return as_image(obj, voxel_size_um=voxel_size_um, what=what, require_voxel_size=what == "image")


def _as_volume(img, what: str, path: Any = None) -> np.ndarray:
    from ..io import as_volume

    return as_volume(img, what, path)


def _prepare_output(output_dir: str | os.PathLike, overwrite: bool) -> Path:
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise user_error(
            "the report output exists and is not a folder",
            path=out,
            fix="choose a folder name with -o",
        )
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise user_error(
            "the report folder already exists and is not empty",
            path=out,
            fix="choose another folder or pass --overwrite",
        )
    if not out.parent.exists():
        raise user_error(
            "the parent folder does not exist", path=out, fix=f"create {out.parent} first"
        )
    for sub, pattern in (("figures", "*.png"), ("results", "*.tif")):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for stale in (out / sub).glob(pattern):  # files of an earlier report in this folder
            stale.unlink()
    return out


def _psf_record(sources: dict[str, Any], image_shape, voxel_size_um, progress) -> PsfRecord:
    """Resolve the PSF from a file/array, a bead stack or a model (:func:`resolve_psf`)."""
    from ..io import as_image, as_volume
    from ..psf import resolve_psf

    if all(sources.get(k) is None for k in ("psf", "beads", "model")):
        return PsfRecord(None, "none (no classical method needs one)", tuple(voxel_size_um))
    beads_data = None
    if sources.get("beads") is not None:
        bimg = as_image(sources["beads"], voxel_size_um=sources.pop("beads_voxel_size_um", None))
        beads_data = as_volume(bimg, "the bead image", sources["beads"])
        sources["beads"] = bimg
    resolved = resolve_psf(
        image_shape=image_shape, image_voxel_size_um=voxel_size_um, progress=progress, **sources
    )
    info = resolved.info()
    return PsfRecord(
        resolved.psf,
        resolved.description,
        tuple(voxel_size_um),
        _zyx(info.get("fwhm_um")),
        {**info, "record": resolved.record},
        resolved.beads,
        beads_data,
    )


def _zyx(value: Any) -> tuple[float, float, float] | None:
    """(z, y, x) floats from a ``{"z", "y", "x"}`` dict or a sequence; None when absent."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = (value["z"], value["y"], value["x"])
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def _write_result(out: Path, name: str, data: np.ndarray, voxel_size_um, inputs, params) -> str:
    from ..io import write

    path = out / "results" / f"{name}.tif"
    write(
        path,
        data,
        voxel_size_um=voxel_size_um,
        overwrite=True,
        inputs=inputs,
        provenance={"parameters": params},
    )
    return path.relative_to(out).as_posix()


def compare(
    image: ImageLike,
    *,
    psf: ImageLike = None,
    beads: ImageLike = None,
    bead_diameter_um: float | None = None,
    methods: str | Sequence[str] | None = None,
    truth: ImageLike = None,
    voxel_size_um: Sequence[float] | None = None,
    output_dir: str | os.PathLike,
    overwrite: bool = False,
    iterations: int | str = "auto",
    regularization: float | None = None,
    background: float | str | None = None,
    device: str = "auto",
    method_options: dict[str, dict[str, Any]] | None = None,
    psf_voxel_size_um: Sequence[float] | None = None,
    psf_background: float | str | None = "auto",
    beads_voxel_size_um: Sequence[float] | None = None,
    bead_options: dict[str, Any] | None = None,
    psf_model: str | None = None,
    optics: dict[str, Any] | None = None,
    psf_shape: Sequence[int] | None = None,
    title: str | None = None,
    notes: Sequence[str] = (),
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Deconvolve ``image`` with several methods and write a report comparing them.

    Parameters
    ----------
    image : (Z, Y, X) ndarray, Image or path
        The blurred stack.
    psf, beads : ndarray, Image or path, optional
        A PSF, or a bead image from which one is extracted (needs ``bead_diameter_um``).
        Classical methods need a PSF source (these, or ``psf_model``); learned models
        (``model:DIR``) do not. The PSF is chosen by :func:`neurodecon.psf.resolve_psf`, as in
        ``deconvolve`` and ``train``.
    psf_voxel_size_um, beads_voxel_size_um : (z, y, x), optional
        Override the PSF file's or the bead stack's voxel size.
    psf_background : float, "auto" or None
        A measured PSF file's offset (see :func:`neurodecon.psf.resolve_psf`).
    bead_options : dict, optional
        Options of :func:`neurodecon.psf.extract_psf`.
    psf_model, optics, psf_shape : optional
        A theoretical PSF: model name, keyword arguments of :func:`neurodecon.psf.make_psf` and
        shape (default from the optics and the image).
    methods : str or list of str, optional
        Classical names (see ``neurodecon.classical.METHODS``), ``model:DIR`` or ``model:default``;
        default :func:`default_methods`.
    truth : ndarray, Image or path, optional
        Ground truth; adds PSNR/SSIM/NRMSE/Pearson and ranks by them.
    voxel_size_um : (z, y, x), optional
        Overrides the file's voxel size (required for a plain array).
    output_dir : path
        Report folder: ``report.html``, ``metrics.json``, ``metrics.csv``, ``figures/`` and
        ``results/``.
    iterations, regularization, background, device
        Passed to every classical method (``iterations`` only to iterative ones).
    method_options : dict, optional
        Per-method overrides, e.g. ``{"rl": {"iterations": 50}, "rltv": {"regularization": 1e-3}}``.
    progress : callable, optional
        ``progress(step, n_steps, message)``; returning False cancels.

    Returns
    -------
    dict
        The content of ``metrics.json`` plus ``"report"`` (the HTML path).
    """
    from ._write import write_report

    started = time.time()
    if methods is None:
        methods = default_methods()
    specs = parse_methods(methods if isinstance(methods, str) else tuple(methods))
    img = _load(image, "image", voxel_size_um)
    in_path = image if isinstance(image, (str, os.PathLike)) else img.metadata.get("source")
    raw = _as_volume(img, "the image", in_path)
    vs = tuple(float(v) for v in img.voxel_size_um)
    truth_img = _load(truth, "truth", vs)
    gt = _as_volume(truth_img, "the ground truth", truth) if truth_img is not None else None
    grid = IsotropicGrid(vs) if any(s.kind == "isotropic" for s in specs) else None
    truth_path = truth if isinstance(truth, (str, os.PathLike)) else None
    if grid is not None and gt is not None:
        grid.check_truth(gt, raw.shape, truth_path)
    elif gt is not None and gt.shape != raw.shape:
        raise user_error(
            f"the ground truth has shape {gt.shape} but the image {raw.shape}",
            path=truth if isinstance(truth, (str, os.PathLike)) else None,
            fix="give the ground truth of this very stack",
        )
    needs_psf = any(s.kind == "classical" or s.base is not None for s in specs)
    if needs_psf and psf is None and beads is None and psf_model is None:
        raise user_error(
            "the classical methods need a PSF",
            fix="pass --psf FILE, --beads FILE --bead-diameter UM, or a PSF model",
        )
    out = _prepare_output(output_dir, overwrite)
    n_steps = len(specs) + 4
    report(progress, 0, n_steps, "PSF")
    sources = {
        "psf": psf,
        "psf_voxel_size_um": psf_voxel_size_um,
        "psf_background": psf_background,
        "beads": beads,
        "bead_diameter_um": bead_diameter_um,
        "beads_voxel_size_um": beads_voxel_size_um,
        "bead_options": bead_options,
        "model": psf_model,
        "optics": optics,
        "shape": psf_shape,
    }
    rec = _psf_record(sources, raw.shape, vs, _sub(progress, 0, n_steps, "PSF"))
    if rec.psf is not None:
        _write_result(out, "psf", rec.psf, vs, (), {"source": rec.source})
    inputs = [p for p in (in_path, truth, psf, beads) if isinstance(p, (str, os.PathLike))]
    options = {"iterations": iterations, "regularization": regularization, "background": background}
    results: list[MethodResult] = []
    for i, spec in enumerate(specs, start=1):
        report(progress, i, n_steps, f"{spec.spec}: running")
        opts = {**options, **(method_options or {}).get(spec.name, {})}
        res = run_method(
            spec,
            raw,
            psf=rec.psf,
            voxel_size_um=vs,
            options=opts,
            device=device,
            progress=_sub(progress, i, n_steps, spec.spec),
        )
        if res.ok and res.data is not None:
            if grid is not None and spec.kind != "isotropic":  # onto the isotropic grid
                res.data, res.kernel = grid.resample(res.data), None
                res.parameters["z_interpolation"] = "cubic"
                if res.spread is not None:
                    res.spread = grid.resample(res.spread)
            res_vs = vs if grid is None else grid.voxel_size_um
            meta = {"method": spec.spec, **res.parameters}
            res.parameters["output"] = _write_result(out, spec.name, res.data, res_vs, inputs, meta)
            if res.spread is not None:  # a network's flip spread, beside its result
                res.parameters["uncertainty_output"] = _write_result(
                    out, f"{spec.name}_uncertainty", res.spread, res_vs, inputs, meta
                )
            log.info("%s: done in %.1f s", spec.spec, res.seconds)
        else:
            log.warning("%s failed: %s", spec.spec, res.error)
        results.append(res)
    if grid is not None:  # the report on the isotropic grid; no kernel fits that grid
        raw, vs, rec = grid.resample(raw), grid.voxel_size_um, replace(rec, psf=None)
        notes = [*notes, _ISOTROPIC_NOTE]
    summary = write_report(
        out,
        raw=raw,
        truth=gt,
        results=results,
        psf=rec,
        voxel_size_um=vs,
        context={
            "input": str(in_path) if in_path else "array",
            "truth": str(truth)
            if isinstance(truth, (str, os.PathLike))
            else ("array" if gt is not None else None),
            "shape": list(raw.shape),
            "device": device,
            "options": options,
            "method_options": method_options or {},
            "title": title,
            "notes": list(notes),
            "voxel_size_assumed": bool(img.voxel_size_assumed),
            "started": started,
        },
        progress=progress,
        step=len(specs) + 1,
        n_steps=n_steps,
    )
    report(progress, n_steps, n_steps, f"report written to {summary['report']}")
    return summary


def _sub(progress: ProgressFn | None, step: int, n_steps: int, label: str) -> ProgressFn | None:
    """Forward a method's own progress as a message on the current step."""
    if progress is None:
        return None

    def inner(done: int, total: int, message: str = "") -> bool | None:
        return progress(step, n_steps, f"{label}: {done}/{total} {message}".rstrip())

    return inner
