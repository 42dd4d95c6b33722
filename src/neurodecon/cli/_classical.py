"""``neurodecon deconvolve``: classical methods with a PSF file or model, or a trained network."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import (
    PSF_MODELS,
    add_device,
    add_output_options,
    add_psf_model_options,
    add_voxel_size,
    psf_from_args,
    write_output,
)

__all__ = ["register"]


def register(sub: argparse._SubParsersAction, psf_sub: argparse._SubParsersAction) -> None:
    """Add ``deconvolve``."""
    from ..classical import BOUNDARIES, METHODS

    p = sub.add_parser(
        "deconvolve",
        help="deconvolve a stack with a PSF (classical methods) or a trained model",
        description="Deconvolve INPUT with a measured PSF (--psf FILE), a theoretical PSF "
        "(--model gaussian|widefield|gibson-lanni|confocal|two-photon and its options) or a "
        "trained NeuroDecon network (--model MODEL_DIR, or --model default).",
    )
    p.add_argument("input", metavar="INPUT", help="image file (TIFF, OME-TIFF, OME-Zarr, .npy)")
    p.add_argument(
        "--psf", default=None, metavar="PSF", help="PSF file (centre at n//2, any scale)"
    )
    p.add_argument(
        "--psf-voxel-size",
        nargs=3,
        type=float,
        metavar=("Z", "Y", "X"),
        default=None,
        help="voxel size of the PSF file in µm (default: its metadata; resampled to the image's)",
    )
    p.add_argument(
        "--method",
        default="rl",
        choices=METHODS,
        help="classical method (default rl; ignored with a trained model)",
    )
    p.add_argument(
        "--iterations",
        default="50",
        metavar="N|auto",
        help="iterations of an iterative method, or 'auto' (default 50)",
    )
    p.add_argument(
        "--regularization",
        type=float,
        default=None,
        metavar="LAMBDA",
        help="method parameter (ε, λ or the Wiener noise multiplier; default per method)",
    )
    p.add_argument(
        "--background",
        default="0",
        metavar="B|auto",
        help="background / camera offset in image units, or 'auto' (default 0)",
    )
    p.add_argument(
        "--boundary",
        default="unknown",
        choices=BOUNDARIES,
        help="unknown (default, no edge artefacts), reflect or periodic",
    )
    add_voxel_size(p)
    add_psf_model_options(p)
    _accept_model_directories(p)
    add_device(p)
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file")
    add_output_options(p)
    p.set_defaults(func=_deconvolve)


def _accept_model_directories(p: argparse.ArgumentParser) -> None:
    """Let ``--model`` also name a trained network directory (or ``default``)."""
    for action in p._actions:
        if "--model" in action.option_strings:
            action.choices = None
            action.metavar = "MODEL"
            action.help = (
                f"PSF model ({', '.join(PSF_MODELS)}) or a trained network directory "
                "('default' = the model shipped with NeuroDecon)"
            )


def _background(text: str) -> float | str:
    from ..errors import user_error

    if text.lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise user_error(f"--background must be a number or 'auto', not {text!r}") from None


def _deconvolve(args: argparse.Namespace) -> int:
    from ..classical import parse_iterations
    from ..errors import user_error
    from ..io import read
    from ..progress import console_progress

    iterations = parse_iterations(args.iterations)  # option errors first, before any reading
    background = _background(args.background)
    image = read(args.input, voxel_size_um=args.voxel_size)
    out_path = Path(args.output)
    if out_path.exists() and not args.overwrite:
        raise user_error(
            "output exists", path=out_path, fix="pass --overwrite or choose another name"
        )
    spatial = tuple(image.data.shape[-3:]) if image.data.ndim >= 3 else tuple(image.data.shape)
    model = args.psf_model
    if model is not None and model not in PSF_MODELS:
        if args.psf is not None:
            raise user_error("give either --psf or a trained --model, not both")
        return _run_network(args, image, out_path, model)
    if args.psf is not None:
        if model is not None:
            raise user_error("give either --psf FILE or a PSF --model, not both")
        psf_img = read(args.psf, voxel_size_um=args.psf_voxel_size, check=False)
        from ..psf import prepare_psf

        psf = prepare_psf(
            psf_img.data,
            image_shape=spatial,
            psf_voxel_size_um=None if psf_img.voxel_size_assumed else psf_img.voxel_size_um,
            image_voxel_size_um=image.voxel_size_um,
            path=args.psf,
        )
        psf_source = str(args.psf)
    else:
        psf = psf_from_args(args, shape=_psf_shape(spatial), voxel_size_um=image.voxel_size_um)
        psf_source = f"model {model}"
    from ..classical import deconvolve

    with console_progress(f"Deconvolving ({args.method})") as bar:
        result = deconvolve(
            image.data,
            psf,
            args.method,
            iterations=iterations,
            regularization=args.regularization,
            background=background,
            boundary=args.boundary,
            device=args.device,
            progress=bar,
        )
    params = {
        "method": args.method,
        "iterations": args.iterations,
        "regularization": args.regularization,
        "background": args.background,
        "boundary": args.boundary,
        "psf": psf_source,
        "psf_shape": list(psf.shape),
    }
    written = write_output(
        args, out_path, image.with_data(result), inputs=_inputs(args), parameters=params
    )
    print(f"wrote {written} ({args.method}, {result.shape}, {result.dtype})")
    return 0


def _psf_shape(spatial: tuple[int, ...]) -> tuple[int, ...]:
    """Default theoretical PSF shape: odd, at most the image (+1), at most 65 voxels per axis."""
    return tuple(min(65, n + (1 - n % 2)) for n in spatial)


def _inputs(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(str(p) for p in (args.input, args.psf) if p is not None)


def _run_network(args: argparse.Namespace, image, out_path: Path, model_dir: str) -> int:
    from ..learn import load_model, predict
    from ..progress import console_progress

    model = load_model(model_dir)
    with console_progress("Deconvolving (network)") as bar:
        result = predict(
            model, image.data, voxel_size_um=image.voxel_size_um, device=args.device, progress=bar
        )
    params = {"model": str(model_dir)}
    written = write_output(
        args, out_path, image.with_data(result), inputs=(str(args.input),), parameters=params
    )
    print(f"wrote {written} (network {model_dir}, {result.shape}, {result.dtype})")
    return 0
