"""QC figure for :func:`neurodecon.psf.extract_psf` (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["bead_qc_figure"]

_CODES = {
    "saturated": "S",
    "border": "B",
    "close": "C",
    "fit": "F",
    "bright": "D",
    "dim": "d",
    "shape": "W",
    "mismatch": "M",
    "residual": "R",
}


def bead_qc_figure(
    result: Any, beads: Any, path: str | os.PathLike, *, log_scale: bool = False, dpi: int = 110
) -> Path:
    """Write a PNG/PDF/SVG with orthogonal views, line profiles and a map of the beads.

    With the joint method a fourth row shows the flux per plane of the PSF (measured, with its
    standard error; the model and the hybrid when the tails were extended) on a log scale, and
    the maximum projections of the stack, of the stack re-synthesised from the fit
    (``b + Σ a_i s_i ⊛ p``) and of the residual, with the regions left out of the fit outlined.

    Parameters
    ----------
    result : BeadPSF
        Output of :func:`extract_psf`.
    beads : (Z, Y, X) ndarray, Image, path or None
        The bead stack: its maximum projection is drawn with used beads (green crop boxes) and
        rejected beads (red crosses with a reason code: S saturated, B border, C close, F fit,
        D bright/doublet, d dim, W width/shape, M mismatch). ``None`` leaves the map out.
    path : path-like
        Output file; the format follows the extension.
    log_scale : bool
        Show the kernels on a logarithmic colour scale (three decades), to see the tails.

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    joint = bool(result.qc)
    fig = Figure(figsize=(17, 13 if joint else 9.5), layout="constrained")
    grid = fig.add_gridspec(4 if joint else 3, 5, width_ratios=[1.3, 1.3, 1, 1, 1])
    stack = _as_stack(beads, result)
    if stack is not None:
        _bead_map(fig.add_subplot(grid[:3, :2]), stack, result)
    if joint:
        _flux_panel(fig.add_subplot(grid[3, :2]), result)
        _residual_panels([fig.add_subplot(grid[3, c]) for c in range(2, 5)], result)
    views = ((result.blurred_bead, "averaged bead o*"), (result.psf, "PSF, bead removed"))
    for row, (vol, label) in enumerate(views):
        _ortho(
            fig,
            [fig.add_subplot(grid[row, c]) for c in range(2, 5)],
            vol,
            result.voxel_size_um,
            label,
            log_scale,
        )
    _profiles([fig.add_subplot(grid[2, c]) for c in range(2, 5)], result)
    fig.suptitle(_title(result), fontsize=11)
    out = Path(path)
    fig.savefig(out, dpi=dpi)
    return out


def _as_stack(beads: Any, result: Any) -> np.ndarray | None:
    if beads is None:
        return None
    from ._bead_input import load_beads

    data, _, _ = load_beads(beads, result.voxel_size_um, result.info.get("channel"))
    return data


def _title(result: Any) -> str:
    counts = (
        ", ".join(
            f"{n} {r}" for r, n in sorted(result.rejection_counts.items(), key=lambda kv: -kv[1])
        )
        or "none"
    )
    f, s = result.fwhm_um, result.fwhm_spread_um
    fwhm = " / ".join(f"{a:.3f} ± {b:.3f}" for a, b in zip(f, s, strict=True))
    p = " / ".join(f"{a:.3f}" for a in result.psf_fwhm_um)
    left = "left out of the fit" if result.method == "joint" else "rejected"
    head = (
        f"{result.method} method: {result.n_used} beads used of "
        f"{result.info.get('n_detected', '?')} detected ({left}: {counts}); "
        f"PSF shape {'×'.join(str(n) for n in result.psf.shape)}"
    )
    if result.method == "joint":
        head += f", background {result.info.get('background', float('nan')):.4g}"
        hyb = result.info.get("hybrid")
        if hyb:
            head += f"; {hyb['model']} model tails beyond ±{hyb['measured_half_um']} µm"
    return (
        f"{head}\nFWHM z / y / x of o*: {fwhm} µm (± = s.d. across beads);"
        f" PSF with the {result.info.get('bead_diameter_um', '?')} µm bead removed: {p} µm"
    )


