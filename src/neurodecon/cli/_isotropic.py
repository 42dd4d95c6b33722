"""``neurodecon isotropic``: Self-Net isotropic restoration, trained on the input stack itself."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_device, add_output_options, add_voxel_size, write_output

__all__ = ["register"]


def register(sub: argparse._SubParsersAction, psf_sub: argparse._SubParsersAction) -> None:
    """Add ``isotropic``."""
    p = sub.add_parser(
        "isotropic",
        help="restore isotropic resolution of an anisotropic stack (Self-Net, no PSF needed)",
        description="Train Self-Net on INPUT's own lateral planes (or reuse --model DIR) and "
        "write INPUT resampled to isotropic voxels (the lateral pixel size in z too) with its "
        "axial planes restored. Works on raw or deconvolved stacks; z / xy voxel size must be "
        "at least 1.2, and above 4 the restoration degrades (docs/isotropic.md).",
    )
    p.add_argument("input", metavar="INPUT", help="image file (TIFF, OME-TIFF, OME-Zarr, .npy)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file")
    add_voxel_size(p)
    p.add_argument(
        "--model", type=Path, default=None, metavar="DIR", help="reuse a trained Self-Net model"
    )
    p.add_argument(
        "--save-model",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the trained model (and the training checkpoint) in DIR",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the training checkpointed in --save-model"
    )
    p.add_argument(
        "--preset",
        default="auto",
        choices=("auto", "cpu", "paper"),
        help="network sizes and budget: cpu (minutes on 2 cores), paper (the authors' sizes, "
        "for a GPU); default auto (paper on CUDA, cpu otherwise)",
    )
    p.add_argument("--steps", type=int, default=None, help="training steps (default per preset)")
    p.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="MIN",
        help="stop training after MIN minutes (the restoration after it is not counted)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_device(p)
    add_output_options(p)
    p.set_defaults(func=_isotropic)


def _check_args(args: argparse.Namespace) -> None:
    from ..errors import user_error
    from ..io import check_output_path

    if args.model is not None and (args.save_model is not None or args.resume):
        raise user_error(
            "--model reuses a trained model; --save-model and --resume train a new one",
            fix="give either --model or --save-model",
        )
    if args.resume and args.save_model is None:
        raise user_error("--resume needs --save-model DIR (where the checkpoint is)")
    for flag, value in (("--steps", args.steps), ("--time-limit", args.time_limit)):
        if value is not None and value <= 0:
            raise user_error(f"{flag} must be positive, not {value:g}")
    out = Path(args.output)
    if out.resolve() == Path(args.input).resolve():
        raise user_error("refusing to overwrite the input", path=out, fix="choose another name")
    if out.exists() and not args.overwrite:
        raise user_error("output exists", path=out, fix="pass --overwrite or choose another name")
    check_output_path(out, [args.input], args.overwrite)


def _isotropic(args: argparse.Namespace) -> int:
    from ..device import resolve_device
    from ..io import read
    from ..learn import isotropic, selfnet_config
    from ..progress import console_progress

    _check_args(args)
    image = read(args.input, voxel_size_um=args.voxel_size)
    config = None
    if args.model is None:
        config = selfnet_config(args.preset, resolve_device(args.device))
        config = config.with_changes(steps=args.steps)
    with console_progress("Self-Net") as bar:  # training steps, then the xz and yz planes
        result = isotropic(
            image,
            model=args.model,
            save_model=args.save_model,
            resume=args.resume,
            overwrite=args.overwrite,
            config=config,
            time_limit_min=args.time_limit,
            device=args.device,
            seed=args.seed,
            progress=bar,
            inference_progress=bar,
        )
    record = result.metadata["isotropic"]
    written = write_output(args, args.output, result, inputs=(str(args.input),), parameters=record)
    vz, vy, vx = result.voxel_size_um
    steps = record["steps_done"]
    trained = "" if steps is None else f", {steps} training steps"
    print(
        f"wrote {written} ({result.data.shape}, voxel {vz:g}×{vy:g}×{vx:g} µm, anisotropy "
        f"{record['anisotropy_ratio']:.2f} restored{trained})"
    )
    if args.save_model is not None:
        print(f"model in {args.save_model}")
    return 0
