"""``neurodecon deconvolve``: a classical method with a PSF (file, beads or model), or a network."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from ._blocked import add_blocked_options, run_blocked, wants_blocked
from ._check import add_check_option, check_sidecars, model_kernel, run_check, uncertainty_path
from ._common import (
    PSF_MODELS,
    add_device,
    add_output_options,
    add_psf_source_options,
    add_voxel_size,
    psf_sources,
    write_output,
)

__all__ = ["register"]


def register(sub: argparse._SubParsersAction, psf_sub: argparse._SubParsersAction) -> None:
    """Add ``deconvolve``."""
    from ..classical import BOUNDARIES, METHODS

    p = sub.add_parser(
        "deconvolve",
        help="deconvolve a stack with a PSF (classical methods) or a trained model",
        description="Deconvolve INPUT with a measured PSF (--psf FILE), a PSF extracted from a "
        "bead stack (--beads FILE --bead-diameter UM), a theoretical PSF (--model "
        "gaussian|widefield|gibson-lanni|confocal|two-photon and its options) or a trained "
        "NeuroDecon network (--model MODEL_DIR, or --model default).",
    )
    p.add_argument("input", metavar="INPUT", help="image file (TIFF, OME-TIFF, OME-Zarr, .npy)")
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
        "--initial",
        default="flat",
        choices=("flat", "data"),
        help="start of the iterations: flat (default: the data's mean) or data (the data above "
        "the background, as cudaDecon: less haze after few iterations)",
    )
    p.add_argument(
        "--background-mode",
        default="model",
        choices=("model", "subtract"),
        help="model (default): the background stays in the Poisson model; subtract: "
        "max(data - background, 0) is deconvolved, as cudaDecon does",
    )
    p.add_argument(
        "--boundary",
        default="unknown",
        choices=BOUNDARIES,
        help="unknown (default, no edge artefacts), reflect or periodic",
    )
    add_voxel_size(p)
    add_psf_source_options(p)
    _accept_model_directories(p)
    p.add_argument(
        "--psf-out", default=None, metavar="FILE", help="also write the PSF that was used"
    )
    add_device(p)
    add_check_option(p)
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file")
    add_output_options(p)
    add_blocked_options(p)
    p.set_defaults(func=_deconvolve)


def _accept_model_directories(p: argparse.ArgumentParser) -> None:
    """Let ``--model`` also name a trained network directory (or ``default``)."""
    for action in p._actions:
        if "--model" in action.option_strings:
            action.choices = None
            action.metavar = "MODEL"
            action.help = (
                f"PSF model ({', '.join(PSF_MODELS)}), a trained network directory "
                "('default' = the model shipped with NeuroDecon) or a bioimage.io package (.zip)"
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
    from ..io import check_image, read

    iterations = parse_iterations(args.iterations)  # option errors first, before any reading
    background = _background(args.background)
    _check_outputs(args)
    network = args.psf_model is not None and args.psf_model not in PSF_MODELS
    if wants_blocked(args, network):  # an OME-Zarr written block by block, never whole
        return run_blocked(args, iterations, background, network)
    image = read(args.input, voxel_size_um=args.voxel_size)
    check_image(image, args.input)  # a constant image is readable, but not deconvolvable
    if network:
        return _run_network(args, image)
    return _run_classical(args, image, iterations, background)


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse an existing output, one that names an input, or an unwritable folder, first."""
    from ..errors import user_error
    from ..io import check_output_path

    inputs = [args.input, args.psf, args.beads]
    for out in (args.output, args.psf_out):
        if out is None:
            continue
        if any(i is not None and Path(i).resolve() == Path(out).resolve() for i in inputs):
            raise user_error(
                "refusing to overwrite an input file", path=out, fix="choose another output name"
            )
        if Path(out).exists() and not args.overwrite:
            raise user_error(
                "output exists", path=out, fix="pass --overwrite or choose another name"
            )
        check_output_path(out, [i for i in inputs if i is not None], args.overwrite)  # folder
    network = args.psf_model is not None and args.psf_model not in PSF_MODELS
    if network and (args.psf is not None or args.beads is not None):
        raise user_error("give either a PSF (--psf, --beads) or a trained --model, not both")
    if args.uncertainty and not network:
        raise user_error(
            "--uncertainty needs a trained network (--model MODEL_DIR or default)",
            fix="drop --uncertainty, or deconvolve with --model",
        )
    check_sidecars(args)


