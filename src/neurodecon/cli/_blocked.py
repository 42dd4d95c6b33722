"""``neurodecon deconvolve … -o OUT.ome.zarr`` block by block (:mod:`neurodecon.blocked`)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_blocked_options", "wants_blocked", "run_blocked"]


def add_blocked_options(p: argparse.ArgumentParser) -> None:
    """Add the options of volumes larger than memory (used with an ``.ome.zarr`` output)."""
    g = p.add_argument_group(
        "volumes larger than memory (output OUT.ome.zarr; chosen automatically when the "
        "stack does not fit; classical methods and trained networks, see docs/blocked.md)"
    )
    g.add_argument("--block", nargs=3, type=int, metavar=("Z", "Y", "X"),
                   help="core of a block in voxels (default: the largest that fits; with a "
                   "network rounded up to its size multiple)")  # fmt: skip
    g.add_argument("--halo", nargs=3, type=int, metavar=("Z", "Y", "X"),
                   help="voxels read around each block (default: from the PSF; with a network "
                   "its RL_K's halo plus the network's tile context)")  # fmt: skip
    g.add_argument("--workers", type=int, metavar="N",
                   help="run blocks on a local Dask cluster of N worker processes")  # fmt: skip
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="run blocks on an existing Dask cluster (tcp://HOST:8786)")  # fmt: skip
    g.add_argument("--resume", action="store_true",
                   help="continue an interrupted run (OUT.ome.zarr.incomplete)")  # fmt: skip


def wants_blocked(args: argparse.Namespace, network: bool) -> bool:
    """Blocked when asked (--block, --halo, --workers, --scheduler, --resume) or when needed.

    Needed: an OME-Zarr output and a whole-volume run predicted not to fit in memory.
    """
    from ..blocked import whole_volume_fits
    from ..errors import user_error
    from ..learn import is_foreign_package

    asked = any(getattr(args, k) for k in ("block", "halo", "workers", "scheduler", "resume"))
    zarr_out = str(args.output).lower().rstrip("/").endswith(".zarr")
    if asked and not zarr_out:
        raise user_error(
            "--block, --halo, --workers, --scheduler and --resume write an OME-Zarr",
            path=args.output,
            fix="name the output OUT.ome.zarr",
        )
    foreign = network and is_foreign_package(args.psf_model)  # refused in blocks (one line)
    model = args.psf_model if network else None
    blocked = asked or (
        zarr_out
        and not foreign
        and not whole_volume_fits(
            args.input, args.method, voxel_size_um=args.voxel_size, model=model
        )
    )
    if blocked and (args.check or args.uncertainty or args.dtype != "float32"):
        raise user_error(
            "--check, --uncertainty and --dtype are not available for blocked runs",
            fix="drop them (a blocked run writes float32), or write a volume that fits whole",
        )
    return blocked


def run_blocked(args: argparse.Namespace, iterations, background, network: bool = False) -> int:  # noqa: ANN001
    """Resolve the PSF on the lazily opened input (or take the network), run it in blocks."""
    from .. import __version__
    from ..blocked import deconvolve_blocked
    from ..io import current_command, open_lazy
    from ..memory import format_bytes
    from ..progress import console_progress

    lazy = open_lazy(args.input, voxel_size_um=args.voxel_size)
    provenance = {"software": "neurodecon", "version": __version__, "command": current_command(),
                  "inputs": [str(args.input)]}  # fmt: skip
    common = {"voxel_size_um": lazy.voxel_size_um, "block": args.block, "halo": args.halo,
              "workers": args.workers, "scheduler": args.scheduler, "resume": args.resume,
              "overwrite": args.overwrite, "device": args.device}  # fmt: skip
    if network:
        with console_progress("Deconvolving (network, blocks)") as bar:
            run = deconvolve_blocked(args.input, args.output, model=args.psf_model, progress=bar,
                                     provenance={**provenance, "model": str(args.psf_model)},
                                     **common)  # fmt: skip
        what = f"network {args.psf_model}"
    else:
        run = _run_classical_blocked(args, lazy, iterations, background, provenance, common)
        what = f"{args.method}, {run.parameters['iterations']} iterations"
    skipped = f", {run.blocks_skipped} resumed" if run.blocks_skipped else ""
    print(
        f"wrote {Path(run.output)} ({what}, "
        f"{len(run.plan.blocks)} blocks of {'×'.join(map(str, run.plan.core))}{skipped}, "
        f"~{format_bytes(run.memory_per_block_bytes)} per block, {run.levels} levels, "
        f"{run.seconds:.1f} s)"
    )
    return 0


def _run_classical_blocked(args, lazy, iterations, background, provenance, common):  # noqa: ANN001, ANN202
    """Resolve the PSF for the lazily opened input and deconvolve it block by block."""
    from ..blocked import deconvolve_blocked
    from ..progress import console_progress
    from ..psf import resolve_psf
    from ._common import psf_sources

    with console_progress("PSF") as bar:
        resolved = resolve_psf(
            image_shape=lazy.spatial_shape,
            image_voxel_size_um=lazy.voxel_size_um,
            progress=bar,
            **psf_sources(args),
        )
    if args.psf_out:
        from ..io import Image, write

        psf_image = Image(data=resolved.psf, voxel_size_um=resolved.voxel_size_um, axes="ZYX")
        write(args.psf_out, psf_image, overwrite=args.overwrite, inputs=[args.input])
    with console_progress(f"Deconvolving ({args.method}, blocks)") as bar:
        return deconvolve_blocked(
            args.input,
            args.output,
            resolved.psf,
            args.method,
            iterations=iterations,
            background=background,
            regularization=args.regularization,
            boundary=args.boundary,
            initial=args.initial,
            background_mode=args.background_mode,
            progress=bar,
            provenance={**provenance, "psf": resolved.description},
            **common,
        )
