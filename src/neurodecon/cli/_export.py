"""``neurodecon export``: a trained model as a bioimage.io package (:mod:`neurodecon.learn`)."""

from __future__ import annotations

import argparse

from ._common import add_device


def register(sub: argparse._SubParsersAction, psf_sub: argparse._SubParsersAction) -> None:
    """Add ``export`` to the main parser."""
    p = sub.add_parser(
        "export",
        help="write a trained model as a bioimage.io model package (.zip)",
        description="Writes MODEL_DIR as a bioimage.io model package (spec 0.5, PyTorch state "
        "dict) with test tensors, a cover image, documentation, the voxel size, the optics and "
        "bead provenance and the training noise calibration. `bioimageio test OUT.zip` checks "
        "it; `neurodecon deconvolve IMAGE --model OUT.zip` runs it. Needs the bioimageio extra: "
        "pip install 'neurodecon[bioimageio]'.",
    )
    p.add_argument(
        "model",
        metavar="MODEL_DIR",
        nargs="?",
        default="default",
        help="model directory written by `neurodecon train` (default: the shipped model)",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT.zip", help="package to write")
    p.add_argument(
        "--sample",
        metavar="IMAGE",
        help="a stack of the model's microscope for the test tensors and cover (its centre, "
        "at most 32×64×64); default: a simulated stack through the model's kernel",
    )
    p.add_argument("--name", help="package name (default: from the model's optics)")
    p.add_argument(
        "--author",
        action="append",
        metavar="NAME",
        help="an author of the model (repeat for several; default 'NeuroDecon user')",
    )
    p.add_argument(
        "--license", default="CC-BY-4.0", help="SPDX licence id of the weights (default CC-BY-4.0)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT.zip")
    add_device(p)
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from ..io import check_output_path, read
    from ..learn import export_bioimageio, load_model

    check_output_path(args.output, [args.sample, args.model], overwrite=args.overwrite)
    model = load_model(args.model)
    sample = read(args.sample) if args.sample else None
    out = export_bioimageio(
        model,
        args.output,
        sample=sample,
        name=args.name,
        authors=args.author,
        license=args.license,
        device=args.device,
    )
    print(f"wrote {out} (bioimage.io package of {model.path}; check it: bioimageio test {out})")
    return 0
