"""The HTML page of a comparison report, built from the ``metrics.json`` summary."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from . import _html
from ._check import CONSISTENCY_KEYS, inconsistent
from ._measure import METRIC_LABELS

#: Titles of the figures in the contents list.
_TITLES = {
    "fig-orthoviews": "Orthogonal views",
    "fig-profiles": "Line profiles",
    "fig-spectra": "Fourier spectra (radial)",
    "fig-fourier": "Fourier spectra (images)",
    "fig-fwhm": "FWHM of small objects",
    "fig-metrics": "Metrics chart",
    "fig-psf": "PSF",
    "fig-beads": "Bead extraction QC",
    "fig-consistency": "Consistency with the raw data",
    "fig-uncertainty": "Uncertainty of the learned results",
}

__all__ = ["render"]

_MAIN = ("psnr", "ssim", "nrmse", "pearson")


def _main_columns(summary: dict) -> list[str]:
    keys = {k for r in summary["methods"].values() for k in r["metrics"]}
    truthy = [k for k in _MAIN if k in keys]
    used = [k for k in summary["ranking"]["metrics"] if k not in truthy]
    fwhm = [k for k in ("objects_fwhm_x_um", "objects_fwhm_z_um") if k in keys]
    check = [k for k in ("consistency_chi2", "consistency_flagged_pct") if k in keys]
    return truthy + used + fwhm + check


def _ranking_table(summary: dict) -> str:
    cols = _main_columns(summary)
    rows, classes = [], []
    order = summary["ranking"]["order"]
    names = order + [n for n in summary["methods"] if n not in order]
    for name in names:
        r = summary["methods"][name]
        cells = [
            r["rank"] if r["rank"] else "–",
            name,
            r["label"],
            r["status"],
            r["time_s"] if r["time_s"] is not None else None,
            r.get("iterations"),
        ]
        cells += [r["metrics"].get(k) for k in cols]
        cells.append(r["error"] or "")
        rows.append(cells)
        classes.append(
            "failed"
            if r["status"] == "failed"
            else ("inconsistent" if inconsistent(r["metrics"]) and name != "raw" else "")
            + (" best" if r["rank"] == 1 else "")
        )
    header = [
        "rank",
        "method",
        "description",
        "status",
        "time (s)",
        "iterations",
        *[METRIC_LABELS.get(k, CONSISTENCY_KEYS.get(k, k)) for k in cols],
        "error",
    ]
    return _html.table_block(
        "table-ranking",
        header,
        rows,
        row_classes=classes,
        caption="Methods ranked by " + summary["ranking"]["criterion"],
    )


def _metrics_table(summary: dict) -> str:
    names = list(summary["methods"])
    keys = sorted({k for r in summary["methods"].values() for k in r["metrics"]})
    try:
        from ..metrics import METRIC_KEYS
    except ImportError:  # pragma: no cover - metrics is part of the package
        METRIC_KEYS = {}
    meaning = {
        **METRIC_KEYS,
        "objects_fwhm_x_um": "median FWHM of the small objects along x (µm)",
        "objects_fwhm_y_um": "median FWHM of the small objects along y (µm)",
        "objects_fwhm_z_um": "median FWHM of the small objects along z (µm)",
        "profile_fwhm_x_um": "FWHM of the line profile along x (µm)",
        "profile_fwhm_z_um": "FWHM of the line profile along z (µm)",
        "consistency_chi2": "mean squared noise-normalised residual of the volume blurred again "
        "vs the input (1: noise alone; docs/metrics.md)",
        "consistency_flagged_pct": "share of the volume where that residual, smoothed at the "
        "PSF's scale, exceeds 4 noise σ",
        "consistency_invented_pct": "... where the volume has light the data lack",
        "consistency_missing_pct": "... where the data have light the volume lacks",
    }
    rows = [
        [k, meaning.get(k, ""), *[summary["methods"][n]["metrics"].get(k) for n in names]]
        for k in keys
    ]
    return _html.table_block(
        "table-metrics",
        ["metric", "meaning", *names],
        rows,
        caption="Every metric (neurodecon.metrics.evaluate and FWHM), per volume",
    )


def _files_table(summary: dict) -> str:
    rows = []
    for name, r in summary["methods"].items():
        if r["spec"] is None:
            continue
        params = {k: v for k, v in r["parameters"].items() if k != "output"}
        rows.append([name, r["spec"], json.dumps(params, default=str), r["output"] or "(failed)"])
    if summary["psf"]["file"]:
        rows.append(["psf", "–", summary["psf"]["source"], summary["psf"]["file"]])
    return _html.table_block(
        "table-files",
        ["method", "spec", "parameters", "file"],
        rows,
        caption="Parameters of each method and the file it wrote (float32 TIFF)",
    )


def _summary_block(summary: dict) -> str:
    inp = summary["input"]
    best = summary["ranking"]["order"][0] if summary["ranking"]["order"] else "–"
    vs = " × ".join(f"{v:g}" for v in summary["voxel_size_um"])
    pairs = [
        ("input", inp.get("input")),
        ("shape (z, y, x)", " × ".join(map(str, inp.get("shape", [])))),
        (
            "voxel size (z, y, x)",
            f"{vs} µm" + (" (assumed: not in the file)" if inp.get("voxel_size_assumed") else ""),
        ),
        ("ground truth", inp.get("truth") or "none"),
        ("PSF", summary["psf"]["source"]),
        (
            "PSF FWHM (z, y, x)",
            " / ".join(f"{v:.3g}" for v in summary["psf"]["fwhm_um"]) + " µm"
            if summary["psf"]["fwhm_um"]
            else "–",
        ),
        ("methods", ", ".join(r["spec"] for r in summary["methods"].values() if r["spec"])),
        ("best", f"{best} ({summary['ranking']['criterion']})"),
        (
            "classical options",
            json.dumps(inp.get("options", {}))
            + (
                f"; per method: {json.dumps(inp['method_options'])}"
                if inp.get("method_options")
                else ""
            ),
        ),
        ("device", inp.get("device")),
        ("total time", f"{summary['total_s']:.1f} s"),
        ("neurodecon", summary["neurodecon_version"]),
        ("python", summary["python"]),
        ("created", summary["created"]),
    ]
    return _html.key_values(pairs)


def _ranking_note(summary: dict, failed: list[str]) -> str:
    from ..metrics import FLAGGED_LIMIT

    parts = []
    if failed:
        parts.append("Failed: " + ", ".join(failed) + " (reason in the table).")
    bad = [
        n
        for n, r in summary["methods"].items()
        if n not in ("raw", "truth") and inconsistent(r["metrics"])
    ]
    if bad:
        parts.append(
            f"Not consistent with the raw data (more than {100 * FLAGGED_LIMIT:g} % of the "
            "volume flagged, marked in "
            "the table; see the consistency maps): " + ", ".join(bad) + ". Whatever their rank, "
            "these results contain light the data do not support, or lack light they have."
        )
    if summary["input"].get("truth") is None:
        parts.append(
            "Without a ground truth no single number says which result is right: "
            "decorrelation analysis rewards detail and SNR, and a method that removes "
            "noise without sharpening can rank below the raw input. Judge with the "
            "orthogonal views, the line profiles and the spectra below."
        )
    return " ".join(parts)


def _contents(items: list[tuple[str, str]]) -> str:
    links = "".join(f'<li><a href="#{html.escape(i)}">{html.escape(t)}</a></li>' for i, t in items)
    return f'<nav id="contents"><ul>{links}</ul></nav>'


def render(summary: dict[str, Any], out: Path, figures: dict[str, tuple[str, str]]) -> str:
    """Return the report page: summary, ranking table, figures, PSF, all metrics, files."""
    figs = summary["figures"]

    def fig(fid: str) -> str:
        if fid not in figs:
            return ""
        return _html.figure_block(out / figs[fid], figures[fid][1], page_dir=out, fig_id=fid)

    failed = [n for n, r in summary["methods"].items() if r["status"] == "failed"]
    toc = [
        ("table-ranking", "Ranking table"),
        *[(f, _TITLES.get(f, f)) for f in figs],
        ("table-metrics", "All metrics"),
        ("table-files", "Parameters and files"),
    ]
    sections = [
        _html.section("Summary", _summary_block(summary), _contents(toc)),
        _html.section("Ranking", _ranking_table(summary), note=_ranking_note(summary, failed)),
        _html.section("Orthogonal views", fig("fig-orthoviews")),
        _html.section("Line profiles and object size", fig("fig-profiles"), fig("fig-fwhm")),
        _html.section("Fourier spectra", fig("fig-spectra"), fig("fig-fourier")),
        _html.section("Metrics", fig("fig-metrics"), _metrics_table(summary)),
        _html.section("Consistency with the raw data", fig("fig-consistency")),
        *(
            [_html.section("Uncertainty of the learned results", fig("fig-uncertainty"))]
            if "fig-uncertainty" in figs
            else []
        ),
        _html.section("PSF", fig("fig-psf"), fig("fig-beads")),
        _html.section(
            "Parameters and files",
            _files_table(summary),
            *(f'<p class="note">{html.escape(n)}</p>' for n in summary["input"].get("notes", [])),
        ),
    ]
    title = summary["input"].get("title") or "NeuroDecon comparison report"
    sub = (
        f"neurodecon {summary['neurodecon_version']} · {summary['created']} · "
        "metrics.json and metrics.csv hold the same numbers"
    )
    return _html.render_page(title, sub, sections)
