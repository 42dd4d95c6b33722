"""The report's data-consistency column and figure (:func:`neurodecon.metrics.consistency`).

Every volume (each method's result, and the raw input and the truth as anchors) is blurred again
by the kernel it should be consistent with — the classical methods' PSF, a model's own training
kernel — and compared with the raw input within its noise. The numbers join the volume's metrics
(``consistency_chi2``, ``consistency_flagged_pct``, ``consistency_invented_pct``,
``consistency_missing_pct``); the maps are drawn side by side.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CONSISTENCY_KEYS",
    "measure_consistency",
    "consistency_figure",
    "uncertainty_figure",
    "inconsistent",
]

log = logging.getLogger("neurodecon")

#: metric key -> label (tables, figures)
CONSISTENCY_KEYS = {
    "consistency_chi2": "χ² vs raw (1 = noise)",
    "consistency_flagged_pct": "inconsistent (% of volume)",
    "consistency_invented_pct": "invented (% of volume)",
    "consistency_missing_pct": "missing (% of volume)",
}


def measure_consistency(
    raw: np.ndarray, vols: Mapping[str, np.ndarray], kernels: Mapping[str, np.ndarray | None]
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Return ``(rows, maps)``: the consistency numbers and map of each volume that has a kernel."""
    from ..metrics import consistency

    rows: dict[str, dict[str, float]] = {}
    maps: dict[str, np.ndarray] = {}
    for name, vol in vols.items():
        kernel = kernels.get(name)
        if kernel is None:
            continue
        try:
            c = consistency(raw, vol, kernel)
        except Exception as exc:  # one volume's check never stops the report
            log.warning("consistency check of %s failed: %s", name, exc)
            continue
        rows[name] = {
            "consistency_chi2": c.score,
            "consistency_flagged_pct": 100 * c.flagged_fraction,
            "consistency_invented_pct": 100 * c.invented_fraction,
            "consistency_missing_pct": 100 * c.missing_fraction,
        }
        maps[name] = c.map
    return rows, maps


def inconsistent(metrics: Mapping[str, Any]) -> bool:
    """Tell whether a volume's check flagged more of it than ``metrics.FLAGGED_LIMIT`` (5 %)."""
    from ..metrics import FLAGGED_LIMIT

    v = metrics.get("consistency_flagged_pct")
    return v is not None and np.isfinite(v) and v > 100 * FLAGGED_LIMIT


def consistency_figure(
    maps: Mapping[str, np.ndarray],
    metrics: Mapping[str, Mapping[str, float]],
    point: tuple[int, int, int],
    path: str | Path,
) -> Path:
    """Draw each map's XY plane through ``point`` on one symmetric colour scale (σ)."""
    from ._figures import _figure, _save

    names = list(maps)
    lim = max(6.0, max(float(np.abs(m[point[0]]).max()) for m in maps.values()))
    ncols = min(4, len(names))
    nrows = -(-len(names) // ncols)
    fig = _figure(3.0 * ncols + 0.8, 3.0 * nrows + 0.3)
    axes = np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False))
    im = None
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, name in zip(axes.ravel(), names, strict=False):
        im = ax.imshow(maps[name][point[0]], cmap="RdBu", vmin=-lim, vmax=lim)
        m = metrics.get(name, {})
        ax.set_title(
            f"{name}: χ² {m.get('consistency_chi2', np.nan):.2f}, "
            f"{m.get('consistency_flagged_pct', np.nan):.2f} % flagged",
            fontsize=8,
        )
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="residual (noise σ)")
    return _save(fig, path)


def uncertainty_figure(
    spreads: Mapping[str, np.ndarray],
    volumes: Mapping[str, np.ndarray],
    ratios: Mapping[str, float],
    point: tuple[int, int, int],
    path: str | Path,
) -> Path:
    """Draw each network's result and its flip spread, XY plane through ``point``.

    One row per network; the spread on the result's own intensity scale, titled with its mean
    over the signal's (``ratios``: the method's ``flip_spread_over_signal``).
    """
    from ._figures import _figure, _save

    names = list(spreads)
    fig = _figure(6.4, 3.0 * len(names) + 0.3)
    axes = np.atleast_2d(fig.subplots(len(names), 2, squeeze=False))
    for (ax_v, ax_s), name in zip(axes, names, strict=True):
        plane, spread = volumes[name][point[0]], spreads[name][point[0]]
        top = max(float(np.percentile(plane, 99.9)), 1e-12)
        ax_v.imshow(plane, cmap="gray", vmin=0, vmax=top)
        im = ax_s.imshow(spread, cmap="magma", vmin=0, vmax=0.25 * top)
        ax_v.set_title(f"{name}: mean of the flips", fontsize=8)
        ax_s.set_title(f"flip spread (mean {ratios[name]:.3f} of the signal)", fontsize=8)
        fig.colorbar(im, ax=ax_s, shrink=0.8, label="std (intensity)")
        ax_v.set_axis_off()
        ax_s.set_axis_off()
    return _save(fig, path)
