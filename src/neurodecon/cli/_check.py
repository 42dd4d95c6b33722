"""``--check`` of ``deconvolve`` and ``--raw`` of ``evaluate``: the result against its raw data.

A thin layer over :func:`neurodecon.metrics.consistency` (docs/metrics.md).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("neurodecon")

_SUFFIXES = (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".zarr", ".npy")


def add_check_option(p: argparse.ArgumentParser) -> None:
    """Add ``--check`` to ``deconvolve``."""
    p.add_argument(
        "--check",
        action="store_true",
        help="check the result against INPUT: blurred again by the PSF (a model's: the kernel it "
        "was trained to invert) it must reproduce INPUT within its noise. Writes OUT's "
        "consistency map (OUT_consistency.tif, in noise standard deviations; negative = light "
        "the data lack) and scores (OUT_consistency.json); warns when more than 5 %% of the "
        "volume is flagged (metrics.FLAGGED_LIMIT)",
    )

    p.add_argument(
        "--uncertainty",
        action="store_true",
        help="with a trained --model: predict on every flip of INPUT the model is symmetric "
        "for (4 passes for y and x), write their mean as OUT and their per-voxel standard "
        "deviation as OUT_uncertainty.tif (intensity units; high where the answer depends on "
        "the orientation of the data)",
    )


def _stem(output: str | Path) -> tuple[Path, str]:
    out = Path(output)
    name = out.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return out, name


def sidecars(output: str | Path) -> tuple[Path, Path]:
    """Return the map and JSON paths that ``--check`` writes next to ``output``."""
    out, name = _stem(output)
    return out.with_name(name + "_consistency.tif"), out.with_name(name + "_consistency.json")


def uncertainty_path(output: str | Path) -> Path:
    """Return the spread map's path that ``--uncertainty`` writes next to ``output``."""
    out, name = _stem(output)
    return out.with_name(name + "_uncertainty.tif")


def run_check(
    args: argparse.Namespace, image: Any, result: np.ndarray, psf: np.ndarray, what: str
) -> None:
    """Compute the check for ``deconvolve --check``, write the sidecars, print one line."""
    from ..io import write, write_json
    from ..metrics import consistency

    if image.data.ndim != 3:
        log.warning(f"--check needs one 3D stack (got axes {image.axes}); not checked")
        return
    c = consistency(image.data, result, psf)
    map_path, json_path = sidecars(args.output)
    write(  # float32 whatever --dtype says: the map is signed
        map_path,
        image.with_data(c.map),
        overwrite=args.overwrite,
        inputs=(str(args.input), str(args.output)),
        provenance={"parameters": {"consistency": c.to_dict(), "kernel": what}},
    )
    write_json(json_path, {**c.to_dict(), "kernel": what}, overwrite=args.overwrite)
    print(summary(c) + f"; map {map_path}")
    if not c.consistent:
        log.warning(
            f"the result is not consistent with {args.input} on "
            f"{100 * c.flagged_fraction:.1f} % of the volume (invented "
            f"{100 * c.invented_fraction:.1f} %, missing {100 * c.missing_fraction:.1f} %): "
            f"see {map_path}"
        )


def check_sidecars(args: argparse.Namespace) -> None:
    """Refuse existing ``--check``/``--uncertainty`` sidecars before any work (or --overwrite)."""
    from ..errors import user_error

    paths = list(sidecars(args.output)) if getattr(args, "check", False) else []
    if getattr(args, "uncertainty", False):
        paths.append(uncertainty_path(args.output))
    for path in paths:
        if path.exists() and not args.overwrite:
            raise user_error(
                "output exists", path=path, fix="pass --overwrite or choose another name"
            )


def model_kernel(model: Any, image: Any) -> np.ndarray | None:
    """Return the kernel a model was trained to invert, on the image's grid (or None, warned)."""
    kernel = model.kernel_for(image.spatial_shape, image.voxel_size_um)
    if kernel is None:
        log.warning("--check: this model folder has no PSF (trained before it was saved)")
    return kernel


def summary(c: Any) -> str:
    """One line: the score against its noise expectation and the flagged share."""
    return (
        f"consistency with the raw data: χ² {c.score:.2f} (noise alone: {c.expected:.0f}), "
        f"flagged {100 * c.flagged_fraction:.2f} % (invented {100 * c.invented_fraction:.2f} %, "
        f"missing {100 * c.missing_fraction:.2f} %)"
    )
