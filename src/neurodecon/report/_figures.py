"""The report's PNG figures, drawn with matplotlib's object API on the Agg canvas.

No ``pyplot`` (no global state, no GUI backend): each function builds a ``Figure``, saves one
PNG and returns its path. Inputs are plain arrays keyed by method name; the order of the dict is
the order of the panels. The names ``"raw"`` and ``"truth"`` get fixed grey/black colours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from . import _views

__all__ = [
    "method_colours",
    "orthoview_figure",
    "profile_figure",
    "spectra_figure",
    "fourier_figure",
    "fwhm_figure",
    "metrics_figure",
    "psf_figure",
]

RAW, TRUTH = "raw", "truth"
_CMAP = "magma"


def _figure(width: float, height: float, *, layout: Literal["constrained"] | None = "constrained"):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=110, facecolor="white")
    return path


def method_colours(names: Sequence[str]) -> dict[str, str]:
    """Return a stable colour per name: grey for the raw input, black for the ground truth."""
    from matplotlib import colormaps

    tab10 = colormaps["tab10"]
    out: dict[str, str] = {}
    i = 0
    for name in names:
        if name == RAW:
            out[name] = "#888888"
        elif name == TRUTH:
            out[name] = "#000000"
        else:
            c = tab10([0, 3, 2, 1, 4, 5, 6, 8, 9][i % 9])  # an int picks that colour
            out[name] = "#" + "".join(f"{int(255 * v):02x}" for v in c[:3])
            i += 1
    return out


def _grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    """Balanced rows x cols for ``n`` panels, at most ``max_cols`` wide."""
    rows = max(1, -(-n // max_cols))
    return rows, -(-n // rows)


def _scale_bar(ax, length_px: float, label: str, shape: tuple[int, int]) -> None:
    h, w = shape
    x0 = w * 0.04
    y0 = h * 0.94
    ax.plot([x0, x0 + length_px], [y0, y0], color="white", lw=3, solid_capstyle="butt")
    ax.text(x0 + length_px + w * 0.02, y0, label, color="white", ha="left", va="center", fontsize=7)


def _nice_length(target: float) -> float:
    """1, 2 or 5 × 10^k just below ``target``."""
    if target <= 0:
        return 1.0
    k = np.floor(np.log10(target))
    for m in (5, 2, 1):
        if m * 10**k <= target:
            return float(m * 10**k)
    return float(10**k)


def orthoview_figure(
    volumes: Mapping[str, np.ndarray],
    point: Sequence[int],
    voxel_size_um: Sequence[float],
    path: str | Path,
    *,
    titles: Mapping[str, str] | None = None,
) -> Path:
    """Orthogonal views (XY, YZ, XZ through ``point``) of every volume side by side.

    Every volume is shown with the same rule: linear grey levels from its own 0.5th to 99.95th
    percentile (so methods with different output scales are comparable), z stretched to physical
    proportions, dashed lines marking the planes and the line profile.
    """
    names = list(volumes)
    rows, cols = _grid(len(names))
    first, _ = _views.orthoview_composite(next(iter(volumes.values())), point, voxel_size_um)
    aspect = first.shape[0] / first.shape[1]
    panel_h = 3.1 * aspect + 0.3
    fig = _figure(3.1 * cols, panel_h * rows + 0.4, layout=None)
    axes = fig.subplots(rows, cols, squeeze=False)
    fig.subplots_adjust(
        left=0.005,
        right=0.995,
        bottom=0.005,
        top=1 - 0.4 / (panel_h * rows + 0.4),
        wspace=0.03,
        hspace=0.3 / panel_h,
    )
    vz, vy, vx = (float(v) for v in voxel_size_um)
    z, y, x = (int(p) for p in point)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, name in zip(axes.ravel(), names, strict=False):
        comp, boxes = _views.orthoview_composite(
            _views.to_display(volumes[name]), point, voxel_size_um, fill=np.nan
        )
        ax.imshow(np.ma.masked_invalid(comp), cmap=_CMAP, vmin=0, vmax=1, interpolation="nearest")
        ax.set_facecolor("white")
        r, c, nr, nc = boxes["xy"]
        yy, xx = (y + 0.5) * vy / vx - 0.5, x
        zz = (z + 0.5) * vz / vx - 0.5
        style = {"color": "#5ad1ff", "lw": 0.6, "ls": (0, (3, 3)), "alpha": 0.8}
        ax.plot([c, c + nc - 1], [r + yy, r + yy], **style)  # y = y0 in XY
        ax.plot([c + xx, c + xx], [r, r + nr - 1], **style)  # x = x0 in XY
        r2, c2, nr2, nc2 = boxes["yz"]
        ax.plot([c2 + zz, c2 + zz], [r2, r2 + nr2 - 1], **style)  # z = z0 in YZ
        r3, c3, nr3, nc3 = boxes["xz"]
        ax.plot([c3, c3 + nc3 - 1], [r3 + zz, r3 + zz], **style)  # z = z0 in XZ
        for key, (rb, cb, _, _) in boxes.items():
            ax.text(cb + 2, rb + 2, key.upper(), color="white", fontsize=7, va="top")
        bar_um = _nice_length(0.25 * nc * vx)
        _scale_bar(ax, bar_um / vx, f"{bar_um:g} µm", (nr, nc))
        ax.set_title((titles or {}).get(name, name), fontsize=9, loc="left")
    fig.suptitle(
        f"Orthogonal views through z={z}, y={y}, x={x} (voxel {vz:.3g}×{vy:.3g}×{vx:.3g} µm)",
        fontsize=10,
    )
    return _save(fig, path)


def profile_figure(
    profiles: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    path: str | Path,
    *,
    fwhm_um: Mapping[str, Mapping[str, float]] | None = None,
    background: Mapping[str, float] | None = None,
) -> Path:
    """Plot lateral (x) and axial (z) intensity profiles through the same structure.

    Each is scaled to ``(value - background) / (peak - background)`` so that shapes compare;
    the FWHM is in the legend.
    """
    names = list(profiles)
    colours = method_colours(names)
    fig = _figure(10, 3.6)
    axes = fig.subplots(1, 2)
    for ax, axis, label in ((axes[0], "x", "lateral (x)"), (axes[1], "z", "axial (z)")):
        for name in names:
            pos, val = profiles[name][axis]
            bg = (background or {}).get(name, float(np.min(val)))
            peak = float(np.max(val))
            scaled = (val - bg) / (peak - bg) if peak > bg else val * 0
            f = (fwhm_um or {}).get(name, {}).get(axis)
            lab = f"{name}" + (f" — FWHM {f:.3g} µm" if f is not None and np.isfinite(f) else "")
            lw = 2.2 if name == TRUTH else 1.4
            ls = "--" if name == RAW else "-"
            ax.plot(pos, scaled, color=colours[name], lw=lw, ls=ls, label=lab)
        ax.axhline(0.5, color="#bbbbbb", lw=0.6, ls=":")
        ax.set_xlabel(f"position along {axis} (µm)")
        ax.set_ylabel("normalised intensity")
        ax.set_title(f"Line profile, {label}", fontsize=10)
        ax.legend(fontsize=6.5, framealpha=0.85, edgecolor="none")
        ax.grid(alpha=0.25)
    return _save(fig, path)


def spectra_figure(
    spectra: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    path: str | Path,
    *,
    cutoff_um: Mapping[str, float] | None = None,
) -> Path:
    """Radially averaged lateral and axial power spectra (log scale), one curve per volume.

    ``cutoff_um`` optionally marks frequencies (``{"lateral": f, "axial": f}`` in cycles/µm),
    e.g. the PSF's support.
    """
    names = list(spectra)
    colours = method_colours(names)
    fig = _figure(10, 3.6)
    axes = fig.subplots(1, 2)
    for ax, key in ((axes[0], "lateral"), (axes[1], "axial")):
        for name in names:
            f, p = spectra[name][key]
            sel = f > 0
            lw = 2.2 if name == TRUTH else 1.4
            ax.semilogy(
                f[sel],
                p[sel] / p[sel].sum(),
                color=colours[name],
                lw=lw,
                ls="--" if name == RAW else "-",
                label=name,
            )
        if cutoff_um and cutoff_um.get(key):
            ax.axvline(cutoff_um[key], color="#999999", lw=0.8, ls=":", label="PSF support")
        ax.set_xlabel("spatial frequency (cycles/µm)")
        ax.set_ylabel("relative power")
        ax.set_title(f"Fourier spectrum, {key} (radial average)", fontsize=10)
        ax.legend(fontsize=7, frameon=False)
        ax.grid(alpha=0.25)
    return _save(fig, path)


def fourier_figure(
    volumes: Mapping[str, np.ndarray], voxel_size_um: Sequence[float], path: str | Path
) -> Path:
    """Show log amplitude spectra of the XY (mean over z) and XZ planes (mean over y).

    Every volume is drawn with the same colour range.
    """
    names = list(volumes)
    specs = {
        name: (_views.log_spectrum_2d(v), _views.log_spectrum_2d(np.moveaxis(v, 1, 0)))
        for name, v in volumes.items()
    }
    allv = np.concatenate([np.ravel(a) for pair in specs.values() for a in pair])
    lo, hi = np.percentile(allv, [5, 99.9])
    vz, vy, vx = (float(v) for v in voxel_size_um)
    width = 1.9 * len(names) + 1.3
    fig = _figure(width, 4.3, layout=None)
    axes = fig.subplots(2, len(names), squeeze=False, sharex=True, sharey="row")
    fig.subplots_adjust(
        left=0.75 / width, right=1 - 0.95 / width, bottom=0.12, top=0.86, wspace=0.08, hspace=0.12
    )
    fy, fx, fz = 0.5 / vy, 0.5 / vx, 0.5 / vz
    for j, name in enumerate(names):
        xy, xz = specs[name]
        im = axes[0, j].imshow(
            xy,
            cmap="viridis",
            vmin=lo,
            vmax=hi,
            extent=(-fx, fx, -fy, fy),
            interpolation="nearest",
            aspect="auto",
        )
        axes[1, j].imshow(
            xz,
            cmap="viridis",
            vmin=lo,
            vmax=hi,
            extent=(-fx, fx, -fz, fz),
            interpolation="nearest",
            aspect="auto",
        )
        axes[0, j].set_title(name, fontsize=9)
        axes[1, j].set_xlabel("k_x (1/µm)", fontsize=7)
        for i in (0, 1):
            axes[i, j].tick_params(labelsize=6)
    axes[0, 0].set_ylabel("k_y (1/µm)", fontsize=7)
    axes[1, 0].set_ylabel("k_z (1/µm)", fontsize=7)
    cax = fig.add_axes((1 - 0.8 / width, 0.2, 0.12 / width, 0.6))
    fig.colorbar(im, cax=cax).set_label("log10 amplitude", fontsize=7)
    cax.tick_params(labelsize=6)
    fig.suptitle(
        "Fourier spectra: XY planes (top, mean over z), XZ planes (bottom, mean over y)",
        fontsize=10,
    )
    return _save(fig, path)


def fwhm_figure(
    fwhm_um: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    psf_fwhm_um: Sequence[float] | None = None,
) -> Path:
    """Median FWHM (x, y, z) of small objects per volume with the interquartile range as error bar.

    ``fwhm_um[name]`` is an ``(n_objects, 3)`` array in ``(z, y, x)`` order (NaN = not measured).
    """
    names = list(fwhm_um)
    colours = method_colours(names)
    fig = _figure(9, 3.4)
    axes = fig.subplots(1, 3)
    for ax, (k, axis) in zip(axes, ((2, "x"), (1, "y"), (0, "z")), strict=True):
        for i, name in enumerate(names):
            vals = np.asarray(fwhm_um[name], dtype=float).reshape(-1, 3)[:, k]
            vals = vals[np.isfinite(vals)]
            if len(vals) == 0:
                continue
            q1, med, q3 = np.percentile(vals, [25, 50, 75])
            ax.bar(i, med, color=colours[name], yerr=[[med - q1], [q3 - med]], capsize=3)
            ax.text(i, med, f"{med:.2g}", ha="center", va="bottom", fontsize=6)
        if psf_fwhm_um is not None:
            ax.axhline(float(psf_fwhm_um[k]), color="#999999", lw=0.8, ls=":", label="PSF")
            ax.legend(fontsize=7, frameon=False)
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=7)
        ax.set_ylabel("FWHM (µm)")
        ax.set_title(f"FWHM along {axis}", fontsize=10)
    n = max((len(np.asarray(v).reshape(-1, 3)) for v in fwhm_um.values()), default=0)
    fig.suptitle(
        f"Size of small objects (median and quartiles over up to {n} objects)", fontsize=10
    )
    return _save(fig, path)


def metrics_figure(
    table: Mapping[str, Mapping[str, float]],
    columns: Sequence[tuple[str, str, bool]],
    path: str | Path,
) -> Path:
    """Draw horizontal bars of selected metrics per method.

    ``columns`` holds ``(key, label, higher_is_better)`` per metric; empty metrics are skipped.
    """
    names = list(table)
    colours = method_colours(names)
    cols = [c for c in columns if any(np.isfinite(table[n].get(c[0], np.nan)) for n in names)]
    ncols = min(4, max(1, len(cols)))
    nrows = max(1, -(-len(cols) // ncols))
    fig = _figure(2.7 * ncols + 0.6, (0.28 * len(names) + 0.9) * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[len(cols) :]:
        ax.set_axis_off()
    for k, (ax, (key, label, higher)) in enumerate(zip(axes.ravel(), cols, strict=False)):
        vals = [float(table[n].get(key, np.nan)) for n in names]
        ax.barh(range(len(names)), np.nan_to_num(vals), color=[colours[n] for n in names])
        for i, v in enumerate(vals):
            ax.text(
                v if np.isfinite(v) else 0,
                i,
                f" {v:.3g}" if np.isfinite(v) else " –",
                va="center",
                fontsize=6,
            )
        ax.set_yticks(range(len(names)), names if k % ncols == 0 else [""] * len(names), fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{label} ({'↑' if higher else '↓'} better)", fontsize=8)
        ax.tick_params(axis="x", labelsize=6)
        ax.margins(x=0.3)
    return _save(fig, path)


def psf_figure(
    psf: np.ndarray,
    voxel_size_um: Sequence[float],
    path: str | Path,
    *,
    fwhm_um: Sequence[float] | None = None,
    title: str = "PSF",
) -> Path:
    """Orthogonal views of the PSF through its centre (square-root scale) and its x/z profiles."""
    psf = np.asarray(psf, dtype=np.float32)
    centre = tuple(n // 2 for n in psf.shape)
    comp, boxes = _views.orthoview_composite(
        np.sqrt(np.clip(psf / psf.max(), 0, None)), centre, voxel_size_um, fill=np.nan
    )
    vz, _, vx = (float(v) for v in voxel_size_um)
    fig = _figure(9, 4.4)
    ax0, ax1 = fig.subplots(1, 2, width_ratios=[1.5, 1])
    ax0.imshow(np.ma.masked_invalid(comp), cmap=_CMAP, interpolation="nearest")
    ax0.set_axis_off()
    for key, (rb, cb, _, _) in boxes.items():
        ax0.text(cb + 1, rb + 1, key.upper(), color="white", fontsize=7, va="top")
    nr, nc = boxes["xy"][2:]
    bar = _nice_length(0.3 * nc * vx)
    _scale_bar(ax0, bar / vx, f"{bar:g} µm", (nr, nc))
    ax0.set_title("XY / YZ / XZ through the centre (√ scale)", fontsize=9)
    z, y, x = centre
    px = (np.arange(psf.shape[2]) - x) * vx
    pz = (np.arange(psf.shape[0]) - z) * vz
    ax1.plot(px, psf[z, y, :] / psf.max(), label="along x")
    ax1.plot(pz, psf[:, y, x] / psf.max(), label="along z")
    ax1.axhline(0.5, color="#bbbbbb", lw=0.6, ls=":")
    ax1.set_xlabel("distance from centre (µm)")
    ax1.set_ylabel("relative intensity")
    ax1.legend(fontsize=7, frameon=False)
    ax1.grid(alpha=0.25)
    if fwhm_um is not None:
        ax1.set_title(
            "FWHM z/y/x = " + " / ".join(f"{float(v):.3g}" for v in fwhm_um) + " µm", fontsize=9
        )
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
