"""``neurodecon simulate``: phantom → PSF blur → camera noise, written as truth/image/psf."""

from __future__ import annotations

import argparse

from ._common import add_psf_model_options, has_psf_model, psf_params

__all__ = ["register"]


def register(sub: argparse._SubParsersAction, psf_sub: argparse._SubParsersAction) -> None:
    """Add ``simulate``."""
    from ..synth import PHANTOMS

    p = sub.add_parser(
        "simulate",
        help="make a synthetic ground truth, blur it with a PSF and add camera noise",
        description="Write truth.tif, image.tif, psf.tif (with voxel sizes) and simulation.json "
        "into a folder. Phantom families: " + ", ".join(PHANTOMS) + ".",
    )
    p.add_argument(
        "--phantom",
        required=True,
        metavar="NAME[,NAME...]",
        help=f"phantom families, comma-separated: {', '.join(PHANTOMS)}",
    )
    p.add_argument(
        "--shape", nargs=3, type=int, metavar=("Z", "Y", "X"), required=True, help="volume shape"
    )
    p.add_argument(
        "--voxel-size",
        nargs=3,
        type=float,
        metavar=("Z", "Y", "X"),
        required=True,
        help="voxel size in µm",
    )
    p.add_argument("--psf", default=None, help="PSF file (otherwise give a model with --model)")
    add_psf_model_options(p)
    p.add_argument(
        "--photons",
        type=float,
        default=1000.0,
        help="expected photons at the brightest truth voxel (default 1000)",
    )
    p.add_argument("--no-poisson", action="store_true", help="no photon noise (blur only)")
    p.add_argument("--background", type=float, default=0.0, help="background photons per voxel")
    p.add_argument("--read-noise", type=float, default=0.0, help="camera read noise σ (electrons)")
    p.add_argument("--offset", type=float, default=0.0, help="camera offset added to every voxel")
    p.add_argument(
        "--gain", type=float, default=1.0, help="camera counts per photo-electron (default 1)"
    )
    p.add_argument("--density", type=float, default=1.0, help="phantom density multiplier")
    p.add_argument(
        "--margin",
        type=int,
        default=None,
        help="voxels drawn beyond each side so outside light enters (default: half the PSF)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    p.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import user_error
    from ..synth import simulate

    out = Path(args.output)
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise user_error(
            "output folder is not empty", path=out, fix="choose a new folder or pass --overwrite"
        )
    vox = tuple(args.voxel_size)
    psf = None
    if args.psf is not None:
        from ..io import read
        from ..psf import prepare_psf

        img = read(args.psf, check=False)
        psf = prepare_psf(
            img.data,
            image_shape=tuple(args.shape),
            psf_voxel_size_um=None if img.voxel_size_assumed else img.voxel_size_um,
            image_voxel_size_um=vox,
            path=args.psf,
        )
    elif not has_psf_model(args):
        raise user_error(
            "no PSF given", fix="pass --psf FILE, or a model with --model and its options"
        )
    sim = simulate(
        args.phantom,
        shape=tuple(args.shape),
        voxel_size_um=vox,
        psf=psf,
        psf_model=None if psf is not None else args.psf_model,
        psf_params=None if psf is not None else psf_params(args),
        psf_shape=tuple(args.psf_shape) if args.psf_shape else None,
        photons=None if args.no_poisson else args.photons,
        background=args.background,
        read_noise=args.read_noise,
        offset=args.offset,
        gain=args.gain,
        seed=args.seed,
        margin_px=args.margin,
        density=args.density,
        output_dir=out,
        overwrite=args.overwrite,
        psf_source=args.psf,
    )
    print(
        f"wrote {out}/truth.tif, image.tif, psf.tif, simulation.json "
        f"({tuple(args.shape)} voxels of {vox} µm; PSF {tuple(sim.psf.shape)})"
    )
    return 0
