"""Measure every result, draw the figures and write ``report.html``, ``metrics.json``/``.csv``."""

from __future__ import annotations

import csv
import datetime as _dt
import json
import logging
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..progress import ProgressFn, report
from . import _check, _figures, _measure, _views

__all__ = ["write_report", "FIGURES"]

log = logging.getLogger("neurodecon")

#: figure id -> (file name, caption); the page's contents list uses the caption's first words.
FIGURES: dict[str, tuple[str, str]] = {
    "fig-orthoviews": (
        "orthoviews.png",
        "Orthogonal views (XY, YZ, XZ) through the brightest small "
        "object of the input; each volume shown from its own 0.5th to 99.95th "
        "percentile, z drawn to scale.",
    ),
    "fig-profiles": (
        "line_profiles.png",
        "Intensity profiles along x and z through the same point, "
        "each scaled from its volume's background to its peak; FWHM in the legend.",
    ),
    "fig-spectra": (
        "spectra.png",
        "Radially averaged Fourier power spectra, lateral and axial "
        "(standardised volumes, Hann window). More power at high frequency = more "
        "detail, or more noise; compare with the ground truth when there is one.",
    ),
    "fig-fourier": (
        "fourier.png",
        "log amplitude spectra of the XY and XZ planes, common colour "
        "range (Fig. 2B of the NeuroDecon paper).",
    ),
    "fig-fwhm": (
        "fwhm.png",
        "FWHM of the small objects of the input (lateral FWHM below 1.5 × "
        "the PSF's), measured at the same places in every volume (median and quartiles).",
    ),
    "fig-metrics": ("metrics.png", "The main metrics per method."),
    "fig-consistency": (
        "consistency.png",
        "Consistency with the raw data: each volume blurred again by its kernel (the PSF; a "
        "model's own) against the input, in noise standard deviations, XY plane through the "
        "reference point. Red: light the volume has and the data lack (invented); blue: light "
        "the data have and the volume lacks. Noise alone is pale; |value| > 4 is flagged.",
    ),
    "fig-uncertainty": (
        "uncertainty.png",
        "Uncertainty of the learned results: each network run on every flip of the input it "
        "is symmetric for (y and x: 4 passes), flipped back; the result is their mean (left) "
        "and the spread their standard deviation per voxel (right, on a quarter of the "
        "result's range), XY plane through the reference point. High spread marks structure "
        "whose shape depends on the orientation of the data: what the network supplied rather "
        "than read.",
    ),
    "fig-psf": ("psf.png", "The PSF given to the classical methods, at the image's voxel size."),
    "fig-beads": (
        "beads_qc.png",
        "Bead extraction: the averaged bead and the beads used/rejected.",
    ),
}


def _volumes(raw, truth, results) -> dict[str, np.ndarray]:
    vols = {"raw": raw}
    vols.update({r.spec.name: r.data for r in results if r.ok})
    if truth is not None:
        vols["truth"] = truth
    return vols


def _measure_all(vols, truth, vs, point, centres, progress, step, n_steps) -> dict[str, dict]:
    table: dict[str, dict[str, float]] = {}
    extra: dict[str, dict] = {}
    for name, vol in vols.items():
        report(progress, step, n_steps, f"metrics: {name}")
        ref = truth if name != "truth" else None
        row = _measure.volume_metrics(vol, ref, vs)
        fw = _measure.objects_fwhm(vol, centres, vs)
        prof = _views.line_profiles(vol, point, vs)
        pf = _measure.profile_fwhm(prof)
        for k, axis in ((2, "x"), (1, "y"), (0, "z")):
            col = fw[:, k][np.isfinite(fw[:, k])] if len(fw) else np.array([])
            row[f"objects_fwhm_{axis}_um"] = float(np.median(col)) if len(col) else float("nan")
        row["profile_fwhm_x_um"] = pf.get("x", float("nan"))
        row["profile_fwhm_z_um"] = pf.get("z", float("nan"))
        table[name] = row
        extra[name] = {
            "fwhm": fw,
            "profiles": prof,
            "profile_fwhm": pf,
            "background": float(np.percentile(vol, 1.0)),
        }
    return {"table": table, "extra": extra}