def _bead_map(ax, stack: np.ndarray, result: Any) -> None:
    mip = stack.max(axis=0).astype(np.float32)
    lo, hi = np.percentile(mip, [1, 99.9])
    shown = np.clip((mip - lo) / max(hi - lo, 1e-12), 0, 1) ** 0.5
    ax.imshow(shown, cmap="gray", interpolation="nearest")
    hy, hx = (n / 2 for n in result.blurred_bead.shape[1:])
    joint = result.method == "joint"
    if joint:
        hy = hx = max(3.0, 2 * result.fwhm_um[1] / result.voxel_size_um[1])
        left = result.qc.get("left_out_mip")
        if left is not None and left.any():
            (y0, y1), (x0, x1) = result.qc["window_zyx"][1:]
            shade = np.zeros((*mip.shape, 4))
            shade[y0:y1, x0:x1][left] = (1.0, 0.2, 0.2, 0.35)
            ax.imshow(shade, interpolation="nearest")
    for _z, y, x in result.positions:
        if joint:
            ax.add_patch(_circle((x, y), hx, "lime"))
        else:
            ax.add_patch(_box((x - hx, y - hy), 2 * hx, 2 * hy, "lime"))
    off = 0.012 * max(mip.shape)
    for (_z, y, x), reason in result.rejected:
        ax.plot(x, y, marker="x", color="red", ms=7, mew=1.5)
        ax.text(
            x + off,
            y - off,
            _CODES.get(reason, "?"),
            color="red",
            fontsize=9,
            fontweight="bold",
            clip_on=True,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "red", "alpha": 0.8},
        )
    ax.set_xlim(-0.5, mip.shape[1] - 0.5)
    ax.set_ylim(mip.shape[0] - 0.5, -0.5)
    legend = "  ".join(f"{c}={r}" for r, c in _CODES.items())
    used = "circle = bead" if joint else "box = crop window"
    red = "red = left out (shaded: data not fitted)" if joint else "red = rejected"
    ax.set_title(
        f"max projection: green = used ({result.n_used}, {used}), {red}\n{legend}",
        fontsize=9,
    )
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")


def _box(xy, width, height, color):
    from matplotlib.patches import Rectangle

    return Rectangle(xy, width, height, fill=False, color=color, lw=1.0)


def _circle(xy, radius, color):
    from matplotlib.patches import Circle

    return Circle(xy, radius, fill=False, color=color, lw=1.0)