def _run_classical(args: argparse.Namespace, image, iterations, background) -> int:
    from ..classical import deconvolve
    from ..progress import console_progress
    from ..psf import resolve_psf

    with console_progress("PSF") as bar:
        resolved = resolve_psf(
            image_shape=image.spatial_shape,
            image_voxel_size_um=image.voxel_size_um,
            progress=bar,
            **psf_sources(args),
        )
    with console_progress(f"Deconvolving ({args.method})") as bar:
        run = deconvolve(
            image.data,
            resolved.psf,
            method=args.method,
            iterations=iterations,
            regularization=args.regularization,
            background=background,
            boundary=args.boundary,
            device=args.device,
            progress=bar,
            initial=args.initial,
            background_mode=args.background_mode,
            return_result=True,
        )
    result = run.data
    params = {
        **run.parameters(),
        "iterations_requested": args.iterations,
        "background_requested": args.background,
        "psf": resolved.description,
        "psf_record": resolved.record,
        "psf_shape": list(resolved.psf.shape),
    }
    if args.psf_out:
        from ..io import Image

        psf_image = Image(data=resolved.psf, voxel_size_um=resolved.voxel_size_um, axes="ZYX")
        write_output(args, args.psf_out, psf_image, inputs=_inputs(args), parameters=params)
    written = write_output(
        args, args.output, image.with_data(result), inputs=_inputs(args), parameters=params
    )
    used = "" if run.iterations is None else f", {run.iterations} iterations"
    if args.iterations == "auto" and run.iterations is not None:
        used += " (auto)"
    print(f"wrote {written} ({args.method}{used}, {result.shape}, {result.dtype})")
    if args.check:
        run_check(args, image, result, resolved.psf, resolved.description)
    return 0


def _inputs(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(str(p) for p in (args.input, args.psf, args.beads) if p is not None)


def _run_network(args: argparse.Namespace, image) -> int:
    from ..learn import augmentations, is_foreign_package, load_model, predict, predict_with_spread
    from ..progress import console_progress

    if is_foreign_package(args.psf_model):
        return _run_foreign(args, image)
    model = load_model(args.psf_model)
    kw = {"voxel_size_um": image.voxel_size_um, "device": args.device}
    spread: np.ndarray | None = None
    with console_progress("Deconvolving (network)") as bar:
        if args.uncertainty:
            result, spread = predict_with_spread(model, image.data, progress=bar, **kw)
        else:
            result = predict(model, image.data, progress=bar, **kw)
    params: dict = {"model": str(args.psf_model)}
    if spread is not None:
        params["test_time_augmentation"] = [list(a) for a in augmentations(model)]
    written = write_output(
        args, args.output, image.with_data(result), inputs=(str(args.input),), parameters=params
    )
    print(f"wrote {written} (network {args.psf_model}, {result.shape}, {result.dtype})")
    if spread is not None:
        upath = uncertainty_path(args.output)
        spread_image = image.with_data(spread)
        write_output(args, upath, spread_image, inputs=(str(written),), parameters=params)
        print(f"wrote {upath} (spread over {len(augmentations(model))} flips)")
    if args.check:
        kernel = model_kernel(model, image)
        if kernel is not None:
            run_check(args, image, result, kernel, f"the kernel of model {args.psf_model}")
    return 0


def _run_foreign(args: argparse.Namespace, image) -> int:
    """Run a bioimage.io package made elsewhere with its own pipeline (bioimageio.core)."""
    from ..errors import user_error
    from ..learn import predict_bioimageio
    from ..progress import console_progress

    if args.check or args.uncertainty:
        raise user_error(
            "--check and --uncertainty need a NeuroDecon model (a bioimage.io package made "
            "elsewhere records no kernel and no flips)",
            path=args.psf_model,
            fix="drop them; check the result with `neurodecon evaluate OUT --raw IN --psf PSF`",
        )
    with console_progress("Deconvolving (bioimage.io model)") as bar:
        result = predict_bioimageio(args.psf_model, image, device=args.device, progress=bar)
    params = {"model": str(args.psf_model), "runner": "bioimageio.core"}
    written = write_output(
        args, args.output, image.with_data(result), inputs=(str(args.input),), parameters=params
    )
    print(f"wrote {written} (bioimage.io model {args.psf_model}, {result.shape}, {result.dtype})")
    return 0
