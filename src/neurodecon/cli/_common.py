"""Options and helpers shared by several commands (voxel size, output policy, device, PSF model)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from ..jsonutil import json_default

__all__ = [
    "check_options",
    "add_psf_source_options",
    "psf_sources",
    "add_voxel_size",
    "add_output_options",
    "add_device",
    "add_psf_model_options",
    "write_output",
    "print_json",
    "has_psf_model",
]

PSF_MODELS = ("gaussian", "widefield", "gibson-lanni", "confocal", "two-photon")


def add_voxel_size(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--voxel-size",
        nargs=3,
        type=float,
        metavar=("Z", "Y", "X"),
        default=None,
        help="voxel size in µm; overrides the file's metadata",
    )


def add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dtype",
        choices=("float32", "uint16"),
        default="float32",
        help="output pixel type; uint16 scales linearly and records the scaling (default float32)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device", default="auto", help="auto | cpu | cuda (default auto: CUDA when present)"
    )


def add_psf_model_options(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    """Add the theoretical PSF options (psf generate, simulate, deconvolve, compare, train)."""
    g = p.add_argument_group("theoretical PSF model")
    g.add_argument(
        "--model", dest="psf_model", choices=PSF_MODELS, required=required, help="PSF model"
    )
    g.add_argument("--na", type=float, default=1.4, help="numerical aperture (default 1.4)")
    g.add_argument(
        "--wavelength", type=float, default=0.52, help="emission wavelength in µm (default 0.52)"
    )
    g.add_argument(
        "--excitation-wavelength",
        type=float,
        default=None,
        help="excitation wavelength in µm (confocal, two-photon)",
    )
    g.add_argument(
        "--immersion-index",
        type=float,
        default=1.515,
        help="immersion refractive index (default 1.515)",
    )
    g.add_argument(
        "--sample-index",
        type=float,
        default=None,
        help="sample refractive index (Gibson–Lanni; default = immersion index)",
    )
    g.add_argument(
        "--depth", type=float, default=0.0, help="depth below the coverslip in µm (Gibson–Lanni)"
    )
    g.add_argument(
        "--pinhole", type=float, default=1.0, help="confocal pinhole in Airy units (default 1)"
    )
    g.add_argument(
        "--spherical-aberration",
        type=float,
        default=0.0,
        metavar="WAVES",
        help="primary spherical aberration in waves (widefield, confocal, two-photon; default 0)",
    )
    g.add_argument(
        "--fwhm",
        nargs=3,
        type=float,
        metavar=("Z", "Y", "X"),
        default=None,
        help="Gaussian model: FWHM in µm",
    )
    g.add_argument(
        "--psf-shape",
        nargs=3,
        type=int,
        metavar=("Z", "Y", "X"),
        default=None,
        help="PSF array shape (default: chosen from the optics and the image)",
    )


def add_psf_source_options(p: argparse.ArgumentParser) -> None:
    """Add the PSF sources shared by deconvolve, compare and train: file, beads or a model."""
    g = p.add_argument_group("PSF source (one of --psf, --beads, --model)")
    g.add_argument("--psf", default=None, metavar="PSF", help="PSF file (any scale, any centre)")
    g.add_argument(
        "--psf-voxel-size",
        nargs=3,
        type=float,
        metavar=("Z", "Y", "X"),
        default=None,
        help="voxel size of the PSF file in µm (default: its metadata, else the image's)",
    )
    g.add_argument(
        "--psf-background",
        default="auto",
        metavar="B|auto|none",
        help="camera offset of a measured PSF file: auto (default) detects an offset or noise "
        "and removes it with the noise outside the PSF's support; a number is subtracted; none "
        "uses the file as it is",
    )
    g.add_argument(
        "--beads", default=None, metavar="BEADS", help="bead stack to extract the PSF from"
    )
    g.add_argument(
        "--bead-diameter",
        type=float,
        default=None,
        metavar="UM",
        help="bead diameter in µm (required with --beads)",
    )
    g.add_argument(
        "--beads-voxel-size",
        nargs=3,
        type=float,
        metavar=("Z", "Y", "X"),
        default=None,
        help="voxel size of the bead stack in µm (default: its metadata)",
    )
    add_psf_model_options(p)


def has_psf_model(args: argparse.Namespace) -> bool:
    """Tell whether the command line names a theoretical PSF model."""
    return getattr(args, "psf_model", None) in PSF_MODELS


def psf_params(args: argparse.Namespace) -> dict[str, Any]:
    """Return the keyword arguments of :func:`neurodecon.psf.make_psf` given on the command line."""
    params: dict[str, Any] = {
        "na": args.na,
        "wavelength_um": args.wavelength,
        "immersion_index": args.immersion_index,
    }
    if args.excitation_wavelength is not None:
        params["excitation_wavelength_um"] = args.excitation_wavelength
    if args.sample_index is not None:
        params["sample_index"] = args.sample_index
    if args.depth:
        params["depth_um"] = args.depth
    if args.psf_model == "confocal":
        params["pinhole_au"] = args.pinhole
    if args.fwhm is not None:
        params["fwhm_um"] = tuple(args.fwhm)
    if getattr(args, "spherical_aberration", 0.0):
        params["spherical_waves"] = args.spherical_aberration
    return params


def _psf_background(text: str | None) -> float | str | None:
    from ..errors import user_error

    value = "auto" if text is None else str(text).strip().lower()
    if value in ("auto", "none"):
        return None if value == "none" else "auto"
    try:
        return float(value)
    except ValueError:
        raise user_error(f"--psf-background must be a number, auto or none, not {text!r}") from None


def psf_sources(args: argparse.Namespace) -> dict[str, Any]:
    """Return the PSF source the options name, as keyword arguments of ``resolve_psf``."""
    model = args.psf_model if has_psf_model(args) else None
    return {
        "psf": getattr(args, "psf", None),
        "psf_voxel_size_um": getattr(args, "psf_voxel_size", None),
        "psf_background": _psf_background(getattr(args, "psf_background", "auto")),
        "beads": getattr(args, "beads", None),
        "bead_diameter_um": getattr(args, "bead_diameter", None),
        "beads_voxel_size_um": getattr(args, "beads_voxel_size", None),
        "model": model,
        "optics": psf_params(args) if model else None,
        "shape": tuple(args.psf_shape) if model and args.psf_shape else None,
    }


def write_output(
    args: argparse.Namespace,
    path: str | Path,
    image,
    *,
    inputs=(),
    parameters: dict[str, Any] | None = None,
) -> Path:
    """Write with the shared output policy (``--dtype``, ``--overwrite``, provenance)."""
    from ..io import write

    return write(
        path,
        image,
        dtype=getattr(args, "dtype", "float32"),
        overwrite=getattr(args, "overwrite", False),
        inputs=inputs,
        provenance={"parameters": parameters or {}},
    )


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=json_default))


#: Options whose values must be positive: destination → what the value is (for the fix). Voxel
#: sizes are checked where they are read, with the file's name.
_POSITIVE = {
    "bead_diameter": "the bead diameter in µm, e.g. 0.1 for 100 nm beads",
    "na": "the numerical aperture, e.g. 1.4",
    "wavelength": "the emission wavelength in µm, e.g. 0.52",
    "excitation_wavelength": "the excitation wavelength in µm, e.g. 0.488",
    "immersion_index": "the immersion refractive index, e.g. 1.515",
    "sample_index": "the sample refractive index, e.g. 1.33",
    "fwhm": "the FWHM Z Y X in µm",
    "shape": "a shape Z Y X in voxels",
    "psf_shape": "a PSF shape Z Y X in voxels",
    "size": "a shape Z Y X in voxels",
    "threshold": "a detection threshold in noise standard deviations, e.g. 8",
    "photons": "the photons at the brightest voxel, e.g. 1000",
    "density": "a density multiplier, e.g. 1",
}
#: Options whose values must not be negative.
_NON_NEGATIVE = {
    "depth": "a depth in µm",
    "pinhole": "a pinhole size in Airy units, e.g. 1",
    "regularization": "a regularization ≥ 0, or leave it out for the method's default",
    "read_noise": "a read noise σ ≥ 0",
    "margin": "a margin in voxels ≥ 0",
    "seed": "a random seed ≥ 0",
}

#: Options with an upper limit: destination → (limit, fix).
_MAXIMUM = {
    "photons": (1e12, "Poisson noise is sampled up to 1e12 photons; pass --no-poisson instead"),
}


def _numbers(value: Any) -> list[float] | None:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        return None
    return [float(v) for v in values]


def check_options(args: argparse.Namespace) -> None:
    """Refuse option values no command can use, before any reading or computing.

    Every number must be finite; lengths, shapes, optics and counts must be positive (depth,
    pinhole, regularization, read noise and margins non-negative). One place for every command.
    """
    from ..errors import user_error

    for dest, value in sorted(vars(args).items()):
        numbers = _numbers(value)
        if numbers is None or "." in dest:  # ("cfg.…": training options validate themselves)
            continue
        flag = "--" + dest.replace("_", "-")
        shown = " ".join(f"{v:g}" for v in numbers)
        if not all(math.isfinite(v) for v in numbers):
            raise user_error(f"{flag} must be a finite number, not {shown}", fix="give a number")
        if dest in _POSITIVE and min(numbers) <= 0:
            raise user_error(f"{flag} must be positive, not {shown}", fix=f"give {_POSITIVE[dest]}")
        if dest in _NON_NEGATIVE and min(numbers) < 0:
            raise user_error(
                f"{flag} must not be negative, not {shown}", fix=f"give {_NON_NEGATIVE[dest]}"
            )
        if dest in _MAXIMUM and max(numbers) > _MAXIMUM[dest][0]:
            limit, fix = _MAXIMUM[dest]
            raise user_error(f"{flag} {shown} is above {limit:g}", fix=fix)
