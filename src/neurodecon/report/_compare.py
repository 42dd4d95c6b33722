"""``compare``: run several deconvolution methods on one stack and write a visual report."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import user_error
from ..progress import ProgressFn, report
from ._methods import DEFAULT_METHODS, MethodResult, parse_methods, run_method

__all__ = ["compare", "PsfRecord"]

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


def _load(obj: ImageLike, what: str, voxel_size_um=None):
    """An :class:`Image` from an array, an Image or a path (``voxel_size_um`` overrides)."""
    from ..io import Image, read

    if obj is None:
        return None
    if isinstance(obj, (str, os.PathLike)):
        return read(obj, voxel_size_um=voxel_size_um)
    if isinstance(obj, Image):
        return (
            obj
            if voxel_size_um is None
            else obj.with_data(obj.data, voxel_size_um=tuple(voxel_size_um))
        )
    arr = np.asarray(obj)
    if voxel_size_um is None and what == "image":
        raise user_error("an array has no voxel size", fix="pass voxel_size_um=(z, y, x) in µm")
    return Image(
        data=arr,
        axes="ZYX"[-arr.ndim :] if arr.ndim <= 3 else "CZYX"[-arr.ndim :],
        voxel_size_um=tuple(voxel_size_um) if voxel_size_um is not None else (1.0, 1.0, 1.0),
        voxel_size_assumed=voxel_size_um is None,
    )


def _as_volume(img, what: str, path: Any = None) -> np.ndarray:
    data = np.asarray(img.data)
    if data.ndim == 4 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 3:
        raise user_error(
            f"{what} must be one 3D stack (Z, Y, X); got shape {data.shape}",
            path=path,
            fix="pick one channel/time point, e.g. with `neurodecon convert`",
        )
    return data.astype(np.float32, copy=False)


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


def _psf_record(
    psf,
    beads,
    bead_diameter_um,
    image_shape,
    voxel_size_um,
    psf_voxel_size_um,
    bead_options,
    progress,
) -> PsfRecord:
    """The PSF from a file/array, or extracted from beads; resampled and centred for the image."""
    from ..psf import prepare_psf, psf_info

    bead_result, beads_data, source = None, None, ""
    if beads is not None:
        from ..psf import extract_psf

        bimg = _load(beads, "beads", bead_options.pop("voxel_size_um", None))
        if bead_diameter_um is None:
            raise user_error(
                "the bead diameter is needed to extract a PSF from beads",
                fix="pass --bead-diameter UM (e.g. 0.2 for 200 nm beads)",
            )
        beads_data = _as_volume(bimg, "the bead image", beads)
        bead_result = extract_psf(
            beads_data,
            voxel_size_um=bimg.voxel_size_um,
            bead_diameter_um=bead_diameter_um,
            progress=progress,
            **bead_options,
        )
        raw_psf, from_vs = bead_result.psf, tuple(bead_result.voxel_size_um)
        source = (
            f"extracted from {beads if isinstance(beads, (str, os.PathLike)) else 'a bead image'}"
            f" ({bead_result.n_used} beads of {bead_diameter_um:g} µm)"
        )
    elif psf is not None:
        pimg = _load(psf, "psf", psf_voxel_size_um)
        raw_psf = _as_volume(pimg, "the PSF", psf if isinstance(psf, (str, os.PathLike)) else None)
        from_vs = tuple(pimg.voxel_size_um) if not pimg.voxel_size_assumed else tuple(voxel_size_um)
        source = f"file {psf}" if isinstance(psf, (str, os.PathLike)) else "given array"
        if pimg.voxel_size_assumed:
            source += " (no voxel size in the file: taken equal to the image's)"
    else:
        return PsfRecord(None, "none (no classical method needs one)", tuple(voxel_size_um))
    ready = prepare_psf(
        raw_psf,
        image_shape=image_shape,
        psf_voxel_size_um=from_vs,
        image_voxel_size_um=tuple(voxel_size_um),
        path=psf if isinstance(psf, (str, os.PathLike)) else None,
    )
    info = psf_info(ready, tuple(voxel_size_um))
    return PsfRecord(
        ready,
        source,
        tuple(voxel_size_um),
        _zyx(info.get("fwhm_um")),
        info,
        bead_result,
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
    methods: str | Sequence[str] = DEFAULT_METHODS,
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
    bead_options: dict[str, Any] | None = None,
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
        Classical methods need one of them; learned models (``model:DIR``) do not.
    methods : str or list of str
        Classical names (see ``neurodecon.classical.METHODS``), ``model:DIR`` or ``model:default``.
    truth : ndarray, Image or path, optional
        Ground truth; adds PSNR/SSIM/NRMSE/Pearson and ranks by them.
    voxel_size_um : (z, y, x), optional
        Overrides the file's voxel size (required for a plain array).
    output_dir : path
        Report folder: ``report.html``, ``metrics.json``, ``metrics.csv``, ``figures/``, ``results/``.
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
    specs = parse_methods(methods)
    img = _load(image, "image", voxel_size_um)
    in_path = image if isinstance(image, (str, os.PathLike)) else img.metadata.get("source")
    raw = _as_volume(img, "the image", in_path)
    vs = tuple(float(v) for v in img.voxel_size_um)
    truth_img = _load(truth, "truth", vs)
    gt = _as_volume(truth_img, "the ground truth", truth) if truth_img is not None else None
    if gt is not None and gt.shape != raw.shape:
        raise user_error(
            f"the ground truth has shape {gt.shape} but the image {raw.shape}",
            path=truth if isinstance(truth, (str, os.PathLike)) else None,
            fix="give the ground truth of this very stack",
        )
    needs_psf = any(s.kind == "classical" for s in specs)
    if needs_psf and psf is None and beads is None:
        raise user_error(
            "the classical methods need a PSF",
            fix="pass --psf FILE, --beads FILE --bead-diameter UM, or a PSF model",
        )
    out = _prepare_output(output_dir, overwrite)
    n_steps = len(specs) + 4
    report(progress, 0, n_steps, "PSF")
    rec = _psf_record(
        psf,
        beads,
        bead_diameter_um,
        raw.shape,
        vs,
        psf_voxel_size_um,
        dict(bead_options or {}),
        _sub(progress, 0, n_steps, "PSF"),
    )
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
        if res.ok:
            res.parameters["output"] = _write_result(
                out, spec.name, res.data, vs, inputs, {"method": spec.spec, **res.parameters}
            )
            log.info("%s: done in %.1f s", spec.spec, res.seconds)
        else:
            log.warning("%s failed: %s", spec.spec, res.error)
        results.append(res)
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