def _figures_all(out: Path, vols, m, vs, point, psf, progress, step, n_steps) -> dict[str, str]:
    fig_dir = out / "figures"
    done: dict[str, str] = {}

    def path(fid):
        return fig_dir / FIGURES[fid][0]

    report(progress, step, n_steps, "figures: orthogonal views")
    _figures.orthoview_figure(vols, point, vs, path("fig-orthoviews"))
    report(progress, step, n_steps, "figures: profiles and spectra")
    _figures.profile_figure(
        {n: e["profiles"] for n, e in m["extra"].items()},
        path("fig-profiles"),
        fwhm_um={n: e["profile_fwhm"] for n, e in m["extra"].items()},
        background={n: e["background"] for n, e in m["extra"].items()},
    )
    _figures.spectra_figure(
        {
            n: {"lateral": _views.radial_spectrum(v, vs), "axial": _views.axial_spectrum(v, vs)}
            for n, v in vols.items()
        },
        path("fig-spectra"),
    )
    _figures.fourier_figure(vols, vs, path("fig-fourier"))
    done.update(
        {k: FIGURES[k][0] for k in ("fig-orthoviews", "fig-profiles", "fig-spectra", "fig-fourier")}
    )
    fw = {n: e["fwhm"] for n, e in m["extra"].items()}
    if any(np.isfinite(np.asarray(v)).any() for v in fw.values()):
        _figures.fwhm_figure(fw, path("fig-fwhm"), psf_fwhm_um=psf.fwhm_um)
        done["fig-fwhm"] = FIGURES["fig-fwhm"][0]
    cols = _metric_columns(m["table"])
    if cols:
        _figures.metrics_figure(m["table"], cols, path("fig-metrics"))
        done["fig-metrics"] = FIGURES["fig-metrics"][0]
    if psf.psf is not None:
        _figures.psf_figure(
            psf.psf, vs, path("fig-psf"), fwhm_um=psf.fwhm_um, title=f"PSF: {psf.source}"
        )
        done["fig-psf"] = FIGURES["fig-psf"][0]
    if psf.bead_result is not None and psf.beads_image is not None:
        from ..psf import bead_qc_figure

        bead_qc_figure(psf.bead_result, psf.beads_image, path("fig-beads"))
        done["fig-beads"] = FIGURES["fig-beads"][0]
    return {k: f"figures/{v}" for k, v in done.items()}


#: Metrics drawn in metrics.png, in order (those present are drawn, up to 8).
_PLOTTED = (
    "psnr",
    "ssim",
    "nrmse",
    "pearson",
    "decorr_xy_resolution_um",
    "decorr_xz_resolution_um",
    "decorr_yz_resolution_um",
    "decorr_xy_snr",
    "decorr_xz_snr",
    "decorr_yz_snr",
    "objects_fwhm_x_um",
    "objects_fwhm_z_um",
)


def _metric_columns(table) -> list[tuple[str, str, bool]]:
    keys = {k for row in table.values() for k in row}
    return [
        (k, _measure.METRIC_LABELS[k], (_measure.metric_direction(k) or -1) > 0)
        for k in _PLOTTED
        if k in keys
    ][:8]