def _flux_panel(ax, result: Any) -> None:
    """Flux per plane of the PSF (log scale): measured ± s.e., model and hybrid tails."""
    vz = result.voxel_size_um[0]
    qc = result.qc
    meas, sig = np.asarray(qc["measured_flux"]), np.asarray(qc["measured_sigma"])
    z = (np.arange(len(meas)) - len(meas) // 2) * vz
    ax.semilogy(z, np.clip(meas, 1e-12, None), "o-", ms=3, label="measured (joint fit)")
    ok = np.isfinite(sig)
    lo = np.clip(meas - sig, 1e-12, None)
    ax.fill_between(z[ok], lo[ok], (meas + sig)[ok], alpha=0.25, label="± standard error")
    hyb = qc.get("hybrid")
    if hyb:
        for key, style, label in (
            ("flux_model", "--", f"{hyb['model']} model (scaled)"),
            ("flux_hybrid", "-", "hybrid (used)"),
        ):
            f = np.asarray(hyb[key])
            f = f / max(float(np.asarray(hyb["flux_hybrid"]).sum()), 1e-30)
            zz = (np.arange(len(f)) - len(f) // 2) * vz
            ax.semilogy(zz, np.clip(f, 1e-12, None), style, label=label)
    fin = np.asarray(result.flux_per_plane)
    zf = (np.arange(len(fin)) - len(fin) // 2) * vz
    ax.semilogy(zf, np.clip(fin, 1e-12, None), "k:", lw=1, label="final PSF")
    ax.set_xlabel("z from focus (µm)", fontsize=8)
    ax.set_ylabel("fraction of the flux per plane", fontsize=8)
    ax.set_title("flux per plane: where the PSF's light goes with defocus", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)


def _residual_panels(axes, result: Any) -> None:
    """Max projections of the stack, of the re-synthesised stack, and of the residual."""
    qc = result.qc
    data, model, resid = qc["data_mip"], qc["model_mip"], qc["residual_mip"]
    lo, hi = np.percentile(data, [1, 99.9])
    for ax, img, title in (
        (axes[0], data, "stack (max projection)"),
        (axes[1], model, "re-synthesised: b + Σ aᵢ sᵢ ⊛ p"),
    ):
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    span = max(float(np.percentile(np.abs(resid), 99.9)), 1e-12)
    im = axes[2].imshow(resid, cmap="RdBu_r", vmin=-span, vmax=span, interpolation="nearest")
    left = qc.get("left_out_mip")
    if left is not None and left.any():
        axes[2].contour(left, levels=[0.5], colors="k", linewidths=0.6)
    rms = float(np.sqrt(np.mean(resid**2)))
    axes[2].set_title(f"residual (largest |y − μ| along z; rms {rms:.3g})", fontsize=9)
    for ax in axes:
        ax.tick_params(labelsize=7)
    axes[2].figure.colorbar(im, ax=axes[2], shrink=0.8)


def _ortho(fig, axes, vol: np.ndarray, vox, label: str, log_scale: bool) -> None:
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.ticker import MaxNLocator

    c = np.array(vol.shape) // 2
    vz, vy, vx = vox
    nz, ny, nx = vol.shape
    planes = (
        (
            vol[c[0]],
            (-(nx // 2) * vx, (nx - 1 - nx // 2) * vx, (ny - 1 - ny // 2) * vy, -(ny // 2) * vy),
            "XY",
            "x (µm)",
            "y (µm)",
        ),
        (
            vol[:, c[1], :],
            (-(nx // 2) * vx, (nx - 1 - nx // 2) * vx, (nz - 1 - nz // 2) * vz, -(nz // 2) * vz),
            "XZ",
            "x (µm)",
            "z (µm)",
        ),
        (
            vol[:, :, c[2]],
            (-(ny // 2) * vy, (ny - 1 - ny // 2) * vy, (nz - 1 - nz // 2) * vz, -(nz // 2) * vz),
            "YZ",
            "y (µm)",
            "z (µm)",
        ),
    )
    vmax = float(vol.max())
    norm = LogNorm(vmin=vmax * 1e-3, vmax=vmax) if log_scale else Normalize(0, vmax)
    for ax, (img, ext, name, xl, yl) in zip(axes, planes, strict=True):
        shown = np.clip(img, vmax * 1e-3, None) if log_scale else img
        im = ax.imshow(
            shown, cmap="magma", norm=norm, extent=ext, interpolation="nearest", aspect="equal"
        )
        ax.set_title(f"{label}: {name}", fontsize=9)
        ax.set_xlabel(xl, fontsize=8)
        ax.set_ylabel(yl, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(3))
        ax.yaxis.set_major_locator(MaxNLocator(5))
    fig.colorbar(
        im, ax=axes[-1], shrink=0.8, label="fraction of total" + (" (log)" if log_scale else "")
    )


def _profiles(axes, result: Any) -> None:
    names = ("z", "y", "x")
    for ax_i, (ax, name) in enumerate(zip(axes, names, strict=True)):
        for vol, label, style, fwhm in (
            (result.blurred_bead, "o*", "-", result.fwhm_um[ax_i]),
            (result.psf, "PSF", "--", result.psf_fwhm_um[ax_i]),
            (result.ideal_bead, "i*", ":", None),
        ):
            c = np.array(vol.shape) // 2
            idx = list(c)
            idx[ax_i] = slice(None)
            prof = vol[tuple(idx)]
            n = vol.shape[ax_i]
            pos = (np.arange(n) - n // 2) * result.voxel_size_um[ax_i]
            tag = f"{label} (FWHM {fwhm:.3f} µm)" if fwhm is not None else label
            ax.plot(pos, prof / max(float(prof.max()), 1e-12), style, label=tag)
        ax.axhline(0.5, color="0.7", lw=0.7)
        ax.set_title(f"profile along {name} through the centre", fontsize=9)
        ax.set_xlabel(f"{name} (µm)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper right")