def _json_ready(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_ready(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _write_tables(out: Path, summary: dict) -> None:
    (out / "metrics.json").write_text(
        json.dumps(_json_ready(summary), indent=2) + "\n", encoding="utf-8"
    )
    rows = summary["methods"]
    keys = sorted({k for r in rows.values() for k in r.get("metrics", {})})
    with open(out / "metrics.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "status", "rank", "time_s", "iterations", *keys, "output", "error"])
        for name, r in rows.items():
            mets = r.get("metrics", {})
            w.writerow(
                [
                    name,
                    r["status"],
                    r.get("rank") or "",
                    _cell(r.get("time_s")),
                    _cell(r.get("iterations")),
                    *[_cell(mets.get(k)) for k in keys],
                    r.get("output") or "",
                    r.get("error") or "",
                ]
            )


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return repr(float(v)) if isinstance(v, (float, np.floating)) else str(v)


def _summary(results, m, order, criterion, used, figures, psf, vs, context) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    by_name = {r.spec.name: r for r in results}
    for name in ["raw", *by_name, *(["truth"] if "truth" in m["table"] else [])]:
        r = by_name.get(name)
        row: dict[str, Any] = {
            "label": r.spec.label
            if r
            else ("input (not deconvolved)" if name == "raw" else "ground truth"),
            "spec": r.spec.spec if r else None,
            "status": "ok" if (r is None or r.ok) else "failed",
            "time_s": r.seconds if r else None,
            "error": r.error if r else None,
            "iterations": (
                r.parameters.get("iterations_used", r.parameters.get("iterations")) if r else None
            ),
            "parameters": r.parameters if r else {},
            "output": (r.parameters.get("output") if r else None),
            "metrics": m["table"].get(name, {}),
            "rank": (order.index(name) + 1) if name in order else None,
        }
        rows[name] = row
    return {
        "neurodecon_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "input": context,
        "voxel_size_um": list(vs),
        "psf": {
            "source": psf.source,
            "fwhm_um": list(psf.fwhm_um) if psf.fwhm_um else None,
            "shape": list(psf.psf.shape) if psf.psf is not None else None,
            "file": "results/psf.tif" if psf.psf is not None else None,
            **(
                {"n_beads_used": int(psf.bead_result.n_used)} if psf.bead_result is not None else {}
            ),
        },
        "ranking": {"criterion": criterion, "metrics": used, "order": order},
        "total_s": time.time() - float(context.get("started", time.time())),
        "methods": rows,
        "figures": figures,
    }


def write_report(
    out: Path,
    *,
    raw: np.ndarray,
    truth: np.ndarray | None,
    results: Sequence,
    psf,
    voxel_size_um,
    context: Mapping[str, Any],
    progress: ProgressFn | None,
    step: int,
    n_steps: int,
) -> dict[str, Any]:
    """Measure, rank, draw and write everything; returns the ``metrics.json`` content + paths."""
    from ._page import render

    vs = tuple(voxel_size_um)
    vols = _volumes(raw, truth, results)
    centres = _measure.small_objects(raw, vs, psf_fwhm_um=psf.fwhm_um, max_objects=20)
    point = _measure.reference_point(raw, vs, centres)
    m = _measure_all(vols, truth, vs, point, centres, progress, step, n_steps)
    report(progress, step, n_steps, "consistency with the raw data")
    kernels = {"raw": psf.psf, "truth": psf.psf, **{r.spec.name: r.kernel for r in results if r.ok}}
    checks, maps = _check.measure_consistency(raw, vols, kernels)
    for name, row in checks.items():
        m["table"][name].update(row)
    rankable = {k: v for k, v in m["table"].items() if k != "truth"}
    order, criterion, used = _measure.rank(rankable, use_truth=truth is not None)
    figures = _figures_all(out, vols, m, vs, point, psf, progress, step + 1, n_steps)
    if maps:
        _check.consistency_figure(maps, m["table"], point, out / "figures" / "consistency.png")
        figures["fig-consistency"] = "figures/" + FIGURES["fig-consistency"][0]
    learned = [r for r in results if r.ok and r.spread is not None]
    if learned:
        _check.uncertainty_figure(
            {r.spec.name: r.spread for r in learned},
            vols,
            {r.spec.name: r.parameters["flip_spread_over_signal"] for r in learned},
            point,
            out / "figures" / "uncertainty.png",
        )
        figures["fig-uncertainty"] = "figures/" + FIGURES["fig-uncertainty"][0]
    summary = _summary(results, m, order, criterion, used, figures, psf, vs, dict(context))
    summary["reference_point_zyx"] = list(point)
    summary["n_small_objects"] = int(len(centres))
    report(progress, step + 2, n_steps, "writing report.html, metrics.json, metrics.csv")
    _write_tables(out, summary)
    page = render(summary, out, FIGURES)
    (out / "report.html").write_text(page, encoding="utf-8")
    summary = _json_ready(summary)
    summary["report"] = str(out / "report.html")
    summary["output_dir"] = str(out)
    return summary
